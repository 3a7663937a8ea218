//! Push targets and push results in the Rust client, on in-process hubs with
//! a push outlet scripted here (issue 11): setting and clearing a device's
//! target, what the client checks before sending, what an explicit logout
//! forgets, and the inviter's `InvitationPushResult` events (each shown once,
//! several for one invitation).
//!
//! The outlet reports from a thread of its own, never from inside `push()`
//! (the hub calls it with the invitation locked). Every wait is bounded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beckon::hub::{Hub, HubConfig, MemoryStore, PushJob, PushMessage, PushOutlet, PushResult};
use beckon::memory;
use beckon::protocol::{
    ApnsEnvironment, DeviceId, InviteeState, Push, PushOutcome, PushProvider, PushTarget,
    SendInvitation, SessionSink, UserId,
};
use beckon::{CallOptions, Client, ClientConfig, ErrorCode, Event};

mod common;
use common::{dev, user, users};

const WAIT: Duration = Duration::from_secs(5);

// ---- the scripted outlet ----------------------------------------------------------

/// Pushes nothing anywhere: records each job and reports, from a thread, Sent,
/// or for tokens starting with "bad" a failure saying the token is no longer
/// valid, or for "fail" a failure that keeps it.
#[derive(Default)]
struct Outlet {
    jobs: Mutex<Vec<(UserId, DeviceId, PushProvider, String)>>,
}

impl PushOutlet for Outlet {
    fn supports(&self, provider: PushProvider) -> bool {
        provider != PushProvider::Webhook
    }

    fn push(&self, job: PushJob) {
        let what = match &job.message {
            PushMessage::Ring(_) => "ring".to_owned(),
            PushMessage::Stop { state, .. } => format!("stop {state:?}"),
        };
        self.jobs.lock().unwrap().push((
            job.user.clone(),
            job.device.clone(),
            job.target.provider,
            what,
        ));
        let result = if job.target.token.starts_with("bad") {
            PushResult::Failed {
                reason: "BadDeviceToken".into(),
                token_invalid: true,
            }
        } else if job.target.token.starts_with("fail") {
            PushResult::Failed {
                reason: "HTTP 503".into(),
                token_invalid: false,
            }
        } else {
            PushResult::Sent
        };
        // Never from inside push(): report() locks the invitation's shard.
        let reporter = job.reporter;
        std::thread::spawn(move || reporter.report(result));
    }
}

impl Outlet {
    fn jobs(&self) -> Vec<(UserId, DeviceId, PushProvider, String)> {
        self.jobs.lock().unwrap().clone()
    }
}

/// Installs `memory://NAME` with `outlet` and returns the hub.
fn hub_with(name: &str, outlet: Arc<Outlet>) -> Arc<Hub> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (hub, _) = Hub::with_store(
        HubConfig::in_process(),
        runtime.handle(),
        Arc::new(MemoryStore),
        Duration::from_secs(30),
        beckon::hub::Outlets::push(outlet as Arc<dyn PushOutlet>),
    )
    .unwrap();
    // The hub's timers ran on that runtime; these tests need none (no
    // deadline passes), so it may go.
    drop(runtime);
    memory::install(name, hub.clone()).unwrap();
    hub
}

struct NoSink;
impl SessionSink for NoSink {
    fn deliver(&self, _: Push) {}
}

/// A device whose app is gone but stays reachable by push: it set `target`
/// and its connection dropped (not an explicit logout, which would forget it).
fn offline_with_target(hub: &Hub, name: &str, device: &str, target: PushTarget) {
    let session = hub
        .login(user(name), dev(device), "", Arc::new(NoSink))
        .unwrap();
    hub.set_push_target(&session, target).unwrap();
    hub.logout(&session);
}

// ---- the client side ----------------------------------------------------------------

struct Probe {
    client: Client,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Probe {
    fn new(url: &str, device: &str) -> Probe {
        let mut config = ClientConfig::new(url);
        config.device_id = Some(dev(device));
        let client = Client::new(config).unwrap();
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let record = events.clone();
        client.set_event_handler(Some(Arc::new(move |e: &Event| {
            record.lock().unwrap().push(e.clone())
        })));
        Probe { client, events }
    }

    fn push_results(&self) -> Vec<Push> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Invitation(push @ Push::InvitationPushResult { .. }) => Some(push.clone()),
                _ => None,
            })
            .collect()
    }
}

fn block<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work)
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn apns_voip(token: &str) -> PushTarget {
    PushTarget {
        topic: Some("com.example.calls".into()),
        environment: ApnsEnvironment::Sandbox,
        ..PushTarget::new(PushProvider::ApnsVoip, token)
    }
}

fn hex(prefix: &str) -> String {
    format!("{prefix}{}", "0".repeat(64 - prefix.len()))
}

// ---- set and clear ----------------------------------------------------------------------

#[test]
fn a_bad_target_is_refused_before_anything_is_sent() {
    let outlet = Arc::new(Outlet::default());
    let hub = hub_with("push-client-bad", outlet);
    let probe = Probe::new("memory://push-client-bad", "alice-phone");
    let refused = |target: PushTarget| {
        let called = Arc::new(Mutex::new(false));
        let flag = called.clone();
        let error = probe
            .client
            .set_push_target_then(target, Box::new(move |_| *flag.lock().unwrap() = true))
            .unwrap_err();
        assert!(!*called.lock().unwrap(), "a refused call ran its callback");
        error
    };

    // Not logged in: the target is checked first, then the session.
    let error = refused(PushTarget::new(PushProvider::Fcm, ""));
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert!(error.message.starts_with("push_target.token"), "{error}");
    let error = refused(PushTarget::new(PushProvider::Fcm, "t"));
    assert_eq!(error.code, ErrorCode::NotLoggedIn);

    block(probe.client.login(user("alice"), "")).unwrap();
    let error = refused(PushTarget::new(PushProvider::Apns, "not-hex"));
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert!(error.message.contains("hex"), "{error}");
    let error = refused(PushTarget::new(PushProvider::Webhook, "x".repeat(4097)));
    assert_eq!(error.code, ErrorCode::PayloadTooLarge);
    let error = refused(PushTarget {
        topic: Some("com.example".into()),
        ..PushTarget::new(PushProvider::Fcm, "t")
    });
    assert!(error.message.starts_with("push_target.topic"), "{error}");
    let error = probe
        .client
        .set_push_target_then_with(
            PushTarget::new(PushProvider::Fcm, "t"),
            CallOptions::within(Duration::ZERO),
            Box::new(|_| {}),
        )
        .unwrap_err();
    assert!(
        error.message.starts_with("options.request_timeout"),
        "{error}"
    );
    assert!(hub.push_targets(&user("alice")).is_empty());
}

#[test]
fn a_hub_without_an_outlet_refuses_every_target() {
    let probe = Probe::new("memory://push-client-no-outlet", "alice-phone");
    block(probe.client.login(user("alice"), "")).unwrap();
    let error = block(
        probe
            .client
            .set_push_target(PushTarget::new(PushProvider::Fcm, "fcm-token")),
    )
    .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert!(
        error.message.contains("does not push through fcm"),
        "{error}"
    );
    // Clearing what was never set is fine.
    block(probe.client.clear_push_target()).unwrap();
}

#[test]
fn set_replace_clear_and_logout_forgets() {
    let outlet = Arc::new(Outlet::default());
    let hub = hub_with("push-client-set", outlet);
    let probe = Probe::new("memory://push-client-set", "alice-phone");
    block(probe.client.login(user("alice"), "")).unwrap();

    let first = apns_voip(&hex("ab"));
    block(probe.client.set_push_target(first.clone())).unwrap();
    assert_eq!(
        hub.push_targets(&user("alice")),
        vec![(dev("alice-phone"), first)]
    );
    // Setting again replaces; the same target twice is fine.
    let second = PushTarget::new(PushProvider::Fcm, "fcm:token-1");
    block(probe.client.set_push_target(second.clone())).unwrap();
    block(
        probe
            .client
            .set_push_target_with(second.clone(), CallOptions::within(WAIT)),
    )
    .unwrap();
    assert_eq!(
        hub.push_targets(&user("alice")),
        vec![(dev("alice-phone"), second.clone())]
    );
    // A provider the outlet does not support: refused, the target stays.
    let error = block(
        probe
            .client
            .set_push_target(PushTarget::new(PushProvider::Webhook, "device-7")),
    )
    .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    assert!(error.message.starts_with("push_target.provider"), "{error}");
    assert_eq!(hub.push_targets(&user("alice")).len(), 1);

    block(probe.client.clear_push_target()).unwrap();
    assert!(hub.push_targets(&user("alice")).is_empty());
    block(
        probe
            .client
            .clear_push_target_with(CallOptions::within(WAIT)),
    )
    .unwrap();

    // An explicit logout forgets the device's target; the app sets it again
    // after its next login.
    block(probe.client.set_push_target(second.clone())).unwrap();
    block(probe.client.logout()).unwrap();
    assert!(hub.push_targets(&user("alice")).is_empty());
    let error = block(probe.client.clear_push_target()).unwrap_err();
    assert_eq!(error.code, ErrorCode::NotLoggedIn);

    // So does free (it logs out), but only this device's.
    block(probe.client.login(user("alice"), "")).unwrap();
    block(probe.client.set_push_target(second)).unwrap();
    offline_with_target(&hub, "alice", "alice-tablet", apns_voip(&hex("cd")));
    assert_eq!(hub.push_targets(&user("alice")).len(), 2);
    drop(probe);
    let left = hub.push_targets(&user("alice"));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, dev("alice-tablet"));
}

// ---- push results ------------------------------------------------------------------------

fn result_of(
    push: &Push,
) -> (
    String,
    Option<String>,
    Option<PushProvider>,
    PushOutcome,
    String,
) {
    match push {
        Push::InvitationPushResult {
            invitee,
            device,
            provider,
            outcome,
            reason,
            ..
        } => (
            invitee.to_string(),
            device.as_ref().map(|d| d.to_string()),
            *provider,
            *outcome,
            reason.to_string(),
        ),
        other => panic!("not a push result: {other:?}"),
    }
}

/// The inviter gets one result per pushed device and one per offline invitee
/// without a target, each once, for the same invitation; online invitees ring
/// as before and are not pushed.
#[test]
fn the_inviter_gets_each_push_result_once() {
    let outlet = Arc::new(Outlet::default());
    let hub = hub_with("push-client-results", outlet.clone());
    offline_with_target(&hub, "bob", "bob-phone", apns_voip(&hex("ab")));
    offline_with_target(
        &hub,
        "bob",
        "bob-tablet",
        PushTarget::new(PushProvider::Fcm, "fail-fcm"),
    );
    offline_with_target(&hub, "dave", "dave-phone", apns_voip(&hex("bad")));
    let alice = Probe::new("memory://push-client-results", "alice-phone");
    let carol = Probe::new("memory://push-client-results", "carol-phone");
    block(alice.client.login(user("alice"), "")).unwrap();
    block(carol.client.login(user("carol"), "")).unwrap();

    let sent = block(alice.client.send_invitation(SendInvitation::new(
        users(&["bob", "carol", "dave", "erin"]),
        30,
    )))
    .unwrap();
    wait_until("four push results", || alice.push_results().len() >= 4);
    // Nothing more comes (the hub sends each once; give stragglers a moment).
    std::thread::sleep(Duration::from_millis(100));
    let results = alice.push_results();
    assert_eq!(results.len(), 4, "{results:#?}");
    for push in &results {
        assert_eq!(push.invitation_id(), Some(&sent.invitation_id));
    }
    let mut got: Vec<_> = results.iter().map(result_of).collect();
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let s = |t: &str| t.to_owned();
    assert_eq!(
        got,
        vec![
            (
                s("bob"),
                Some(s("bob-phone")),
                Some(PushProvider::ApnsVoip),
                PushOutcome::Sent,
                s("")
            ),
            (
                s("bob"),
                Some(s("bob-tablet")),
                Some(PushProvider::Fcm),
                PushOutcome::Failed,
                s("HTTP 503")
            ),
            (
                s("dave"),
                Some(s("dave-phone")),
                Some(PushProvider::ApnsVoip),
                PushOutcome::Failed,
                s("BadDeviceToken")
            ),
            (s("erin"), None, None, PushOutcome::NoPushTarget, s("")),
        ]
    );
    let rings: Vec<_> = outlet
        .jobs()
        .into_iter()
        .filter(|j| j.3 == "ring")
        .collect();
    assert_eq!(rings.len(), 3, "carol is online: she rings, is not pushed");
    // The invitee's side is unchanged: carol saw the invitation once.
    let carol_received = carol
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Invitation(Push::InvitationReceived { .. })))
        .count();
    assert_eq!(carol_received, 1);

    // dave's token was refused as no longer valid: forgotten, so the next
    // send says he has no push target; bob's failed one stays.
    wait_until("dave's target forgotten", || {
        hub.push_targets(&user("dave")).is_empty()
    });
    assert_eq!(hub.push_targets(&user("bob")).len(), 2);
    let again = block(
        alice
            .client
            .send_invitation(SendInvitation::new(users(&["dave"]), 30)),
    )
    .unwrap();
    wait_until("a fifth push result", || alice.push_results().len() >= 5);
    let last = alice.push_results().pop().unwrap();
    assert_eq!(last.invitation_id(), Some(&again.invitation_id));
    assert_eq!(
        result_of(&last),
        (s("dave"), None, None, PushOutcome::NoPushTarget, s(""))
    );

    // Cancelling stops the ringing: a stop push to each pushed device.
    block(
        alice
            .client
            .cancel_invitation(beckon::protocol::CancelInvitation {
                invitation_id: sent.invitation_id.clone(),
                invitees: None,
                extended_data: "".into(),
            }),
    )
    .unwrap();
    let stops = outlet
        .jobs()
        .into_iter()
        .filter(|j| j.3 == format!("stop {:?}", InviteeState::Cancelled))
        .count();
    assert_eq!(stops, 3, "{:#?}", outlet.jobs());
    assert_eq!(
        alice.push_results().len(),
        5,
        "stop pushes are not reported"
    );
}

/// `online_only` sends push nobody and report nothing.
#[test]
fn an_online_only_send_pushes_nobody() {
    let outlet = Arc::new(Outlet::default());
    let hub = hub_with("push-client-online-only", outlet.clone());
    offline_with_target(&hub, "bob", "bob-phone", apns_voip(&hex("ab")));
    let alice = Probe::new("memory://push-client-online-only", "alice-phone");
    block(alice.client.login(user("alice"), "")).unwrap();
    let mut send = SendInvitation::new(users(&["bob", "erin"]), 30);
    send.online_only = true;
    block(alice.client.send_invitation(send)).unwrap();
    // A later send that does push, to know when all earlier events are in.
    block(
        alice
            .client
            .send_invitation(SendInvitation::new(users(&["erin"]), 30)),
    )
    .unwrap();
    wait_until("the second send's result", || {
        !alice.push_results().is_empty()
    });
    assert_eq!(alice.push_results().len(), 1, "{:#?}", alice.push_results());
    assert!(outlet.jobs().is_empty());
}
