//! One client frame, from a logged-in device while an invitation rings for it:
//! decoded and handled as beckon-server does (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| beckon_server::fuzzing::frame(data));
