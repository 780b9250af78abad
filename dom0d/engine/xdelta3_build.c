/*
 * xdelta3_build.c - compiles Debian's xdelta3 source (third_party/, never
 * committed) as part of this build, so every build directory gets its
 * own object, instrumented like the rest when sanitizers are on.
 */
#include "xdelta3.c"
