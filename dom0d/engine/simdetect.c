/* simdetect.c: to be written */
