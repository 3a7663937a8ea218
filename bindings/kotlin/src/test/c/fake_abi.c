/*
 * A stand-in for libbeckon that reports the ABI version FAKE_ABI_VERSION
 * (given with -D when test.sh builds it), so the tests can check which
 * versions the binding refuses at load and which it accepts. Only the two
 * functions the load check calls exist: a library the binding accepts then
 * fails at its first other call, for the missing symbol.
 */
#include <stdint.h>

#ifndef FAKE_ABI_VERSION
#error "build with -DFAKE_ABI_VERSION=..."
#endif

const char *beckon_version(void) { return "9.9.9-fake"; }

uint32_t beckon_abi_version(void) { return FAKE_ABI_VERSION; }
