/* patch_bsdiff.c: to be written */
