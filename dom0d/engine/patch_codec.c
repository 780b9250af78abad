/* patch_codec.c: to be written */
