//! Test hooks (feature `test-hooks` only): make the library panic at a chosen
//! point, so tests can see that no panic crosses the ABI and that a panicking
//! operation still completes its callback exactly once.

use std::sync::atomic::{AtomicU32, Ordering};

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanicPoint {
    /// At the entry of the next exported function that returns an error code.
    Entry = 1,
    /// Inside the transport, while it runs the next operation.
    Transport = 2,
    /// Inside the dispatcher, just before the next event reaches the handler.
    Dispatch = 3,
}

static ARMED: AtomicU32 = AtomicU32::new(0);

pub fn arm(point: PanicPoint) {
    ARMED.store(point as u32, Ordering::SeqCst);
}

pub fn disarm() {
    ARMED.store(0, Ordering::SeqCst);
}

/// Panics (once) if `point` is armed.
pub fn maybe_panic(point: PanicPoint) {
    if ARMED
        .compare_exchange(point as u32, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        panic!("beckon test hook: forced panic at {point:?}");
    }
}

pub use crate::transport::ws::hooks::{panic_link, LinkPanic};

/// A push outlet for tests of push results without a server: it pushes
/// nothing anywhere, and reports each job from a thread of its own (never
/// from inside `push()`, which the hub calls with the invitation locked):
/// tokens starting with "bad" fail as no longer valid (the hub forgets the
/// target), "fail" fail and stay, any other is sent.
#[derive(Default)]
pub struct ScriptedOutlet {
    pushed: std::sync::Mutex<Vec<(String, String, &'static str)>>,
}

impl ScriptedOutlet {
    /// The reason of a "bad" token's failure.
    pub const BAD_TOKEN: &'static str = "BadDeviceToken";
    /// The reason of a "fail" token's failure.
    pub const FAILED: &'static str = "ServiceUnavailable";

    /// Every job so far: user, device, "ring" or "stop".
    pub fn pushed(&self) -> Vec<(String, String, &'static str)> {
        self.pushed.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl crate::hub::PushOutlet for ScriptedOutlet {
    fn supports(&self, _provider: crate::protocol::PushProvider) -> bool {
        true
    }

    fn push(&self, job: crate::hub::PushJob) {
        use crate::hub::{PushMessage, PushResult};
        let kind = match job.message {
            PushMessage::Ring(_) => "ring",
            PushMessage::Stop { .. } => "stop",
        };
        if let Ok(mut pushed) = self.pushed.lock() {
            pushed.push((job.user.to_string(), job.device.to_string(), kind));
        }
        let token = &job.target.token;
        let result = if token.starts_with("bad") {
            PushResult::Failed {
                reason: Self::BAD_TOKEN.into(),
                token_invalid: true,
            }
        } else if token.starts_with("fail") {
            PushResult::Failed {
                reason: Self::FAILED.into(),
                token_invalid: false,
            }
        } else {
            PushResult::Sent
        };
        let reporter = job.reporter;
        crate::runtime::handle().spawn(async move { reporter.report(result) });
    }
}

/// Installs `memory://NAME` as a hub that pushes through `outlet`.
pub fn install_push_hub(name: &str, outlet: std::sync::Arc<ScriptedOutlet>) -> crate::Result<()> {
    let (hub, _) = crate::hub::Hub::with_store(
        crate::hub::HubConfig::in_process(),
        crate::runtime::handle(),
        std::sync::Arc::new(crate::hub::MemoryStore),
        std::time::Duration::from_secs(30),
        crate::hub::Outlets::push(outlet),
    )?;
    crate::memory::install(name, hub)
}

/// On `memory://NAME`: device `device` of `user` sets `target` and its
/// connection drops (not an explicit logout, which would forget the
/// target), as a phone whose app was killed.
pub fn offline_push_target(
    name: &str,
    user: crate::protocol::UserId,
    device: crate::protocol::DeviceId,
    target: crate::protocol::PushTarget,
) -> crate::Result<()> {
    struct Nowhere;
    impl crate::protocol::SessionSink for Nowhere {
        fn deliver(&self, _: crate::protocol::Push) {}
    }
    let hub = crate::memory::hub(name)?;
    let session = hub.login(user, device, "", std::sync::Arc::new(Nowhere))?;
    let set = hub.set_push_target(&session, target);
    hub.logout(&session);
    set
}
