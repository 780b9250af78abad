/* compressor.c: to be written */
