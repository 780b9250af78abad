/* mem_image.c: to be written */
