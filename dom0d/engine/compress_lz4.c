/* compress_lz4.c: to be written */
