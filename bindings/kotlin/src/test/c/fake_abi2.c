/*
 * A stand-in for libbeckon that reports another ABI version, so the tests can
 * check that the binding refuses to use it. Only the two functions the load
 * check calls exist.
 */
#include <stdint.h>

const char *beckon_version(void) { return "9.9.9-fake"; }

uint32_t beckon_abi_version(void) { return 2; }
