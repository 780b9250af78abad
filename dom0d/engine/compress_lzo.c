/* compress_lzo.c: to be written */
