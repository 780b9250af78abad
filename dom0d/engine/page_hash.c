/* page_hash.c: to be written */
