//! A script of frames, reconnects, clock moves and grace periods for three
//! devices of two users (format in fuzz/README.md and `fuzzing::session`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| beckon_server::fuzzing::session(data));
