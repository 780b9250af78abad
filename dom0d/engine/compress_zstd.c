/* compress_zstd.c: to be written */
