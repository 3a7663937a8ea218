//! The invitation engine against the rules of docs/SEMANTICS.md, straight on
//! `beckon::hub::Hub`.
//!
//! Every hub here runs on a `ManualClock`: time moves only through
//! `Hub::advance`, so deadlines and retention are tested without sleeping.
//! Each device is a session whose sink records the pushes it is handed.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use beckon::hub::{Hub, HubConfig, ManualClock, Session};
use beckon::protocol::{
    CancelInvitation, CancelOutcome, DeviceId, InvitationId, InvitationSnapshot, InviteeState,
    Limits, Notification, Push, SendInvitation, SendOutcome, SessionSink, Snapshot, UserId,
};
use beckon::{Error, ErrorCode};

mod common;
use common::{answer, dev, status, user, users};

/// Unix time the manual clocks start at.
const T0: u64 = 1_700_000_000;

// ---- harness ------------------------------------------------------------------

/// A session sink that keeps every push it is handed, in order.
#[derive(Default)]
struct Recorder {
    pushes: Mutex<Vec<Push>>,
}

impl SessionSink for Recorder {
    fn deliver(&self, push: Push) {
        self.pushes.lock().unwrap().push(push);
    }
}

impl Recorder {
    fn all(&self) -> Vec<Push> {
        self.pushes.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.pushes.lock().unwrap().clear();
    }

    fn len(&self) -> usize {
        self.pushes.lock().unwrap().len()
    }

    fn count(&self, pred: impl Fn(&Push) -> bool) -> usize {
        self.pushes
            .lock()
            .unwrap()
            .iter()
            .filter(|p| pred(p))
            .count()
    }

    /// Pushes about one invitation, in order.
    fn about(&self, id: &InvitationId) -> Vec<Push> {
        self.all()
            .into_iter()
            .filter(|p| p.invitation_id() == Some(id))
            .collect()
    }

    fn received(&self, id: &InvitationId) -> usize {
        self.count(
            |p| matches!(p, Push::InvitationReceived { invitation_id, .. } if invitation_id == id),
        )
    }

    fn received_push(&self, id: &InvitationId) -> Option<Push> {
        self.all().into_iter().find(
            |p| matches!(p, Push::InvitationReceived { invitation_id, .. } if invitation_id == id),
        )
    }

    /// The USER_STATE_CHANGED pushes of one invitation: (user, state).
    fn state_changes(&self, id: &InvitationId) -> Vec<(String, InviteeState)> {
        self.about(id)
            .into_iter()
            .filter_map(|p| match p {
                Push::UserStateChanged { user_id, state, .. } => Some((user_id.to_string(), state)),
                _ => None,
            })
            .collect()
    }

    fn kicked(&self) -> usize {
        self.count(|p| matches!(p, Push::KickedOut))
    }
}

/// One logged-in device.
struct Device {
    session: Arc<Session>,
    sink: Arc<Recorder>,
}

struct World {
    hub: Arc<Hub>,
    clock: ManualClock,
}

impl World {
    fn new() -> World {
        World::with(HubConfig::default())
    }

    fn with(config: HubConfig) -> World {
        let clock = ManualClock::new(T0);
        let hub = Hub::with_manual_clock(config, clock.clone()).unwrap();
        World { hub, clock }
    }

    fn with_secret(secret: &[u8]) -> World {
        World::with(HubConfig {
            secret: Some(secret.to_vec()),
            ..HubConfig::default()
        })
    }

    fn try_login(&self, name: &str, device: &str, token: &str) -> Result<Device, Error> {
        let sink = Arc::new(Recorder::default());
        let session = self
            .hub
            .login(user(name), dev(device), token, sink.clone())?;
        Ok(Device { session, sink })
    }

    /// Login only, no sync: nothing pending is handed over yet.
    fn login_nosync(&self, name: &str, device: &str) -> Device {
        self.try_login(name, device, "any").unwrap()
    }

    /// Login then sync, as a client does.
    fn login(&self, name: &str, device: &str) -> Device {
        let device = self.login_nosync(name, device);
        self.hub.sync(&device.session);
        device
    }

    fn advance(&self, secs: u64) {
        self.hub.advance(&self.clock, Duration::from_secs(secs));
    }

    fn send(&self, from: &Device, to: &[&str], timeout: u32) -> Result<SendOutcome, Error> {
        self.hub
            .send(&from.session, SendInvitation::new(users(to), timeout))
            .inspect(|outcome| check_id_format(&outcome.invitation_id))
    }

    fn send_ok(&self, from: &Device, to: &[&str], timeout: u32) -> InvitationId {
        self.send(from, to, timeout).unwrap().invitation_id
    }

    fn accept(&self, by: &Device, id: &InvitationId) -> Result<(), Error> {
        self.hub.accept(&by.session, answer(id, ""))
    }

    fn refuse(&self, by: &Device, id: &InvitationId) -> Result<(), Error> {
        self.hub.refuse(&by.session, answer(id, ""))
    }

    fn cancel(
        &self,
        by: &Device,
        id: &InvitationId,
        invitees: Option<&[&str]>,
    ) -> Result<CancelOutcome, Error> {
        self.hub.cancel(
            &by.session,
            CancelInvitation {
                invitation_id: id.clone(),
                invitees: invitees.map(users),
                extended_data: "".into(),
            },
        )
    }

    fn ack(&self, by: &Device, id: &InvitationId) {
        self.hub.acknowledge(&by.session, id);
    }

    fn state(&self, id: &InvitationId, who: &str) -> InviteeState {
        self.hub
            .invitee_states(id)
            .expect("invitation is known")
            .into_iter()
            .find(|s| s.user_id.as_str() == who)
            .expect("is an invitee")
            .state
    }

    fn states(&self, id: &InvitationId) -> Vec<(String, InviteeState)> {
        self.hub
            .invitee_states(id)
            .expect("invitation is known")
            .into_iter()
            .map(|s| (s.user_id.to_string(), s.state))
            .collect()
    }
}

fn err_code<T: Debug>(result: Result<T, Error>) -> ErrorCode {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e.code,
    }
}

fn check_id_format(id: &InvitationId) {
    let text = id.as_str();
    assert_eq!(text.len(), 32, "{text}");
    assert!(
        text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{text}"
    );
}

fn names(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn is_terminal(state: InviteeState) -> bool {
    matches!(
        state,
        InviteeState::Accepted
            | InviteeState::Rejected
            | InviteeState::Cancelled
            | InviteeState::Timeout
    )
}

// ---- limits (docs/SEMANTICS.md) ---------------------------------------------------

#[test]
fn the_default_limits_are_the_specs() {
    let config = HubConfig::default();
    assert_eq!(config.limits, Limits::default());
    let limits = config.limits;
    assert_eq!(limits.max_invitees, 32);
    assert_eq!(limits.max_timeout_secs, 600);
    assert_eq!(limits.max_extended_data, 8 * 1024);
    assert_eq!(limits.max_title, 256);
    assert_eq!(limits.max_message, 1024);
    assert_eq!(limits.max_resource_id, 64);
    assert_eq!(limits.max_payload, 4 * 1024);
    assert_eq!(limits.max_devices, 10);
    assert_eq!(config.retention, Duration::from_secs(600));
    assert!(config.secret.is_none());
}

#[test]
fn invitees_must_be_1_to_32_distinct_users() {
    let w = World::new();
    let alice = w.login("alice", "a1");

    assert_eq!(
        err_code(w.send(&alice, &[], 10)),
        ErrorCode::InvalidArgument
    );

    let many = names(32, "u");
    let outcome = w.send(&alice, &strs(&many), 10).unwrap();
    assert_eq!(outcome.error_invitees.len(), 32, "all 32 are offline");
    assert_eq!(
        w.hub.invitee_states(&outcome.invitation_id).unwrap().len(),
        32
    );

    let too_many = names(33, "u");
    let e = w.send(&alice, &strs(&too_many), 10).unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyInvitees);
    assert!(e.message.contains("invitees"), "{e}");

    // 33 entries with one repeat fold to 32 distinct users: accepted.
    let mut with_repeat = names(32, "u");
    with_repeat.push("u7".into());
    let outcome = w.send(&alice, &strs(&with_repeat), 10).unwrap();
    assert_eq!(
        w.hub.invitee_states(&outcome.invitation_id).unwrap().len(),
        32
    );

    // 40 entries folding to 33 users: still too many.
    let mut folded_33 = names(33, "u");
    folded_33.extend(names(7, "u"));
    assert_eq!(
        err_code(w.send(&alice, &strs(&folded_33), 10)),
        ErrorCode::TooManyInvitees
    );
}

#[test]
fn duplicates_are_folded_and_ring_once() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob", "carol", "bob", "carol", "bob"], 10);
    assert_eq!(
        w.states(&id),
        vec![
            ("bob".to_string(), InviteeState::Inviting),
            ("carol".to_string(), InviteeState::Offline)
        ]
    );
    assert_eq!(bob.sink.received(&id), 1);
    match bob.sink.received_push(&id).unwrap() {
        Push::InvitationReceived { invitees, .. } => assert_eq!(invitees.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_invitees_is_configurable_up_to_1000() {
    let mut config = HubConfig::default();
    config.limits.max_invitees = 1000;
    let w = World::with(config);
    let alice = w.login("alice", "a1");
    let thousand = names(1000, "u");
    assert!(w.send(&alice, &strs(&thousand), 10).is_ok());
    let more = names(1001, "u");
    assert_eq!(
        err_code(w.send(&alice, &strs(&more), 10)),
        ErrorCode::TooManyInvitees
    );

    for bad in [0, 1001] {
        let mut config = HubConfig::default();
        config.limits.max_invitees = bad;
        let result = Hub::with_manual_clock(config, ManualClock::new(T0));
        assert_eq!(err_code(result.map(|_| ())), ErrorCode::InvalidArgument);
    }
}

type LimitsChange = fn(&mut Limits);

#[test]
fn limits_cannot_be_configured_past_the_specs_bounds() {
    let cases: [(&str, LimitsChange); 5] = [
        ("max_timeout_secs 0", |l| l.max_timeout_secs = 0),
        ("max_timeout_secs 601", |l| l.max_timeout_secs = 601),
        ("max_extended_data 8193", |l| {
            l.max_extended_data = 8 * 1024 + 1
        }),
        ("max_devices 0", |l| l.max_devices = 0),
        ("max_devices 11", |l| l.max_devices = 11),
    ];
    for (what, change) in cases {
        let mut config = HubConfig::default();
        change(&mut config.limits);
        let result = Hub::with_manual_clock(config, ManualClock::new(T0));
        assert_eq!(
            result.map(|_| ()).map_err(|e| e.code),
            Err(ErrorCode::InvalidArgument),
            "{what}"
        );
    }
}

#[test]
fn lower_limits_may_be_configured() {
    let mut config = HubConfig::default();
    config.limits.max_invitees = 2;
    config.limits.max_timeout_secs = 60;
    config.limits.max_extended_data = 10;
    config.limits.max_devices = 2;
    let w = World::with(config);
    let alice = w.login("alice", "a1");
    assert_eq!(
        err_code(w.send(&alice, &["b", "c", "d"], 10)),
        ErrorCode::TooManyInvitees
    );
    assert_eq!(
        err_code(w.send(&alice, &["b"], 61)),
        ErrorCode::InvalidArgument
    );
    assert!(w.send(&alice, &["b", "c"], 60).is_ok());
    assert_eq!(
        err_code(send_with(&w, &alice, |r| r.extended_data = "x".repeat(11).into())),
        ErrorCode::PayloadTooLarge
    );
    let _a2 = w.login("alice", "a2");
    assert_eq!(
        w.try_login("alice", "a3", "t").err().map(|e| e.code),
        Some(ErrorCode::NotPermitted)
    );
}

#[test]
fn long_lists_fold_like_short_ones() {
    // Folding keeps the first occurrence of each user, in order, whatever the
    // list's length (short and long lists take different paths).
    for repeats in [1, 3, 20] {
        let base = names(10, "u");
        let mut list = Vec::new();
        for _ in 0..repeats {
            list.extend(base.iter().rev().cloned());
        }
        let request = SendInvitation::new(users(&strs(&list)), 10);
        let expected: Vec<String> = base.iter().rev().cloned().collect();
        assert_eq!(
            request.invitees,
            users(&strs(&expected)),
            "{repeats} repeats"
        );
    }
    let mut config = HubConfig::default();
    config.limits.max_invitees = 100;
    let w = World::with(config);
    let alice = w.login("alice", "a1");
    let mut list = names(100, "u");
    list.extend(names(100, "u"));
    let id = w.send_ok(&alice, &strs(&list), 10);
    let states: Vec<String> = w.states(&id).into_iter().map(|(u, _)| u).collect();
    assert_eq!(states, names(100, "u"));
}

#[test]
fn the_inviter_may_not_invite_itself() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    for list in [&["alice"][..], &["bob", "alice"], &["alice", "alice"]] {
        let e = w.send(&alice, list, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{list:?}");
        assert!(e.message.contains("invitees"), "{e}");
    }
    assert_eq!(bob.sink.len(), 0, "a refused send rings nobody");
}

#[test]
fn timeout_must_be_1_to_600_seconds() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    for bad in [0, 601, u32::MAX] {
        let e = w.send(&alice, &["bob"], bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "timeout {bad}");
        assert!(e.message.contains("timeout"), "{e}");
    }
    for good in [1, 600] {
        assert!(w.send(&alice, &["bob"], good).is_ok(), "timeout {good}");
    }
}

fn send_with(
    w: &World,
    from: &Device,
    f: impl FnOnce(&mut SendInvitation),
) -> Result<SendOutcome, Error> {
    let mut request = SendInvitation::new(users(&["bob"]), 10);
    f(&mut request);
    w.hub.send(&from.session, request)
}

#[test]
fn extended_data_is_at_most_8_kib() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");

    let ok = send_with(&w, &alice, |r| r.extended_data = "x".repeat(8192).into()).unwrap();
    match bob.sink.received_push(&ok.invitation_id).unwrap() {
        Push::InvitationReceived { extended_data, .. } => assert_eq!(extended_data.len(), 8192),
        other => panic!("{other:?}"),
    }
    let e = send_with(&w, &alice, |r| r.extended_data = "x".repeat(8193).into()).unwrap_err();
    assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    assert!(e.message.contains("extended_data"), "{e}");

    // The limit is in bytes of UTF-8: 4096 two-byte characters fit, 4097 do not.
    assert!(send_with(&w, &alice, |r| r.extended_data = "é".repeat(4096).into()).is_ok());
    assert_eq!(
        err_code(send_with(&w, &alice, |r| r.extended_data = "é".repeat(4097).into())),
        ErrorCode::PayloadTooLarge
    );
    // Absent means "".
    let empty = send_with(&w, &alice, |_| {}).unwrap();
    match bob.sink.received_push(&empty.invitation_id).unwrap() {
        Push::InvitationReceived { extended_data, .. } => assert_eq!(&*extended_data, ""),
        other => panic!("{other:?}"),
    }

    // Answers and cancels carry extended data under the same limit.
    let id = w.send_ok(&alice, &["bob"], 10);
    let big = "y".repeat(8193);
    assert_eq!(
        err_code(w.hub.accept(&bob.session, answer(&id, &big))),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        err_code(w.hub.refuse(&bob.session, answer(&id, &big))),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        err_code(w.hub.cancel(
            &alice.session,
            CancelInvitation {
                invitation_id: id.clone(),
                invitees: None,
                extended_data: big.clone().into(),
            }
        )),
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        w.state(&id, "bob"),
        InviteeState::Inviting,
        "nothing changed"
    );
    w.hub
        .accept(&bob.session, answer(&id, &"y".repeat(8192)))
        .unwrap();
}

type NotificationSetter = fn(&mut Notification, String);

#[test]
fn notification_fields_have_their_limits() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let fields: [(&str, usize, NotificationSetter); 4] = [
        ("notification.title", 256, |n, v| n.title = v.into()),
        ("notification.message", 1024, |n, v| n.message = v.into()),
        ("notification.resource_id", 64, |n, v| {
            n.resource_id = v.into()
        }),
        ("notification.payload", 4096, |n, v| n.payload = v.into()),
    ];
    for (field, limit, set) in fields {
        let at_limit = send_with(&w, &alice, |r| {
            let mut n = Notification::default();
            set(&mut n, "n".repeat(limit));
            r.notification = Some(n);
        });
        assert!(at_limit.is_ok(), "{field} at {limit}: {at_limit:?}");
        let over = send_with(&w, &alice, |r| {
            let mut n = Notification::default();
            set(&mut n, "n".repeat(limit + 1));
            r.notification = Some(n);
        })
        .unwrap_err();
        assert_eq!(over.code, ErrorCode::PayloadTooLarge, "{field}");
        assert!(over.message.contains(field), "{over}");
    }
    // The notification travels with the invitation.
    let n = Notification {
        title: "Call".into(),
        message: "alice calls".into(),
        resource_id: "res".into(),
        payload: "{}".into(),
    };
    let sent = send_with(&w, &alice, |r| r.notification = Some(n.clone())).unwrap();
    match bob.sink.received_push(&sent.invitation_id).unwrap() {
        Push::InvitationReceived { notification, .. } => assert_eq!(notification, Some(n)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn text_with_nul_is_invalid() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    assert_eq!(
        err_code(send_with(&w, &alice, |r| r.extended_data = "a\0b".into())),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        err_code(send_with(&w, &alice, |r| r.notification =
            Some(Notification {
                title: "\0".into(),
                ..Notification::default()
            }))),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn idempotency_key_is_1_to_64_bytes() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    for bad in [String::new(), "k".repeat(65)] {
        let e =
            send_with(&w, &alice, |r| r.idempotency_key = Some(bad.clone().into())).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("idempotency_key"), "{e}");
    }
    assert!(send_with(&w, &alice, |r| r.idempotency_key =
        Some("k".repeat(64).into()))
    .is_ok());
}

#[test]
fn user_and_device_ids_follow_the_rule() {
    let allowed = "azAZ09_.@:+-";
    assert!(UserId::parse(allowed, "user_id").is_ok());
    assert!(UserId::parse("x", "user_id").is_ok());
    assert!(UserId::parse(&"x".repeat(64), "user_id").is_ok());
    for bad in [
        String::new(),
        "x".repeat(65),
        "bob smith".into(),
        "bob/x".into(),
        "bob#".into(),
        "é".into(),
        "bob\0".into(),
        "a,b".into(),
    ] {
        let e = UserId::parse(&bad, "invitees[2]").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{bad:?}");
        assert!(e.message.starts_with("invitees[2]"), "{e}");
        assert!(DeviceId::parse(&bad, "device_id").is_err(), "{bad:?}");
    }
    assert!(DeviceId::parse(allowed, "device_id").is_ok());
    // Ids arriving from the wire are checked the same way.
    assert!(serde_json::from_str::<UserId>("\"ok.user\"").is_ok());
    assert!(serde_json::from_str::<UserId>("\"not ok\"").is_err());
    assert!(serde_json::from_str::<UserId>("\"\"").is_err());
}

// ---- ids (rule 1) -------------------------------------------------------------------

#[test]
fn invitation_ids_are_made_by_the_hub_32_hex_and_distinct() {
    // A thousand open at once: past the default open-invitation quota.
    let w = World::with(HubConfig {
        max_open_invitations: 1000,
        ..HubConfig::default()
    });
    let alice = w.login("alice", "a1");
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let id = w.send_ok(&alice, &["bob"], 10);
        check_id_format(&id);
        assert!(InvitationId::parse(id.as_str(), "id").is_ok());
        assert!(seen.insert(id.to_string()), "duplicate id {id}");
    }
    // Not sequential: consecutive ids share no long common prefix pattern.
    let ids: Vec<&String> = seen.iter().collect();
    let distinct_first_chars: HashSet<char> =
        ids.iter().map(|s| s.chars().next().unwrap()).collect();
    assert!(distinct_first_chars.len() > 8, "ids look poorly spread");
}

// ---- deadlines (rule 2) ----------------------------------------------------------------

#[test]
fn the_deadline_times_out_every_pending_invitee() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    match bob.sink.received_push(&id).unwrap() {
        Push::InvitationReceived {
            inviter,
            seconds_left,
            invitees,
            ..
        } => {
            assert_eq!(inviter, user("alice"));
            assert_eq!(seconds_left, 30);
            assert_eq!(
                &*invitees,
                &[
                    status("bob", InviteeState::Inviting),
                    status("carol", InviteeState::Inviting)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    w.ack(&bob, &id);
    alice.sink.clear();
    bob.sink.clear();
    carol.sink.clear();

    w.advance(29);
    assert_eq!(alice.sink.len() + bob.sink.len() + carol.sink.len(), 0);
    assert_eq!(w.state(&id, "bob"), InviteeState::Received);

    w.advance(1);
    assert_eq!(w.state(&id, "bob"), InviteeState::Timeout);
    assert_eq!(w.state(&id, "carol"), InviteeState::Timeout);
    for (device, name) in [(&bob, "bob"), (&carol, "carol")] {
        let about = device.sink.about(&id);
        assert_eq!(
            about[0],
            Push::InvitationTimeout {
                invitation_id: id.clone(),
                inviter: user("alice")
            },
            "{name} is told first: {about:?}"
        );
        assert_eq!(
            device
                .sink
                .count(|p| matches!(p, Push::InvitationTimeout { .. })),
            1
        );
        assert_eq!(
            device
                .sink
                .count(|p| matches!(p, Push::InvitationResponseTimeout { .. })),
            0
        );
    }
    let to_alice = alice.sink.about(&id);
    assert_eq!(
        to_alice[0],
        Push::InvitationResponseTimeout {
            invitation_id: id.clone(),
            invitees: users(&["bob", "carol"]).into(),
        }
    );
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationTimeout { .. })),
        0
    );
    // USER_STATE_CHANGED(TIMEOUT) for each invitee reaches every participant.
    for device in [&alice, &bob, &carol] {
        assert_eq!(
            device.sink.state_changes(&id),
            vec![
                ("bob".to_string(), InviteeState::Timeout),
                ("carol".to_string(), InviteeState::Timeout)
            ]
        );
    }
    // Late answers are closed.
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::InvitationClosed);
    assert_eq!(err_code(w.refuse(&carol, &id)), ErrorCode::InvitationClosed);
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationClosed
    );
    // More time passing does not fire again.
    let before = alice.sink.len() + bob.sink.len() + carol.sink.len();
    w.advance(60);
    assert_eq!(alice.sink.len() + bob.sink.len() + carol.sink.len(), before);
}

#[test]
fn the_deadline_spares_invitees_that_answered() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let _carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol"], 10);
    w.accept(&bob, &id).unwrap();
    bob.sink.clear();
    w.advance(10);
    assert_eq!(w.state(&id, "bob"), InviteeState::Accepted);
    assert_eq!(w.state(&id, "carol"), InviteeState::Timeout);
    assert!(alice.sink.all().contains(&Push::InvitationResponseTimeout {
        invitation_id: id.clone(),
        invitees: users(&["carol"]).into(),
    }));
    assert_eq!(
        bob.sink
            .count(|p| matches!(p, Push::InvitationTimeout { .. })),
        0,
        "bob answered: he is not timed out"
    );
    assert_eq!(
        bob.sink.state_changes(&id),
        vec![("carol".to_string(), InviteeState::Timeout)]
    );
}

#[test]
fn a_one_second_invitation_times_out_after_one_second() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 1);
    w.hub.advance(&w.clock, Duration::from_millis(999));
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    w.hub.advance(&w.clock, Duration::from_millis(1));
    assert_eq!(w.state(&id, "bob"), InviteeState::Timeout);
}

#[test]
fn deadlines_of_many_invitations_fire_in_their_own_time() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let ids: Vec<(u32, InvitationId)> = (1..=60)
        .rev()
        .map(|t| (t, w.send_ok(&alice, &["bob"], t)))
        .collect();
    for step in 1..=60u32 {
        w.advance(1);
        for (t, id) in &ids {
            let expected = if *t <= step {
                InviteeState::Timeout
            } else {
                InviteeState::Inviting
            };
            assert_eq!(w.state(id, "bob"), expected, "timeout {t} at {step}");
        }
    }
}

// ---- offline invitees (rule 3) -------------------------------------------------------------

#[test]
fn an_offline_invitee_is_reported_and_kept_pending() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let outcome = w.send(&alice, &["bob", "dave"], 30).unwrap();
    assert_eq!(
        outcome.error_invitees,
        vec![status("dave", InviteeState::Offline)]
    );
    let id = outcome.invitation_id;
    assert_eq!(w.state(&id, "dave"), InviteeState::Offline);

    w.advance(10);
    // A login alone hands nothing over; the sync does.
    let dave = w.login_nosync("dave", "d1");
    assert_eq!(dave.sink.received(&id), 0);
    w.hub.sync(&dave.session);
    assert_eq!(dave.sink.received(&id), 1);
    match dave.sink.received_push(&id).unwrap() {
        Push::InvitationReceived {
            seconds_left,
            inviter,
            ..
        } => {
            assert_eq!(
                seconds_left, 20,
                "the deadline is the server's, from creation"
            );
            assert_eq!(inviter, user("alice"));
        }
        other => panic!("{other:?}"),
    }
    // Still OFFLINE until the device acknowledges (rule 4).
    assert_eq!(w.state(&id, "dave"), InviteeState::Offline);
    alice.sink.clear();
    w.ack(&dave, &id);
    assert_eq!(w.state(&id, "dave"), InviteeState::Received);
    assert_eq!(
        alice.sink.state_changes(&id),
        vec![("dave".to_string(), InviteeState::Received)]
    );
    w.accept(&dave, &id).unwrap();
    assert_eq!(w.state(&id, "dave"), InviteeState::Accepted);
}

#[test]
fn seconds_left_rounds_up() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let id = w.send_ok(&alice, &["dave"], 30);
    w.hub.advance(&w.clock, Duration::from_millis(10_500));
    let dave = w.login("dave", "d1");
    match dave.sink.received_push(&id).unwrap() {
        Push::InvitationReceived { seconds_left, .. } => assert_eq!(seconds_left, 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_offline_invitee_who_answers_without_logging_in_before_the_deadline_times_out() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let id = w.send_ok(&alice, &["dave"], 30);
    w.advance(30);
    assert_eq!(w.state(&id, "dave"), InviteeState::Timeout);
    assert!(alice.sink.all().contains(&Push::InvitationResponseTimeout {
        invitation_id: id.clone(),
        invitees: users(&["dave"]).into(),
    }));
    let dave = w.login("dave", "d1");
    assert_eq!(
        dave.sink.received(&id),
        0,
        "nothing rings after the deadline"
    );
    assert_eq!(err_code(w.accept(&dave, &id)), ErrorCode::InvitationClosed);
}

#[test]
fn an_offline_invitee_may_answer_before_receiving() {
    // Rule 5 allows an answer from OFFLINE (e.g. from a push notification).
    let w = World::new();
    let alice = w.login("alice", "a1");
    let id = w.send_ok(&alice, &["dave"], 30);
    let dave = w.login_nosync("dave", "d1");
    w.refuse(&dave, &id).unwrap();
    assert_eq!(w.state(&id, "dave"), InviteeState::Rejected);
    w.hub.sync(&dave.session);
    assert_eq!(dave.sink.received(&id), 0, "answered: nothing left to ring");
}

#[test]
fn online_only_makes_offline_invitees_terminal_at_once() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let mut request = SendInvitation::new(users(&["bob", "dave"]), 30);
    request.online_only = true;
    let outcome = w.hub.send(&alice.session, request).unwrap();
    assert_eq!(
        outcome.error_invitees,
        vec![status("dave", InviteeState::Offline)]
    );
    let id = outcome.invitation_id;
    let dave = w.login("dave", "d1");
    assert_eq!(
        dave.sink.received(&id),
        0,
        "online_only: not delivered later"
    );
    assert_eq!(err_code(w.accept(&dave, &id)), ErrorCode::InvitationClosed);
    assert_eq!(err_code(w.refuse(&dave, &id)), ErrorCode::InvitationClosed);
    w.ack(&dave, &id);
    assert_eq!(w.state(&id, "dave"), InviteeState::Offline);
    let cancel = w.cancel(&alice, &id, Some(&["dave"])).unwrap();
    assert_eq!(
        cancel.error_invitees,
        vec![status("dave", InviteeState::Offline)]
    );
    // bob answering ends the invitation: dave counts as terminal.
    w.accept(&bob, &id).unwrap();
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationClosed
    );
    w.advance(30);
    assert_eq!(
        w.state(&id, "dave"),
        InviteeState::Offline,
        "no TIMEOUT for a closed invitee"
    );
}

#[test]
fn online_only_with_everyone_offline_ends_at_once() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let mut request = SendInvitation::new(users(&["dave", "erin"]), 30);
    request.online_only = true;
    let outcome = w.hub.send(&alice.session, request).unwrap();
    assert_eq!(outcome.error_invitees.len(), 2);
    let id = outcome.invitation_id;
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationClosed
    );
    w.advance(30);
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationResponseTimeout { .. })),
        0
    );
    // Ended at send time: forgotten one retention period later.
    w.advance(600 - 30);
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationNotFound
    );
}

// ---- acknowledgement (rule 4) -----------------------------------------------------------

#[test]
fn acknowledge_makes_received_and_tells_every_participant() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let alice2 = w.login("alice", "a2");
    let bob = w.login("bob", "b1");
    let bob2 = w.login("bob", "b2");
    let carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol", "dave"], 30);
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    w.ack(&bob, &id);
    assert_eq!(w.state(&id, "bob"), InviteeState::Received);
    for device in [&alice, &alice2, &bob, &bob2, &carol] {
        assert_eq!(
            device.sink.state_changes(&id),
            vec![("bob".to_string(), InviteeState::Received)]
        );
    }
    // A second device's receipt changes nothing.
    w.ack(&bob2, &id);
    w.ack(&bob, &id);
    assert_eq!(alice.sink.state_changes(&id).len(), 1);
    // Receipts from non-invitees and for unknown ids are ignored.
    w.ack(&alice, &id);
    w.hub
        .acknowledge(&carol.session, &InvitationId::from_bits(12345));
    assert_eq!(alice.sink.state_changes(&id).len(), 1);
    // A receipt after an answer changes nothing.
    w.accept(&carol, &id).unwrap();
    w.ack(&carol, &id);
    assert_eq!(w.state(&id, "carol"), InviteeState::Accepted);
}

// ---- answers (rule 5) -------------------------------------------------------------------

#[test]
fn accept_tells_the_inviter_and_every_participant() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    w.hub.accept(&bob.session, answer(&id, "room 7")).unwrap();
    assert_eq!(w.state(&id, "bob"), InviteeState::Accepted);
    let to_alice = alice.sink.about(&id);
    assert_eq!(
        to_alice,
        vec![
            Push::InvitationAccepted {
                invitation_id: id.clone(),
                invitee: user("bob"),
                extended_data: "room 7".into(),
            },
            Push::UserStateChanged {
                invitation_id: id.clone(),
                user_id: user("bob"),
                state: InviteeState::Accepted,
                extended_data: "room 7".into(),
            }
        ],
        "the inviter's event comes before the state change"
    );
    for device in [&bob, &carol] {
        assert_eq!(
            device.sink.state_changes(&id),
            vec![("bob".to_string(), InviteeState::Accepted)]
        );
        assert_eq!(
            device
                .sink
                .count(|p| matches!(p, Push::InvitationAccepted { .. })),
            0
        );
    }
    // The invitation goes on for carol.
    w.hub.refuse(&carol.session, answer(&id, "busy")).unwrap();
    assert!(alice.sink.all().contains(&Push::InvitationRefused {
        invitation_id: id.clone(),
        invitee: user("carol"),
        extended_data: "busy".into(),
    }));
    assert_eq!(w.state(&id, "carol"), InviteeState::Rejected);
}

#[test]
fn the_first_answer_from_a_users_devices_wins() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let b1 = w.login("bob", "b1");
    let b2 = w.login("bob", "b2");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    assert_eq!(b1.sink.received(&id), 1);
    assert_eq!(b2.sink.received(&id), 1);
    w.accept(&b1, &id).unwrap();
    // The other device is told, so it stops ringing.
    assert_eq!(
        b2.sink.state_changes(&id),
        vec![("bob".to_string(), InviteeState::Accepted)]
    );
    let e = w.accept(&b2, &id).unwrap_err();
    assert_eq!(e.code, ErrorCode::AlreadyAnswered);
    assert!(e.message.contains("invitation_id"), "{e}");
    assert_eq!(err_code(w.refuse(&b2, &id)), ErrorCode::AlreadyAnswered);
    assert_eq!(err_code(w.accept(&b1, &id)), ErrorCode::AlreadyAnswered);
    assert_eq!(w.state(&id, "bob"), InviteeState::Accepted);
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationAccepted { .. })),
        1
    );
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationRefused { .. })),
        0
    );

    // And for a refusal.
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    w.refuse(&b2, &id).unwrap();
    assert_eq!(
        b1.sink.state_changes(&id),
        vec![("bob".to_string(), InviteeState::Rejected)]
    );
    assert_eq!(err_code(w.accept(&b1, &id)), ErrorCode::AlreadyAnswered);
    assert_eq!(w.state(&id, "bob"), InviteeState::Rejected);
}

#[test]
fn only_invitees_may_answer() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let eve = w.login("eve", "e1");
    let id = w.send_ok(&alice, &["bob"], 30);
    for result in [
        w.accept(&alice, &id),
        w.refuse(&alice, &id),
        w.accept(&eve, &id),
        w.refuse(&eve, &id),
    ] {
        assert_eq!(err_code(result), ErrorCode::NotPermitted);
    }
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
}

#[test]
fn unknown_invitations_are_not_found() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let unknown = InvitationId::from_bits(0xdead_beef);
    assert_eq!(
        err_code(w.accept(&alice, &unknown)),
        ErrorCode::InvitationNotFound
    );
    assert_eq!(
        err_code(w.refuse(&alice, &unknown)),
        ErrorCode::InvitationNotFound
    );
    assert_eq!(
        err_code(w.cancel(&alice, &unknown, None)),
        ErrorCode::InvitationNotFound
    );
    assert!(w.hub.invitee_states(&unknown).is_none());
}

// ---- cancel (rule 6) -----------------------------------------------------------------

#[test]
fn cancel_all_tells_each_invitee_and_closes_the_invitation() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    let outcome = w
        .hub
        .cancel(
            &alice.session,
            CancelInvitation {
                invitation_id: id.clone(),
                invitees: None,
                extended_data: "sorry".into(),
            },
        )
        .unwrap();
    assert!(outcome.error_invitees.is_empty());
    for (device, name) in [(&bob, "bob"), (&carol, "carol")] {
        assert_eq!(w.state(&id, name), InviteeState::Cancelled);
        assert_eq!(
            device.sink.count(|p| *p
                == Push::InvitationCancelled {
                    invitation_id: id.clone(),
                    inviter: user("alice"),
                    extended_data: "sorry".into(),
                }),
            1
        );
    }
    for device in [&alice, &bob, &carol] {
        assert_eq!(
            device.sink.state_changes(&id),
            vec![
                ("bob".to_string(), InviteeState::Cancelled),
                ("carol".to_string(), InviteeState::Cancelled)
            ]
        );
    }
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        0
    );
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::InvitationClosed);
    assert_eq!(err_code(w.refuse(&carol, &id)), ErrorCode::InvitationClosed);
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationClosed
    );
    // The deadline no longer matters.
    w.advance(30);
    assert_eq!(w.state(&id, "bob"), InviteeState::Cancelled);
    assert_eq!(
        alice
            .sink
            .count(|p| matches!(p, Push::InvitationResponseTimeout { .. })),
        0
    );
}

#[test]
fn cancel_a_subset_leaves_the_others_ringing() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let id = w.send_ok(&alice, &["bob", "carol", "dave"], 30);
    let outcome = w
        .cancel(&alice, &id, Some(&["bob", "dave", "bob"]))
        .unwrap();
    assert!(outcome.error_invitees.is_empty());
    assert_eq!(w.state(&id, "bob"), InviteeState::Cancelled);
    assert_eq!(w.state(&id, "dave"), InviteeState::Cancelled);
    assert_eq!(w.state(&id, "carol"), InviteeState::Inviting);
    assert_eq!(
        bob.sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        1
    );
    assert_eq!(
        carol
            .sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        0
    );
    assert_eq!(
        carol.sink.state_changes(&id),
        vec![
            ("bob".to_string(), InviteeState::Cancelled),
            ("dave".to_string(), InviteeState::Cancelled)
        ]
    );
    // A cancelled offline invitee no longer rings when it logs in.
    let dave = w.login("dave", "d1");
    assert_eq!(dave.sink.received(&id), 0);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::InvitationClosed);
    w.accept(&carol, &id).unwrap();
    assert_eq!(
        err_code(w.cancel(&alice, &id, Some(&["carol"]))),
        ErrorCode::InvitationClosed,
        "every invitee is terminal: the invitation has ended"
    );
}

#[test]
fn cancel_reports_terminal_invitees_with_their_state() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let _dave = w.login("dave", "d1");
    let erin = w.login("erin", "e1");
    let id = w.send_ok(&alice, &["bob", "carol", "dave", "erin", "frank"], 30);
    w.accept(&bob, &id).unwrap();
    w.refuse(&carol, &id).unwrap();
    w.cancel(&alice, &id, Some(&["erin"])).unwrap();
    erin.sink.clear();
    let outcome = w.cancel(&alice, &id, None).unwrap();
    assert_eq!(
        outcome.error_invitees,
        vec![
            status("bob", InviteeState::Accepted),
            status("carol", InviteeState::Rejected),
            status("erin", InviteeState::Cancelled),
        ]
    );
    assert_eq!(w.state(&id, "dave"), InviteeState::Cancelled);
    assert_eq!(w.state(&id, "frank"), InviteeState::Cancelled);
    assert_eq!(w.state(&id, "bob"), InviteeState::Accepted);
    assert_eq!(
        bob.sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        0
    );
    assert_eq!(
        erin.sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        0,
        "cancelled once only"
    );
}

#[test]
fn cancel_of_a_non_invitee_is_invalid_and_changes_nothing() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    bob.sink.clear();
    let e = w
        .cancel(&alice, &id, Some(&["bob", "mallory"]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("invitees[1]"), "{e}");
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    assert_eq!(bob.sink.len(), 0);
    assert_eq!(
        err_code(w.cancel(&alice, &id, Some(&["alice"]))),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn cancel_with_an_empty_list_is_invalid() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let id = w.send_ok(&alice, &["bob"], 30);
    let result = w.cancel(&alice, &id, Some(&[]));
    assert_eq!(
        w.state(&id, "bob"),
        InviteeState::Offline,
        "nothing cancelled"
    );
    assert_eq!(err_code(result), ErrorCode::InvalidArgument);
}

#[test]
fn only_the_inviter_may_cancel() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let eve = w.login("eve", "e1");
    let id = w.send_ok(&alice, &["bob"], 30);
    assert_eq!(err_code(w.cancel(&bob, &id, None)), ErrorCode::NotPermitted);
    assert_eq!(
        err_code(w.cancel(&eve, &id, Some(&["bob"]))),
        ErrorCode::NotPermitted
    );
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    // Another device of the inviter may cancel.
    let alice2 = w.login("alice", "a2");
    w.cancel(&alice2, &id, None).unwrap();
    assert_eq!(w.state(&id, "bob"), InviteeState::Cancelled);
}

// ---- rule 7 -----------------------------------------------------------------------

#[test]
fn the_inviters_last_logout_cancels_its_pending_invitations() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let pending = w.send_ok(&alice, &["bob", "carol", "dave"], 30);
    let answered = w.send_ok(&alice, &["bob"], 30);
    w.accept(&bob, &answered).unwrap();
    // alice is an invitee of carol's invitation: not hers to cancel.
    let carols = w.send_ok(&carol, &["alice"], 30);
    w.accept(&carol, &pending).unwrap();
    bob.sink.clear();

    w.hub.logout(&alice.session);
    assert_eq!(w.state(&pending, "bob"), InviteeState::Cancelled);
    assert_eq!(w.state(&pending, "dave"), InviteeState::Cancelled);
    assert_eq!(w.state(&pending, "carol"), InviteeState::Accepted);
    assert_eq!(
        bob.sink.count(|p| *p
            == Push::InvitationCancelled {
                invitation_id: pending.clone(),
                inviter: user("alice"),
                extended_data: "".into(),
            }),
        1
    );
    assert_eq!(
        carol
            .sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. })),
        0
    );
    assert_eq!(
        bob.sink.about(&answered),
        vec![],
        "an ended invitation is untouched"
    );
    assert_eq!(w.state(&carols, "alice"), InviteeState::Inviting);
    assert_eq!(
        err_code(w.accept(&bob, &pending)),
        ErrorCode::InvitationClosed
    );
    // A second logout of the same session is harmless.
    w.hub.logout(&alice.session);
    // And the offline alice still gets carol's invitation when she comes back.
    let alice_again = w.login("alice", "a1");
    assert_eq!(alice_again.sink.received(&carols), 1);
}

#[test]
fn logout_of_one_inviter_device_keeps_invitations_while_another_remains() {
    let w = World::new();
    let a1 = w.login("alice", "a1");
    let a2 = w.login("alice", "a2");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&a1, &["bob"], 30);
    w.hub.logout(&a1.session);
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    assert_eq!(w.hub.device_count(&user("alice")), 1);
    // The answer reaches the remaining device.
    w.accept(&bob, &id).unwrap();
    assert_eq!(
        a2.sink
            .count(|p| matches!(p, Push::InvitationAccepted { .. })),
        1
    );
    assert_eq!(
        a1.sink
            .count(|p| matches!(p, Push::InvitationAccepted { .. })),
        0,
        "a logged-out session gets nothing"
    );
    let id2 = w.send_ok(&a2, &["bob"], 30);
    w.hub.logout(&a2.session);
    assert_eq!(w.state(&id2, "bob"), InviteeState::Cancelled);
}

#[test]
fn a_kicked_out_inviter_device_does_not_cancel() {
    let w = World::new();
    let a1 = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let id = w.send_ok(&a1, &["bob"], 30);
    let a1_again = w.login("alice", "a1");
    assert_eq!(a1.sink.kicked(), 1);
    // Logging out the kicked session does nothing.
    w.hub.logout(&a1.session);
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    w.hub.logout(&a1_again.session);
    assert_eq!(w.state(&id, "bob"), InviteeState::Cancelled);
}

// ---- retention (rule 8) ----------------------------------------------------------------

#[test]
fn an_ended_invitation_gives_precise_errors_until_retention_passes() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let eve = w.login("eve", "e1");
    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    w.advance(5);
    w.accept(&bob, &id).unwrap();
    w.cancel(&alice, &id, Some(&["carol"])).unwrap(); // ends it at t=5

    w.advance(599);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::AlreadyAnswered);
    assert_eq!(err_code(w.refuse(&bob, &id)), ErrorCode::AlreadyAnswered);
    assert_eq!(err_code(w.accept(&carol, &id)), ErrorCode::InvitationClosed);
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationClosed
    );
    assert_eq!(err_code(w.cancel(&bob, &id, None)), ErrorCode::NotPermitted);
    assert_eq!(err_code(w.accept(&eve, &id)), ErrorCode::NotPermitted);
    assert!(w.hub.invitee_states(&id).is_some());

    w.advance(1); // t = 605: retention (600 s) has passed since the end
    assert!(w.hub.invitee_states(&id).is_none());
    for result in [
        w.accept(&bob, &id),
        w.refuse(&bob, &id),
        w.accept(&carol, &id),
        w.accept(&eve, &id),
    ] {
        assert_eq!(err_code(result), ErrorCode::InvitationNotFound);
    }
    assert_eq!(
        err_code(w.cancel(&alice, &id, None)),
        ErrorCode::InvitationNotFound
    );
}

#[test]
fn retention_counts_from_the_timeout_and_is_configurable() {
    let w = World::with(HubConfig {
        retention: Duration::from_secs(60),
        ..HubConfig::default()
    });
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 100);
    w.advance(100);
    assert_eq!(w.state(&id, "bob"), InviteeState::Timeout);
    w.advance(59);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::InvitationClosed);
    w.advance(1);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::InvitationNotFound);
}

#[test]
fn a_ringing_invitation_is_not_forgotten() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 600);
    w.advance(599);
    w.accept(&bob, &id).unwrap();
    w.advance(599);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::AlreadyAnswered);
}

// ---- rule 9 -------------------------------------------------------------------------

#[test]
fn a_device_receives_an_invitation_at_most_once() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let b1 = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob", "dave"], 30);
    for _ in 0..5 {
        w.hub.sync(&b1.session);
    }
    assert_eq!(b1.sink.received(&id), 1);

    let d1 = w.login("dave", "d1");
    for _ in 0..5 {
        w.hub.sync(&d1.session);
    }
    w.ack(&d1, &id);
    w.hub.sync(&d1.session);
    assert_eq!(d1.sink.received(&id), 1);
    // A second device of bob gets it too, once.
    let b2 = w.login("bob", "b2");
    w.hub.sync(&b2.session);
    w.hub.sync(&b1.session);
    assert_eq!(b2.sink.received(&id), 1);
    assert_eq!(b1.sink.received(&id), 1);
    // After an answer nothing rings again.
    w.accept(&b1, &id).unwrap();
    let b3 = w.login("bob", "b3");
    assert_eq!(b3.sink.received(&id), 0);
}

// ---- devices -----------------------------------------------------------------------

#[test]
fn the_same_device_logging_in_again_kicks_the_old_session() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let old = w.login("bob", "phone");
    let id = w.send_ok(&alice, &["bob"], 30);
    let new = w.login("bob", "phone");
    assert_eq!(w.hub.device_count(&user("bob")), 1);
    assert_eq!(old.sink.all().last(), Some(&Push::KickedOut));
    assert_eq!(old.sink.kicked(), 1);
    assert!(!old.session.is_alive());
    assert_eq!(new.sink.kicked(), 0);
    // The new session gets what still rings.
    assert_eq!(new.sink.received(&id), 1);
    // The old one can do nothing more.
    assert_eq!(err_code(w.accept(&old, &id)), ErrorCode::NotLoggedIn);
    assert_eq!(err_code(w.refuse(&old, &id)), ErrorCode::NotLoggedIn);
    assert_eq!(
        err_code(w.send(&old, &["alice"], 10)),
        ErrorCode::NotLoggedIn
    );
    assert_eq!(err_code(w.cancel(&old, &id, None)), ErrorCode::NotLoggedIn);
    assert_eq!(
        err_code(w.hub.renew_token(&old.session, "t")),
        ErrorCode::NotLoggedIn
    );
    w.ack(&old, &id);
    assert_eq!(w.state(&id, "bob"), InviteeState::Inviting);
    // And is handed nothing more.
    let before = old.sink.len();
    w.accept(&new, &id).unwrap();
    w.hub.sync(&old.session);
    assert_eq!(old.sink.len(), before);
    // A different user may use the same device id.
    let _carol = w.login("carol", "phone");
    assert_eq!(new.sink.kicked(), 0);
}

#[test]
fn at_most_ten_devices_per_user() {
    let w = World::new();
    let devices: Vec<Device> = (0..10).map(|i| w.login("bob", &format!("d{i}"))).collect();
    assert_eq!(w.hub.device_count(&user("bob")), 10);
    let e = w.try_login("bob", "d10", "t").err().expect("11th refused");
    assert_eq!(e.code, ErrorCode::NotPermitted);
    assert_eq!(w.hub.device_count(&user("bob")), 10);
    // A device id already in use replaces its session even at the limit.
    let d3 = w.try_login("bob", "d3", "t").unwrap();
    w.hub.sync(&d3.session); // a session gets pushes once it has synced
    assert_eq!(devices[3].sink.kicked(), 1);
    assert_eq!(w.hub.device_count(&user("bob")), 10);
    // After a logout there is room again.
    w.hub.logout(&devices[0].session);
    assert!(w.try_login("bob", "d10", "t").is_ok());
    assert!(w.try_login("bob", "d11", "t").is_err());
    // Every device rings.
    let alice = w.login("alice", "a1");
    let id = w.send_ok(&alice, &["bob"], 10);
    assert_eq!(d3.sink.received(&id), 1);
    for (i, device) in devices.iter().enumerate() {
        let expected = usize::from(i != 0 && i != 3);
        assert_eq!(device.sink.received(&id), expected, "d{i}");
    }
}

#[test]
fn operations_after_logout_are_not_logged_in() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 30);
    w.hub.logout(&bob.session);
    assert_eq!(w.hub.device_count(&user("bob")), 0);
    assert_eq!(err_code(w.accept(&bob, &id)), ErrorCode::NotLoggedIn);
    assert_eq!(
        err_code(w.send(&bob, &["alice"], 10)),
        ErrorCode::NotLoggedIn
    );
    assert_eq!(
        w.state(&id, "bob"),
        InviteeState::Inviting,
        "still pending for bob"
    );
}

// ---- idempotency ---------------------------------------------------------------------

fn keyed(to: &[&str], key: &str) -> SendInvitation {
    let mut request = SendInvitation::new(users(to), 30);
    request.idempotency_key = Some(key.into());
    request
}

#[test]
fn the_same_idempotency_key_returns_the_same_invitation() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let first = w
        .hub
        .send(&alice.session, keyed(&["bob", "dave"], "k1"))
        .unwrap();
    let again = w
        .hub
        .send(&alice.session, keyed(&["bob", "dave"], "k1"))
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(
        first.error_invitees,
        vec![status("dave", InviteeState::Offline)]
    );
    assert_eq!(bob.sink.received(&first.invitation_id), 1, "not rung twice");
    // From another device of the same inviter (a retry after a reconnect).
    let alice2 = w.login("alice", "a2");
    let third = w
        .hub
        .send(&alice2.session, keyed(&["bob", "dave"], "k1"))
        .unwrap();
    assert_eq!(third, first);
    assert_eq!(bob.sink.received(&first.invitation_id), 1);

    let other_key = w.hub.send(&alice.session, keyed(&["bob"], "k2")).unwrap();
    assert_ne!(other_key.invitation_id, first.invitation_id);
    let other_inviter = w.hub.send(&carol.session, keyed(&["bob"], "k1")).unwrap();
    assert_ne!(other_inviter.invitation_id, first.invitation_id);
    assert_ne!(other_inviter.invitation_id, other_key.invitation_id);
    check_id_format(&other_inviter.invitation_id);

    // After the invitation ended, within retention, a retry still gets the
    // original outcome and rings nobody.
    w.accept(&bob, &first.invitation_id).unwrap();
    w.cancel(&alice, &first.invitation_id, None).unwrap();
    let late = w
        .hub
        .send(&alice.session, keyed(&["bob", "dave"], "k1"))
        .unwrap();
    assert_eq!(late, first);
    assert_eq!(bob.sink.received(&first.invitation_id), 1);
    assert_eq!(w.state(&first.invitation_id, "bob"), InviteeState::Accepted);
}

#[test]
fn an_idempotent_resend_after_retention_keeps_its_own_deadline() {
    // Retention shorter than the timeout: the first invitation ends and is
    // forgotten before its deadline (t=600) would have come. A resend with the
    // same key makes a new invitation with the same id, deadline t=612; the
    // first one's deadline must not time it out.
    let w = World::with(HubConfig {
        retention: Duration::from_secs(10),
        ..HubConfig::default()
    });
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let mut request = keyed(&["bob"], "k");
    request.timeout_secs = 600;
    let first = w.hub.send(&alice.session, request.clone()).unwrap();
    w.accept(&bob, &first.invitation_id).unwrap();
    w.advance(11);
    assert!(w.hub.invitee_states(&first.invitation_id).is_none());
    w.advance(1); // t = 12
    let second = w.hub.send(&alice.session, request).unwrap();
    assert_eq!(second.invitation_id, first.invitation_id);
    w.advance(590); // t = 602: the first incarnation's deadline (600) has passed
    assert_eq!(
        w.state(&second.invitation_id, "bob"),
        InviteeState::Inviting,
        "timed out 10 s early by the old invitation's deadline timer"
    );
}

// ---- open-invitation quota ---------------------------------------------------------

fn quota_world(max_open_invitations: usize) -> World {
    World::with(HubConfig {
        max_open_invitations,
        ..HubConfig::default()
    })
}

#[test]
fn the_open_invitation_quota_defaults_to_100_and_is_bounded() {
    assert_eq!(HubConfig::default().max_open_invitations, 100);
    for (value, valid) in [(0, false), (1, true), (100_000, true), (100_001, false)] {
        let result = Hub::with_manual_clock(
            HubConfig {
                max_open_invitations: value,
                ..HubConfig::default()
            },
            ManualClock::new(T0),
        );
        match result {
            Ok(_) => assert!(valid, "{value} accepted"),
            Err(e) => {
                assert!(!valid, "{value} refused: {e}");
                assert_eq!(e.code, ErrorCode::InvalidArgument);
                assert!(e.message.starts_with("max_open_invitations"), "{e}");
            }
        }
    }
}

#[test]
fn a_user_with_the_limit_open_is_rate_limited() {
    let w = quota_world(3);
    let alice = w.login("alice", "a1");
    let alice2 = w.login("alice", "a2");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    w.send_ok(&alice, &["bob"], 30);
    w.send_ok(&alice2, &["bob"], 30);
    w.send_ok(&alice, &["bob", "dave"], 30); // an offline invitee keeps it open
    assert_eq!(w.hub.open_invitations(&user("alice")), 3);
    for device in [&alice, &alice2] {
        let e = w.send(device, &["bob"], 30).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(
            e.message,
            "send: 'alice' has 3 invitations open, the limit of this hub"
        );
    }
    assert_eq!(w.hub.stats().quota_refused, 2);
    assert_eq!(w.hub.stats().created, 3);
    assert_eq!(
        bob.sink
            .count(|p| matches!(p, Push::InvitationReceived { .. })),
        3,
        "a refused send rings nobody"
    );
    // The quota is the inviter's: being invited does not count, and other
    // users are not affected.
    w.send_ok(&carol, &["alice"], 30);
    w.send_ok(&bob, &["alice"], 30);
    assert_eq!(w.hub.open_invitations(&user("alice")), 3);
    assert_eq!(w.hub.open_invitations(&user("bob")), 1);
}

#[test]
fn every_way_an_invitation_ends_frees_its_place() {
    let w = quota_world(1);
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let open = |w: &World| w.hub.open_invitations(&user("alice"));
    let full = |w: &World, alice: &Device| {
        assert_eq!(
            err_code(w.send(alice, &["bob"], 30)),
            ErrorCode::RateLimited
        );
    };

    let id = w.send_ok(&alice, &["bob"], 30);
    full(&w, &alice);
    w.accept(&bob, &id).unwrap();
    assert_eq!(open(&w), 0, "accepted");

    let id = w.send_ok(&alice, &["bob"], 30);
    full(&w, &alice);
    w.refuse(&bob, &id).unwrap();
    assert_eq!(open(&w), 0, "refused");

    let id = w.send_ok(&alice, &["bob", "carol"], 30);
    w.cancel(&alice, &id, Some(&["carol"])).unwrap();
    full(&w, &alice); // bob still rings
    w.cancel(&alice, &id, None).unwrap();
    assert_eq!(open(&w), 0, "cancelled");

    w.send_ok(&alice, &["bob"], 5);
    full(&w, &alice);
    w.advance(5);
    assert_eq!(open(&w), 0, "timed out");

    // Online-only to someone offline ends at once.
    let mut request = SendInvitation::new(users(&["dave"]), 30);
    request.online_only = true;
    w.hub.send(&alice.session, request).unwrap();
    assert_eq!(open(&w), 0, "ended at once");

    // Rule 7: the inviter's last logout cancels, and gives the place back.
    let id = w.send_ok(&alice, &["bob"], 30);
    w.hub.logout(&alice.session);
    assert_eq!(w.state(&id, "bob"), InviteeState::Cancelled);
    assert_eq!(open(&w), 0, "departed inviter");
    let alice = w.login("alice", "a1");
    w.send_ok(&alice, &["bob"], 30);
    assert_eq!(open(&w), 1);
    assert_eq!(w.hub.stats().quota_refused, 4);
}

#[test]
fn an_idempotent_retry_at_the_limit_gets_its_outcome() {
    let w = quota_world(1);
    let alice = w.login("alice", "a1");
    let _bob = w.login("bob", "b1");
    let first = w
        .hub
        .send(&alice.session, keyed(&["bob", "dave"], "k"))
        .unwrap();
    let again = w
        .hub
        .send(&alice.session, keyed(&["bob", "dave"], "k"))
        .unwrap();
    assert_eq!(again, first);
    let alice2 = w.login("alice", "a2");
    let from_another_device = w
        .hub
        .send(&alice2.session, keyed(&["bob", "dave"], "k"))
        .unwrap();
    assert_eq!(from_another_device, first);
    assert_eq!(
        err_code(w.hub.send(&alice.session, keyed(&["bob"], "other"))),
        ErrorCode::RateLimited
    );
    assert_eq!(w.hub.open_invitations(&user("alice")), 1);
    assert_eq!(w.hub.stats().quota_refused, 1, "retries are not refusals");
}

#[test]
fn open_invitation_counts_stay_exact_under_many_threads() {
    // Four devices of alice send and cancel, two devices each of bob and carol
    // accept and refuse, and the clock runs deadlines out, all at once. The
    // quota is never overshot, and once everything has ended nothing is left
    // counted.
    const LIMIT: usize = 8;
    const ROUNDS: usize = 300;
    let w = Arc::new(quota_world(LIMIT));
    let senders: Vec<Arc<Device>> = (0..4)
        .map(|i| Arc::new(w.login("alice", &format!("a{i}"))))
        .collect();
    let answerers: Vec<Arc<Device>> = ["bob", "carol"]
        .iter()
        .flat_map(|name| (0..2).map(|i| Arc::new(w.login(name, &format!("d{i}")))))
        .collect();
    let sent: Arc<Mutex<Vec<InvitationId>>> = Arc::default();
    let refusals = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(senders.len() + answerers.len() + 1));
    let mut handles = Vec::new();
    for (i, device) in senders.iter().enumerate() {
        let (w, device, sent, refusals, barrier) = (
            w.clone(),
            device.clone(),
            sent.clone(),
            refusals.clone(),
            barrier.clone(),
        );
        handles.push(thread::spawn(move || {
            barrier.wait();
            for round in 0..ROUNDS {
                match w.send(&device, &["bob", "carol"], 3) {
                    Ok(outcome) => {
                        let id = outcome.invitation_id;
                        sent.lock().unwrap().push(id.clone());
                        if (round + i) % 2 == 0 {
                            if let Err(e) = w.cancel(&device, &id, None) {
                                assert_eq!(e.code, ErrorCode::InvitationClosed, "{e}");
                            }
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
                        refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // Make room: cancel one of the oldest, racing answers.
                        let oldest = {
                            let sent = sent.lock().unwrap();
                            let from = sent.len().saturating_sub(LIMIT);
                            sent.get(from + round % LIMIT).cloned()
                        };
                        if let Some(id) = oldest {
                            if let Err(e) = w.cancel(&device, &id, None) {
                                assert_eq!(e.code, ErrorCode::InvitationClosed, "{e}");
                            }
                        }
                    }
                }
                let open = w.hub.open_invitations(&user("alice"));
                assert!(open <= LIMIT, "{open} open, the limit is {LIMIT}");
            }
        }));
    }
    for (i, device) in answerers.iter().enumerate() {
        let (w, device, sent, barrier) = (w.clone(), device.clone(), sent.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for round in 0..ROUNDS {
                // One of the most recent few, so answers race cancels.
                let recent = {
                    let sent = sent.lock().unwrap();
                    let from = sent.len().saturating_sub(4);
                    sent[from..].get((round + i) % 4).cloned()
                };
                let Some(id) = recent else {
                    thread::yield_now();
                    continue;
                };
                let result = if (round + i) % 2 == 0 {
                    w.accept(&device, &id)
                } else {
                    w.refuse(&device, &id)
                };
                if let Err(e) = result {
                    assert!(
                        matches!(
                            e.code,
                            ErrorCode::AlreadyAnswered | ErrorCode::InvitationClosed
                        ),
                        "{e}"
                    );
                }
            }
        }));
    }
    {
        let (w, barrier) = (w.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for _ in 0..100 {
                thread::yield_now();
                w.advance(1);
            }
        }));
    }
    for handle in handles {
        handle.join().unwrap();
    }
    // Quiet now: the count is exactly the invitations not yet ended.
    let sent = sent.lock().unwrap().clone();
    let still_open = sent
        .iter()
        .filter(|id| {
            w.hub
                .invitee_states(id)
                .is_some_and(|states| states.iter().any(|s| !is_terminal(s.state)))
        })
        .count();
    assert_eq!(w.hub.open_invitations(&user("alice")), still_open);
    let stats = w.hub.stats();
    assert_eq!(stats.created, sent.len() as u64);
    assert_eq!(
        stats.quota_refused,
        refusals.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        stats.quota_refused > 0,
        "the limit was reached at least once"
    );
    w.advance(3);
    assert_eq!(w.hub.open_invitations(&user("alice")), 0);
    eprintln!(
        "quota stress: {} sent, {} refused",
        sent.len(),
        stats.quota_refused
    );
}

// ---- snapshot (a client that lost its session) ---------------------------------------

/// The snapshot's entry for `id`, if listed.
fn listed<'a>(snapshot: &'a Snapshot, id: &InvitationId) -> Option<&'a InvitationSnapshot> {
    let mut found = snapshot
        .invitations
        .iter()
        .filter(|i| &i.invitation_id == id);
    let first = found.next();
    assert!(found.next().is_none(), "{id} listed twice");
    first
}

#[test]
fn a_snapshot_as_inviter_shows_answers_given_while_away() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let dave = w.login("dave", "d1");
    let ringing = w.send_ok(&alice, &["bob", "carol"], 30);
    let answered = w.send_ok(&alice, &["dave"], 30);
    let not_named = w.send_ok(&alice, &["dave"], 30);
    w.ack(&carol, &ringing);
    // Alice's session is lost; meanwhile bob and dave answer.
    w.advance(10);
    w.accept(&bob, &ringing).unwrap();
    w.accept(&dave, &answered).unwrap();
    w.refuse(&dave, &not_named).unwrap();
    let alice = w.login("alice", "a1"); // the same device, afresh
    let snapshot = w
        .hub
        .snapshot(&alice.session, &[ringing.clone(), answered.clone()]);

    assert_eq!(
        listed(&snapshot, &ringing),
        Some(&InvitationSnapshot {
            invitation_id: ringing.clone(),
            inviter: user("alice"),
            invitees: vec![
                status("bob", InviteeState::Accepted),
                status("carol", InviteeState::Received),
            ]
            .into(),
            ended: false,
            seconds_left: 20,
        })
    );
    assert_eq!(
        listed(&snapshot, &answered),
        Some(&InvitationSnapshot {
            invitation_id: answered.clone(),
            inviter: user("alice"),
            invitees: vec![status("dave", InviteeState::Accepted)].into(),
            ended: true,
            seconds_left: 0,
        })
    );
    assert!(
        listed(&snapshot, &not_named).is_none(),
        "an ended invitation is told only if named"
    );
    assert_eq!(snapshot.invitations.len(), 2);
    assert!(snapshot.unknown.is_empty());
    assert!(
        !snapshot.invitations[0].ended,
        "the open ones come first: {snapshot:?}"
    );
}

#[test]
fn a_snapshot_as_invitee_shows_a_cancel_missed_while_away() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let cancelled = w.send_ok(&alice, &["bob"], 30);
    let ringing = w.send_ok(&alice, &["bob", "carol"], 60);
    let carols = w.send_ok(&alice, &["carol"], 30); // bob is not in it
    w.ack(&bob, &cancelled);
    w.ack(&bob, &ringing);
    // Bob's session is lost; meanwhile alice cancels the first.
    drop(bob);
    w.cancel(&alice, &cancelled, None).unwrap();
    w.advance(5);
    let bob = w.login_nosync("bob", "b1");
    let known = [cancelled.clone(), ringing.clone(), cancelled.clone()];
    let snapshot = w.hub.snapshot(&bob.session, &known);

    assert_eq!(
        snapshot.invitations,
        vec![
            InvitationSnapshot {
                invitation_id: ringing.clone(),
                inviter: user("alice"),
                invitees: vec![
                    status("bob", InviteeState::Received),
                    status("carol", InviteeState::Offline),
                ]
                .into(),
                ended: false,
                seconds_left: 55,
            },
            InvitationSnapshot {
                invitation_id: cancelled.clone(),
                inviter: user("alice"),
                invitees: vec![status("bob", InviteeState::Cancelled)].into(),
                ended: true,
                seconds_left: 0,
            },
        ],
        "named twice, listed once"
    );
    assert!(listed(&snapshot, &carols).is_none());
    assert!(snapshot.unknown.is_empty());
    // A snapshot only reads: the sync that follows still rings bob.
    assert!(bob.sink.all().is_empty());
    w.hub.sync(&bob.session);
    assert_eq!(bob.sink.received(&ringing), 1);
    assert_eq!(bob.sink.received(&cancelled), 0);
}

#[test]
fn a_forgotten_invitation_is_unknown_in_a_snapshot() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 30);
    w.accept(&bob, &id).unwrap();
    w.advance(599);
    let kept = w.hub.snapshot(&bob.session, std::slice::from_ref(&id));
    assert!(listed(&kept, &id).is_some_and(|i| i.ended));
    w.advance(1); // retention (600 s) is over
    let forgotten = w.hub.snapshot(&bob.session, std::slice::from_ref(&id));
    assert!(forgotten.invitations.is_empty());
    assert_eq!(forgotten.unknown, vec![id]);
}

#[test]
fn someone_elses_invitation_is_unknown_in_a_snapshot() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let carol = w.login("carol", "c1");
    let dave = w.login("dave", "d1");
    let mine = w.send_ok(&alice, &["bob"], 30);
    let open = w.send_ok(&carol, &["dave"], 30);
    let ended = w.send_ok(&carol, &["dave"], 30);
    w.accept(&dave, &ended).unwrap();
    let never = InvitationId::from_bits(42);
    let known = [open.clone(), ended.clone(), never.clone(), mine.clone()];
    let snapshot = w.hub.snapshot(&bob.session, &known);
    assert_eq!(snapshot.unknown, vec![open, ended, never]);
    assert_eq!(snapshot.invitations.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot.invitations[0].invitation_id, mine);
    assert_eq!(snapshot.invitations[0].inviter, user("alice"));
}

#[test]
fn a_snapshot_considers_at_most_max_known_ids_and_none_after_logout() {
    let w = World::new();
    let alice = w.login("alice", "a1");
    let bob = w.login("bob", "b1");
    let id = w.send_ok(&alice, &["bob"], 30);
    w.accept(&bob, &id).unwrap();
    let mut known: Vec<InvitationId> = (0..Snapshot::MAX_KNOWN as u128)
        .map(|i| InvitationId::from_bits(i + 1))
        .collect();
    known.push(id.clone()); // one past the limit: not looked at
    let snapshot = w.hub.snapshot(&alice.session, &known);
    assert!(snapshot.invitations.is_empty());
    assert_eq!(snapshot.unknown.len(), Snapshot::MAX_KNOWN);
    assert!(!snapshot.unknown.contains(&id));

    let open = w.send_ok(&alice, &["bob"], 30);
    assert_eq!(w.hub.snapshot(&alice.session, &[]).invitations.len(), 1);
    w.hub.logout(&bob.session);
    assert_eq!(
        w.hub.snapshot(&bob.session, &[open, id]),
        Snapshot::default(),
        "an ended session learns nothing"
    );
}

// ---- tokens --------------------------------------------------------------------------

const SECRET: &[u8] = b"hub-secret";

#[test]
fn a_hub_with_a_secret_checks_tokens() {
    let w = World::with_secret(SECRET);
    let alice = user("alice");
    let good = beckon::token::mint(SECRET, &alice, T0 + 3600);

    for bad in ["", "garbage", "v1.1.00", &good[..good.len() - 1]] {
        let e = w.try_login("alice", "a1", bad).err().expect("refused");
        assert_eq!(e.code, ErrorCode::AuthFailed, "{bad:?}");
    }
    let bobs = beckon::token::mint(SECRET, &user("bob"), T0 + 3600);
    assert_eq!(
        w.try_login("alice", "a1", &bobs).err().unwrap().code,
        ErrorCode::AuthFailed,
        "a token for another user"
    );
    let other_secret = beckon::token::mint(b"other", &alice, T0 + 3600);
    assert_eq!(
        w.try_login("alice", "a1", &other_secret)
            .err()
            .unwrap()
            .code,
        ErrorCode::AuthFailed
    );
    let expired = beckon::token::mint(SECRET, &alice, T0 - 1);
    assert_eq!(
        w.try_login("alice", "a1", &expired).err().unwrap().code,
        ErrorCode::TokenExpired
    );
    let at_now = beckon::token::mint(SECRET, &alice, T0);
    assert_eq!(
        w.try_login("alice", "a1", &at_now).err().unwrap().code,
        ErrorCode::TokenExpired
    );
    assert_eq!(
        w.hub.device_count(&alice),
        0,
        "failed logins leave no session"
    );

    let device = w.try_login("alice", "a1", &good).unwrap();
    assert_eq!(device.session.token_expiry(), T0 + 3600);

    // The manual clock's wall time drives expiry.
    let short = beckon::token::mint(SECRET, &alice, T0 + 100);
    assert!(w.try_login("alice", "a2", &short).is_ok());
    w.advance(100);
    assert_eq!(
        w.try_login("alice", "a3", &short).err().unwrap().code,
        ErrorCode::TokenExpired
    );
}

#[test]
fn renew_token_replaces_the_expiry() {
    let w = World::with_secret(SECRET);
    let alice = user("alice");
    let first = beckon::token::mint(SECRET, &alice, T0 + 60);
    let device = w.try_login("alice", "a1", &first).unwrap();
    let renewed = beckon::token::mint(SECRET, &alice, T0 + 7200);
    w.hub.renew_token(&device.session, &renewed).unwrap();
    assert_eq!(device.session.token_expiry(), T0 + 7200);

    assert_eq!(
        err_code(w.hub.renew_token(&device.session, "junk")),
        ErrorCode::AuthFailed
    );
    let bobs = beckon::token::mint(SECRET, &user("bob"), T0 + 7200);
    assert_eq!(
        err_code(w.hub.renew_token(&device.session, &bobs)),
        ErrorCode::AuthFailed
    );
    let expired = beckon::token::mint(SECRET, &alice, T0 - 5);
    assert_eq!(
        err_code(w.hub.renew_token(&device.session, &expired)),
        ErrorCode::TokenExpired
    );
    assert_eq!(
        device.session.token_expiry(),
        T0 + 7200,
        "failed renewals change nothing"
    );
}

#[test]
fn a_hub_without_a_secret_accepts_any_token() {
    let w = World::new();
    for token in ["", "anything", "v1.1.00"] {
        let device = w
            .try_login("alice", &format!("d{}", token.len()), token)
            .unwrap();
        assert_eq!(device.session.token_expiry(), 0);
        w.hub.renew_token(&device.session, "whatever").unwrap();
    }
}

#[test]
fn token_will_expire_is_pushed_30_seconds_before_expiry_and_the_session_ends_at_expiry() {
    let w = World::with_secret(SECRET);
    let token = beckon::token::mint(SECRET, &user("alice"), T0 + 100);
    let device = w.try_login("alice", "a1", &token).unwrap();
    w.hub.sync(&device.session);
    w.advance(69);
    assert_eq!(
        device
            .sink
            .count(|p| matches!(p, Push::TokenWillExpire { .. })),
        0
    );
    w.advance(1);
    assert_eq!(
        device.sink.all(),
        vec![Push::TokenWillExpire { seconds_left: 30 }]
    );
    w.advance(30);
    assert_eq!(
        device.sink.all(),
        vec![
            Push::TokenWillExpire { seconds_left: 30 },
            Push::TokenExpired
        ]
    );
    assert!(!device.session.is_alive());
    assert_eq!(w.hub.device_count(&user("alice")), 0);
}

#[test]
fn a_session_that_never_syncs_still_expires_with_its_token() {
    let w = World::with_secret(SECRET);
    let token = beckon::token::mint(SECRET, &user("alice"), T0 + 100);
    let device = w.try_login("alice", "a1", &token).unwrap();
    w.advance(99);
    assert!(device.session.is_alive());
    assert!(
        device.sink.all().is_empty(),
        "no warning before the first sync"
    );
    w.advance(1);
    assert!(!device.session.is_alive());
    assert_eq!(device.sink.all(), vec![Push::TokenExpired]);
    assert_eq!(w.hub.device_count(&user("alice")), 0);
}

#[test]
fn a_renewed_token_moves_the_warning_and_the_expiry() {
    let w = World::with_secret(SECRET);
    let token = beckon::token::mint(SECRET, &user("alice"), T0 + 100);
    let device = w.try_login("alice", "a1", &token).unwrap();
    w.hub.sync(&device.session);
    w.advance(50);
    let renewed = beckon::token::mint(SECRET, &user("alice"), T0 + 200);
    w.hub.renew_token(&device.session, &renewed).unwrap();
    w.advance(60); // past the first token's warning and expiry
    assert!(device.sink.all().is_empty(), "{:?}", device.sink.all());
    assert!(device.session.is_alive());
    w.advance(60); // T0 + 170: the renewed token's warning
    assert_eq!(
        device.sink.all(),
        vec![Push::TokenWillExpire { seconds_left: 30 }]
    );
}

#[test]
fn the_manual_clocks_wall_time_keeps_sub_second_steps() {
    let w = World::with_secret(SECRET);
    let token = beckon::token::mint(SECRET, &user("alice"), T0 + 1);
    for _ in 0..4 {
        w.hub.advance(&w.clock, Duration::from_millis(500));
    }
    // Two seconds have passed on the monotonic clock; the token expired at T0+1.
    assert_eq!(
        w.try_login("alice", "a1", &token).err().map(|e| e.code),
        Some(ErrorCode::TokenExpired)
    );
}

// ---- concurrency --------------------------------------------------------------------

/// Which of the three contenders ended bob's part of the invitation.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Winner {
    Accept,
    Cancel,
    Timeout,
}

#[test]
fn accept_cancel_and_timeout_race_to_one_winner() {
    let mut wins = [0usize; 3];
    for round in 0..300 {
        let w = Arc::new(World::new());
        let alice = Arc::new(w.login("alice", "a1"));
        let bob = Arc::new(w.login("bob", "b1"));
        let carol = w.login("carol", "c1");
        let id = w.send_ok(&alice, &["bob", "carol"], 10);
        w.advance(9);
        let barrier = Arc::new(Barrier::new(3));

        let accept = {
            let (w, bob, id, barrier) = (w.clone(), bob.clone(), id.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.accept(&bob, &id)
            })
        };
        let cancel = {
            let (w, alice, id, barrier) = (w.clone(), alice.clone(), id.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.cancel(&alice, &id, Some(&["bob"]))
            })
        };
        let timer = {
            let (w, barrier) = (w.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.advance(1);
            })
        };
        let accepted = accept.join().unwrap();
        let cancelled = cancel.join().unwrap();
        timer.join().unwrap();

        let final_state = w.state(&id, "bob");
        let winner = match final_state {
            InviteeState::Accepted => Winner::Accept,
            InviteeState::Cancelled => Winner::Cancel,
            InviteeState::Timeout => Winner::Timeout,
            other => panic!("round {round}: bob ended {other:?}"),
        };
        wins[winner as usize] += 1;
        // Carol was never answered: she timed out in every case.
        assert_eq!(w.state(&id, "carol"), InviteeState::Timeout);

        // The results agree with the winner.
        match winner {
            Winner::Accept => {
                assert_eq!(accepted, Ok(()), "round {round}");
                // The cancel came later (reports bob ACCEPTED) or after the
                // timeout ended the invitation.
                match &cancelled {
                    Ok(outcome) => assert_eq!(
                        outcome.error_invitees,
                        vec![status("bob", InviteeState::Accepted)]
                    ),
                    Err(e) => assert_eq!(e.code, ErrorCode::InvitationClosed),
                }
            }
            Winner::Cancel => {
                assert_eq!(cancelled.as_ref().unwrap().error_invitees, vec![]);
                assert_eq!(err_code(accepted), ErrorCode::InvitationClosed);
            }
            Winner::Timeout => {
                assert_eq!(err_code(accepted), ErrorCode::InvitationClosed);
                assert_eq!(
                    cancelled.as_ref().map_err(|e| e.code).unwrap_err(),
                    ErrorCode::InvitationClosed
                );
            }
        }

        // Each party saw exactly one terminal state for bob, the final one.
        for (device, name) in [(&*alice, "alice"), (&*bob, "bob"), (&carol, "carol")] {
            let bob_terminals: Vec<InviteeState> = device
                .sink
                .state_changes(&id)
                .into_iter()
                .filter(|(u, s)| u == "bob" && is_terminal(*s))
                .map(|(_, s)| s)
                .collect();
            assert_eq!(bob_terminals, vec![final_state], "round {round}, {name}");
        }
        let bob_saw_cancel = bob
            .sink
            .count(|p| matches!(p, Push::InvitationCancelled { .. }));
        let bob_saw_timeout = bob
            .sink
            .count(|p| matches!(p, Push::InvitationTimeout { .. }));
        assert_eq!(bob_saw_cancel, usize::from(winner == Winner::Cancel));
        assert_eq!(bob_saw_timeout, usize::from(winner == Winner::Timeout));
        assert_eq!(
            alice
                .sink
                .count(|p| matches!(p, Push::InvitationAccepted { .. })),
            usize::from(winner == Winner::Accept)
        );
        let timed_out: Vec<UserId> = alice
            .sink
            .all()
            .into_iter()
            .filter_map(|p| match p {
                Push::InvitationResponseTimeout { invitees, .. } => Some(invitees.to_vec()),
                _ => None,
            })
            .flatten()
            .collect();
        let mut expected = Vec::new();
        if winner == Winner::Timeout {
            expected.push(user("bob"));
        }
        expected.push(user("carol"));
        assert_eq!(timed_out, expected, "round {round}");
    }
    eprintln!("accept/cancel/timeout wins: {wins:?}");
}

#[test]
fn two_devices_answering_at_once_one_wins() {
    for round in 0..400 {
        let w = Arc::new(World::new());
        let alice = w.login("alice", "a1");
        let b1 = Arc::new(w.login("bob", "b1"));
        let b2 = Arc::new(w.login("bob", "b2"));
        let id = w.send_ok(&alice, &["bob"], 30);
        let barrier = Arc::new(Barrier::new(2));
        // Even rounds: both accept. Odd rounds: one accepts, one refuses.
        let refuse_second = round % 2 == 1;
        let spawn = |device: Arc<Device>, refuse: bool| {
            let (w, id, barrier) = (w.clone(), id.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                if refuse {
                    w.refuse(&device, &id)
                } else {
                    w.accept(&device, &id)
                }
            })
        };
        let first = spawn(b1.clone(), false);
        let second = spawn(b2.clone(), refuse_second);
        let r1 = first.join().unwrap();
        let r2 = second.join().unwrap();
        let oks = usize::from(r1.is_ok()) + usize::from(r2.is_ok());
        assert_eq!(oks, 1, "round {round}: {r1:?} {r2:?}");
        let loser = if r1.is_ok() { &r2 } else { &r1 };
        assert_eq!(loser.as_ref().unwrap_err().code, ErrorCode::AlreadyAnswered);
        let expected = if r1.is_ok() || !refuse_second {
            InviteeState::Accepted
        } else {
            InviteeState::Rejected
        };
        assert_eq!(w.state(&id, "bob"), expected, "round {round}");
        let answers = alice.sink.count(|p| {
            matches!(
                p,
                Push::InvitationAccepted { .. } | Push::InvitationRefused { .. }
            )
        });
        assert_eq!(answers, 1, "round {round}");
        for device in [&*b1, &*b2] {
            assert_eq!(
                device.sink.state_changes(&id),
                vec![("bob".to_string(), expected)]
            );
        }
    }
}

#[test]
fn a_send_racing_the_invitees_logout_stays_consistent() {
    let mut kinds = [0usize; 3]; // offline, delivered, reported online but gone
    for round in 0..400 {
        let w = Arc::new(World::new());
        let alice = Arc::new(w.login("alice", "a1"));
        let bob = Arc::new(w.login("bob", "b1"));
        let barrier = Arc::new(Barrier::new(2));
        let send = {
            let (w, alice, barrier) = (w.clone(), alice.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.send(&alice, &["bob"], 30)
            })
        };
        let logout = {
            let (w, bob, barrier) = (w.clone(), bob.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.hub.logout(&bob.session);
            })
        };
        let outcome = send.join().unwrap().unwrap();
        logout.join().unwrap();
        let id = outcome.invitation_id.clone();
        let state = w.state(&id, "bob");
        let delivered = bob.sink.received(&id);
        assert!(delivered <= 1);
        if outcome.error_invitees.is_empty() {
            assert_eq!(state, InviteeState::Inviting, "round {round}");
            kinds[if delivered == 1 { 1 } else { 2 }] += 1;
        } else {
            assert_eq!(
                outcome.error_invitees,
                vec![status("bob", InviteeState::Offline)]
            );
            assert_eq!(state, InviteeState::Offline, "round {round}");
            assert_eq!(delivered, 0);
            kinds[0] += 1;
        }
        // Still pending either way: the next login gets it, exactly once.
        let again = w.login("bob", "b1");
        w.hub.sync(&again.session);
        assert_eq!(again.sink.received(&id), 1, "round {round}");
        w.ack(&again, &id);
        assert_eq!(w.state(&id, "bob"), InviteeState::Received);
    }
    eprintln!("invitee logout race (offline, delivered, online-but-gone): {kinds:?}");
}

#[test]
fn a_send_racing_the_invitees_login_delivers_exactly_once() {
    for round in 0..400 {
        let w = Arc::new(World::new());
        let alice = Arc::new(w.login("alice", "a1"));
        let barrier = Arc::new(Barrier::new(2));
        let send = {
            let (w, alice, barrier) = (w.clone(), alice.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.send(&alice, &["dave"], 30)
            })
        };
        let login = {
            let (w, barrier) = (w.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.login("dave", "d1")
            })
        };
        let outcome = send.join().unwrap().unwrap();
        let dave = login.join().unwrap();
        let id = outcome.invitation_id.clone();
        assert_eq!(dave.sink.received(&id), 1, "round {round}: {outcome:?}");
        let expected = if outcome.error_invitees.is_empty() {
            InviteeState::Inviting
        } else {
            InviteeState::Offline
        };
        assert_eq!(w.state(&id, "dave"), expected);
    }
}

#[test]
fn a_send_racing_the_inviters_logout_never_leaves_an_orphan() {
    let mut kinds = [0usize; 2]; // refused, cancelled
    for round in 0..400 {
        let w = Arc::new(World::new());
        let alice = Arc::new(w.login("alice", "a1"));
        let bob = w.login("bob", "b1");
        let barrier = Arc::new(Barrier::new(2));
        let send = {
            let (w, alice, barrier) = (w.clone(), alice.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.send(&alice, &["bob", "dave"], 30)
            })
        };
        let logout = {
            let (w, alice, barrier) = (w.clone(), alice.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                w.hub.logout(&alice.session);
            })
        };
        let sent = send.join().unwrap();
        logout.join().unwrap();
        match sent {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::NotLoggedIn, "round {round}");
                assert_eq!(bob.sink.len(), 0, "round {round}: a refused send rang bob");
                kinds[0] += 1;
            }
            Ok(outcome) => {
                let id = outcome.invitation_id;
                assert_eq!(
                    w.state(&id, "bob"),
                    InviteeState::Cancelled,
                    "round {round}"
                );
                assert_eq!(
                    w.state(&id, "dave"),
                    InviteeState::Cancelled,
                    "round {round}"
                );
                assert_eq!(
                    bob.sink
                        .about(&id)
                        .into_iter()
                        .filter(|p| matches!(
                            p,
                            Push::InvitationReceived { .. } | Push::InvitationCancelled { .. }
                        ))
                        .count(),
                    2,
                    "round {round}: bob rang then was cancelled"
                );
                let dave = w.login("dave", "d1");
                assert_eq!(dave.sink.received(&id), 0);
                kinds[1] += 1;
            }
        }
    }
    eprintln!("inviter logout race (refused, cancelled): {kinds:?}");
}

#[test]
fn many_threads_answering_many_invitations_stay_consistent() {
    // 8 invitees answer (accept or refuse) 50 invitations each while the inviter
    // cancels some and the clock runs out on the rest.
    let w = Arc::new(World::new());
    let alice = Arc::new(w.login("alice", "a1"));
    let invitees: Vec<String> = names(8, "u");
    let devices: Vec<Arc<Device>> = invitees.iter().map(|n| Arc::new(w.login(n, "d"))).collect();
    let ids: Vec<InvitationId> = (0..50)
        .map(|_| w.send_ok(&alice, &strs(&invitees), 5))
        .collect();
    let ids = Arc::new(ids);
    w.advance(4);
    let barrier = Arc::new(Barrier::new(devices.len() + 2));
    let mut handles = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        let (w, device, ids, barrier) = (w.clone(), device.clone(), ids.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for (n, id) in ids.iter().enumerate() {
                let result = if (i + n) % 2 == 0 {
                    w.accept(&device, id)
                } else {
                    w.refuse(&device, id)
                };
                if let Err(e) = result {
                    assert_eq!(e.code, ErrorCode::InvitationClosed, "{e}");
                }
            }
        }));
    }
    {
        let (w, alice, ids, barrier) = (w.clone(), alice.clone(), ids.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for id in ids.iter().step_by(3) {
                if let Err(e) = w.cancel(&alice, id, None) {
                    assert_eq!(e.code, ErrorCode::InvitationClosed, "{e}");
                }
            }
        }));
    }
    {
        let (w, barrier) = (w.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            thread::yield_now();
            w.advance(1);
        }));
    }
    for handle in handles {
        handle.join().unwrap();
    }
    for id in ids.iter() {
        for (name, state) in w.states(id) {
            assert!(is_terminal(state), "{id} {name} {state:?}");
            for (device, who) in devices.iter().zip(&invitees) {
                let terminals: Vec<InviteeState> = device
                    .sink
                    .state_changes(id)
                    .into_iter()
                    .filter(|(u, s)| *u == name && is_terminal(*s))
                    .map(|(_, s)| s)
                    .collect();
                assert_eq!(terminals, vec![state], "{who} saw {name}");
            }
        }
    }
}
