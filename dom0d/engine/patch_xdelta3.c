/* patch_xdelta3.c: to be written */
