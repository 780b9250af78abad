/* page_bwt.c: to be written */
