//! Beckon: call-invitation signaling. An inviter sends an invitation to a list of
//! users; every device of every invitee rings; each invitee accepts or refuses;
//! the inviter learns each answer, or that nobody answered in time.
//!
//! Layers, each a module, data flowing one way (C call -> ffi -> client ->
//! transport -> hub) and events flowing back the same way:
//! - [`protocol`]: the values that cross between client and hub;
//! - [`hub`]: the invitation engine (no I/O);
//! - [`client`]: sessions, exactly-once callbacks, the dispatcher;
//! - `transport`: how a client reaches a hub (`memory://` in process, `ws://`/`wss://` to a server);
//! - `ffi`: the C ABI over the client (`include/beckon.h`).

// Input reaches the library from C and the network: it must never unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// The public surface (docs/ARCHITECTURE.md, "The Rust API"): the client and
// its configuration, errors, the protocol's types, the hub for servers, memory
// hubs, tokens and the log sink. The rest is the library's own.
pub mod client;
pub mod error;
pub mod hub;
pub mod log;
pub mod memory;
pub mod protocol;
#[cfg(feature = "test-hooks")]
pub mod testing;
pub mod token;

pub(crate) mod runtime;
pub(crate) mod transport;
pub(crate) mod wakes;

/// `crate::log!(level, sub_tag, format, args)`: formats only when enabled.
pub(crate) use log::log;

/// The C ABI (`include/beckon.h`). Public only so that the benches can drive
/// it from Rust; not part of the Rust API.
#[doc(hidden)]
pub mod ffi;

pub use client::{CallOptions, Client, ClientConfig, DispatchMode, Event};
pub use error::{Error, ErrorCode, Result};
