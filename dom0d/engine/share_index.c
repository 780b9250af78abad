/* share_index.c: to be written */
