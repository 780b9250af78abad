/* patch_zstd.c: to be written */
