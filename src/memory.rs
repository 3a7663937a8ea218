//! In-process hubs, reached by clients as `memory://NAME`: every client of the
//! process that names the same NAME shares one hub, which lives as long as the
//! process. A hub is made with the default configuration on first use, or
//! installed beforehand with another one (a secret, other limits, a manual
//! clock for tests).

use std::sync::Arc;

use crate::error::Result;
use crate::hub::{Hub, HubConfig};

pub use crate::transport::memory::{hub, install};

/// A hub on the system clock for `install`, its timers on the library's own
/// threads (which outlive any runtime of the caller's, as the hub may).
pub fn new_hub(config: HubConfig) -> Result<Arc<Hub>> {
    Hub::new(config, crate::runtime::handle())
}
