//! The C ABI (`include/beckon.h`), one file per C object, over the Rust client.
//!
//! Every exported function has the same shape: a panic boundary
//! (`boundary::guard`), checked conversion of each argument (`convert`), then
//! the work in safe Rust. Strings and arrays handed to callbacks live in a
//! holder that outlives the callback (`results`).

#![allow(non_camel_case_types)]
// The exports' doc comments become beckon.h, which C programmers read: what
// each pointer must be is said in a "Memory:" line instead of a Rust
// "# Safety" heading.
#![allow(clippy::missing_safety_doc)]

pub mod boundary;
pub mod client;
pub mod convert;
pub mod error;
pub mod event;
pub mod history;
pub mod hub;
pub mod invitation;
pub mod log;
pub mod push;
pub mod results;
#[cfg(feature = "test-hooks")]
pub mod testing;
pub mod version;
