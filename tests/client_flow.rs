//! The Rust client (`beckon::Client`) on in-process `memory://` hubs: flows
//! between several clients, the dispatcher's promises (order, threads,
//! exactly-once callbacks, shutdown, poll mode) and rule 9 at the client level.
//!
//! Every test uses its own hub name. Tests that need deadlines install a hub on
//! a `ManualClock` and move it by hand. Every wait is bounded (5 s).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use beckon::client::{Callback, EventHandler};
use beckon::hub::{Hub, HubConfig, ManualClock};
use beckon::memory;
use beckon::protocol::{
    CancelInvitation, ConnectionReason, ConnectionState, DeviceId, InvitationId, InviteeState,
    Push, SendInvitation,
};
use beckon::{Client, ClientConfig, DispatchMode, Error, ErrorCode, Event};

mod common;
use common::{answer, status, user, users};

const WAIT: Duration = Duration::from_secs(5);
const T0: u64 = 1_700_000_000;

// ---- harness ------------------------------------------------------------------

/// One thing a client's dispatcher ran: an event, or an operation's callback.
#[derive(Clone, Debug, PartialEq)]
enum Rec {
    Ev(Event),
    Done(String, Result<String, ErrorCode>),
}

/// Records everything a client's dispatcher runs, with the thread it ran on.
#[derive(Default)]
struct Probe {
    recs: Mutex<Vec<(Rec, Option<String>, ThreadId)>>,
}

impl Probe {
    fn push(&self, rec: Rec) {
        let current = thread::current();
        self.recs
            .lock()
            .unwrap()
            .push((rec, current.name().map(str::to_owned), current.id()));
    }

    fn handler(self: &Arc<Self>) -> EventHandler {
        let probe = self.clone();
        Arc::new(move |event: &Event| probe.push(Rec::Ev(event.clone())))
    }

    /// A callback that records its result under `label`.
    fn done<T: std::fmt::Debug + Send + 'static>(self: &Arc<Self>, label: &str) -> Callback<T> {
        let probe = self.clone();
        let label = label.to_owned();
        Box::new(move |result: Result<T, Error>| {
            probe.push(Rec::Done(
                label,
                result.map(|v| format!("{v:?}")).map_err(|e| e.code),
            ))
        })
    }

    fn recs(&self) -> Vec<Rec> {
        self.recs
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    fn threads(&self) -> Vec<(Option<String>, ThreadId)> {
        self.recs
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n, t)| (n.clone(), *t))
            .collect()
    }

    fn clear(&self) {
        self.recs.lock().unwrap().clear();
    }

    fn events(&self) -> Vec<Event> {
        self.recs()
            .into_iter()
            .filter_map(|r| match r {
                Rec::Ev(e) => Some(e),
                Rec::Done(..) => None,
            })
            .collect()
    }

    fn pushes_about(&self, id: &InvitationId) -> Vec<Push> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Invitation(p) if p.invitation_id() == Some(id) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn count(&self, pred: impl Fn(&Rec) -> bool) -> usize {
        self.recs().iter().filter(|r| pred(r)).count()
    }

    fn received(&self, id: &InvitationId) -> usize {
        self.count(|r| is_received(r, id))
    }

    /// Waits (at most 5 s) until `pred` holds for the records.
    fn wait(&self, what: &str, pred: impl Fn(&[Rec]) -> bool) {
        wait_until(what, || pred(&self.recs()));
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&Rec) -> bool) {
        self.wait(what, |recs| recs.iter().any(&pred));
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn is_received(rec: &Rec, id: &InvitationId) -> bool {
    matches!(rec, Rec::Ev(Event::Invitation(Push::InvitationReceived { invitation_id, .. })) if invitation_id == id)
}

fn is_state(rec: &Rec, id: &InvitationId, who: &str, state: InviteeState) -> bool {
    matches!(rec, Rec::Ev(Event::Invitation(Push::UserStateChanged { invitation_id, user_id, state: s, .. }))
        if invitation_id == id && user_id.as_str() == who && *s == state)
}

fn is_conn(rec: &Rec, state: ConnectionState, reason: ConnectionReason) -> bool {
    *rec == Rec::Ev(Event::ConnectionStateChanged { state, reason })
}

fn conn(state: ConnectionState, reason: ConnectionReason) -> Rec {
    Rec::Ev(Event::ConnectionStateChanged { state, reason })
}

/// A client with a recording event handler.
struct Agent {
    client: Arc<Client>,
    probe: Arc<Probe>,
}

fn agent(hub: &str) -> Agent {
    agent_with(ClientConfig::new(format!("memory://{hub}")))
}

fn agent_on_device(hub: &str, device: &str) -> Agent {
    let mut config = ClientConfig::new(format!("memory://{hub}"));
    config.device_id = Some(DeviceId::parse(device, "device_id").unwrap());
    agent_with(config)
}

fn agent_with(config: ClientConfig) -> Agent {
    let client = Arc::new(Client::new(config).unwrap());
    let probe = Arc::new(Probe::default());
    client.set_event_handler(Some(probe.handler()));
    Agent { client, probe }
}

/// Starts an operation and waits (at most 5 s) for its callback, which is also
/// recorded in `probe` under `label`.
fn call<T: std::fmt::Debug + Clone + Send + 'static>(
    probe: &Arc<Probe>,
    label: &str,
    start: impl FnOnce(Callback<T>) -> Result<(), Error>,
) -> Result<T, Error> {
    let (tx, rx) = mpsc::channel();
    let record = probe.done::<T>(label);
    start(Box::new(move |result: Result<T, Error>| {
        record(result.clone());
        let _ = tx.send(result);
    }))
    .expect("the operation was accepted");
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("no callback for {label} within 5 s"))
}

impl Agent {
    fn login(&self, name: &str) {
        self.login_with(name, "token").unwrap();
    }

    fn login_with(&self, name: &str, token: &str) -> Result<(), Error> {
        call(&self.probe, "login", |done| {
            self.client.login_then(user(name), token.to_owned(), done)
        })
    }

    fn logout(&self) -> Result<(), Error> {
        call(&self.probe, "logout", |done| self.client.logout_then(done))
    }

    fn send(&self, to: &[&str], timeout: u32) -> Result<beckon::protocol::SendOutcome, Error> {
        self.send_request(SendInvitation::new(users(to), timeout))
    }

    fn send_request(
        &self,
        request: SendInvitation,
    ) -> Result<beckon::protocol::SendOutcome, Error> {
        call(&self.probe, "send", |done| {
            self.client.send_invitation_then(request, done)
        })
    }

    fn accept(&self, id: &InvitationId, data: &str) -> Result<(), Error> {
        call(&self.probe, "accept", |done| {
            self.client.accept_invitation_then(answer(id, data), done)
        })
    }

    fn refuse(&self, id: &InvitationId, data: &str) -> Result<(), Error> {
        call(&self.probe, "refuse", |done| {
            self.client.refuse_invitation_then(answer(id, data), done)
        })
    }

    fn cancel(
        &self,
        id: &InvitationId,
        invitees: Option<&[&str]>,
    ) -> Result<beckon::protocol::CancelOutcome, Error> {
        call(&self.probe, "cancel", |done| {
            self.client.cancel_invitation_then(
                CancelInvitation {
                    invitation_id: id.clone(),
                    invitees: invitees.map(users),
                    extended_data: "".into(),
                },
                done,
            )
        })
    }

    /// Runs an operation through the dispatcher and waits for its callback: every
    /// event queued before it has then been handed to the handler.
    fn flush(&self) {
        let result = call(&self.probe, "flush", |done| {
            self.client
                .accept_invitation_then(answer(&InvitationId::from_bits(1), ""), done)
        });
        assert_eq!(result.unwrap_err().code, ErrorCode::InvitationNotFound);
    }
}

/// A hub on a manual clock, installed under `name`.
fn manual_hub(name: &str) -> (Arc<Hub>, ManualClock) {
    manual_hub_with(name, HubConfig::default())
}

fn manual_hub_with(name: &str, config: HubConfig) -> (Arc<Hub>, ManualClock) {
    let clock = ManualClock::new(T0);
    let hub = Hub::with_manual_clock(config, clock.clone()).unwrap();
    memory::install(name, hub.clone()).unwrap();
    (hub, clock)
}

fn hub_state(hub: &Hub, id: &InvitationId, who: &str) -> InviteeState {
    hub.invitee_states(id)
        .unwrap()
        .into_iter()
        .find(|s| s.user_id.as_str() == who)
        .unwrap()
        .state
}

/// A callback that only counts its runs.
fn counting<T: Send + 'static>(ran: &Arc<AtomicUsize>) -> Callback<T> {
    let ran = ran.clone();
    Box::new(move |_| {
        ran.fetch_add(1, Ordering::SeqCst);
    })
}

fn index_of(recs: &[Rec], pred: impl Fn(&Rec) -> bool) -> usize {
    recs.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("not found in {recs:#?}"))
}

// ---- the demo flow ---------------------------------------------------------------

#[test]
fn demo_flow_bob_accepts_carol_refuses_dave_times_out() {
    let name = "client_flow-demo";
    let (hub, clock) = manual_hub(name);
    let alice = agent(name);
    let bob = agent(name);
    let carol = agent(name);
    alice.login("alice");
    bob.login("bob");
    carol.login("carol");

    let mut request = SendInvitation::new(users(&["bob", "carol", "dave"]), 30);
    request.extended_data = "video call".into();
    let outcome = alice.send_request(request).unwrap();
    assert_eq!(
        outcome.error_invitees,
        vec![status("dave", InviteeState::Offline)]
    );
    let id = outcome.invitation_id.clone();
    assert_eq!(id.as_str().len(), 32);

    // bob and carol ring; their clients acknowledge, alice sees RECEIVED.
    for invitee in [&bob, &carol] {
        invitee
            .probe
            .wait_for("the invitation", |r| is_received(r, &id));
        match &invitee.probe.pushes_about(&id)[0] {
            Push::InvitationReceived {
                inviter,
                invitees,
                extended_data,
                seconds_left,
                ..
            } => {
                assert_eq!(inviter.as_str(), "alice");
                assert_eq!(&**extended_data, "video call");
                assert_eq!(*seconds_left, 30);
                assert_eq!(invitees.len(), 3);
            }
            other => panic!("the first event about the invitation is {other:?}"),
        }
    }
    alice.probe.wait("both RECEIVED", |recs| {
        recs.iter()
            .any(|r| is_state(r, &id, "bob", InviteeState::Received))
            && recs
                .iter()
                .any(|r| is_state(r, &id, "carol", InviteeState::Received))
    });
    assert_eq!(hub_state(&hub, &id, "bob"), InviteeState::Received);
    assert_eq!(hub_state(&hub, &id, "dave"), InviteeState::Offline);

    bob.accept(&id, "joining").unwrap();
    alice.probe.wait_for("bob's accept", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationAccepted { invitee, extended_data, .. }))
            if invitee.as_str() == "bob" && &**extended_data == "joining")
    });
    carol.refuse(&id, "busy").unwrap();
    alice.probe.wait_for("carol's refusal", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationRefused { invitee, .. })) if invitee.as_str() == "carol")
    });
    // carol learns of bob's answer and bob of carol's.
    carol.probe.wait_for("bob ACCEPTED", |r| {
        is_state(r, &id, "bob", InviteeState::Accepted)
    });
    bob.probe.wait_for("carol REJECTED", |r| {
        is_state(r, &id, "carol", InviteeState::Rejected)
    });

    hub.advance(&clock, Duration::from_secs(30));
    alice.probe.wait_for("the response timeout", |r| {
        *r == Rec::Ev(Event::Invitation(Push::InvitationResponseTimeout {
            invitation_id: id.clone(),
            invitees: users(&["dave"]).into(),
        }))
    });
    for who in [&alice, &bob, &carol] {
        who.probe.wait_for("dave TIMEOUT", |r| {
            is_state(r, &id, "dave", InviteeState::Timeout)
        });
    }
    assert_eq!(hub_state(&hub, &id, "bob"), InviteeState::Accepted);
    assert_eq!(hub_state(&hub, &id, "carol"), InviteeState::Rejected);
    assert_eq!(hub_state(&hub, &id, "dave"), InviteeState::Timeout);

    // dave comes too late: nothing rings.
    let dave = agent(name);
    dave.login("dave");
    dave.flush();
    assert_eq!(dave.probe.received(&id), 0);
    assert_eq!(
        dave.accept(&id, "").unwrap_err().code,
        ErrorCode::InvitationClosed
    );

    // Order at alice: her send result before the answers, each INVITATION_*
    // event before the state change it causes, every state change of bob once.
    alice.flush();
    let recs = alice.probe.recs();
    let sent = index_of(&recs, |r| matches!(r, Rec::Done(l, Ok(_)) if l == "send"));
    let bob_received = index_of(&recs, |r| is_state(r, &id, "bob", InviteeState::Received));
    let accepted = index_of(&recs, |r| {
        matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationAccepted { .. }))
        )
    });
    let bob_accepted = index_of(&recs, |r| is_state(r, &id, "bob", InviteeState::Accepted));
    let refused = index_of(&recs, |r| {
        matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationRefused { .. }))
        )
    });
    let carol_rejected = index_of(&recs, |r| is_state(r, &id, "carol", InviteeState::Rejected));
    let response_timeout = index_of(&recs, |r| {
        matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationResponseTimeout { .. }))
        )
    });
    let dave_timeout = index_of(&recs, |r| is_state(r, &id, "dave", InviteeState::Timeout));
    assert!(sent < accepted && sent < refused, "{recs:#?}");
    assert!(
        bob_received < accepted && accepted < bob_accepted,
        "{recs:#?}"
    );
    assert!(refused < carol_rejected, "{recs:#?}");
    assert!(
        bob_accepted < refused,
        "answers in the order they were made"
    );
    assert!(carol_rejected < response_timeout && response_timeout < dave_timeout);
    assert_eq!(
        alice.probe.count(|r| matches!(r, Rec::Ev(Event::Invitation(Push::UserStateChanged { user_id, .. })) if user_id.as_str() == "bob")),
        2,
        "RECEIVED then ACCEPTED: {recs:#?}"
    );
    assert_eq!(
        alice.probe.count(|r| matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationReceived { .. }))
        )),
        0,
        "the inviter does not ring"
    );

    // Order at bob: it rang first; his own state change precedes his accept
    // callback (events an operation causes are queued before its callback).
    let recs = bob.probe.recs();
    let rang = index_of(&recs, |r| is_received(r, &id));
    let own_state = index_of(&recs, |r| is_state(r, &id, "bob", InviteeState::Accepted));
    let accept_done = index_of(&recs, |r| matches!(r, Rec::Done(l, Ok(_)) if l == "accept"));
    assert!(rang < own_state && own_state < accept_done, "{recs:#?}");
    assert_eq!(bob.probe.received(&id), 1);
    assert_eq!(
        bob.probe.count(|r| matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationTimeout { .. }))
        )),
        0,
        "bob answered: not timed out"
    );
    // carol's refusal callback comes after her own REJECTED.
    let recs = carol.probe.recs();
    assert!(
        index_of(&recs, |r| is_state(r, &id, "carol", InviteeState::Rejected))
            < index_of(&recs, |r| matches!(r, Rec::Done(l, Ok(_)) if l == "refuse"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_api_runs_the_same_flow() {
    let name = "client_flow-async";
    let (hub, clock) = manual_hub(name);
    let alice = agent(name);
    let bob = agent(name);
    alice.client.login(user("alice"), "t").await.unwrap();
    bob.client.login(user("bob"), "t").await.unwrap();
    let outcome = alice
        .client
        .send_invitation(SendInvitation::new(users(&["bob", "carol"]), 20))
        .await
        .unwrap();
    let id = outcome.invitation_id;
    assert_eq!(
        outcome.error_invitees,
        vec![status("carol", InviteeState::Offline)]
    );
    bob.client.accept_invitation(answer(&id, "")).await.unwrap();
    assert_eq!(
        bob.client
            .refuse_invitation(answer(&id, ""))
            .await
            .unwrap_err()
            .code,
        ErrorCode::AlreadyAnswered
    );
    let cancel = alice
        .client
        .cancel_invitation(CancelInvitation {
            invitation_id: id.clone(),
            invitees: None,
            extended_data: "".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        cancel.error_invitees,
        vec![status("bob", InviteeState::Accepted)]
    );
    assert_eq!(hub_state(&hub, &id, "carol"), InviteeState::Cancelled);
    hub.advance(&clock, Duration::from_secs(20));
    assert_eq!(hub_state(&hub, &id, "carol"), InviteeState::Cancelled);
    alice.client.renew_token("t2").await.unwrap();
    alice.client.logout().await.unwrap();
    assert_eq!(
        alice.client.logout().await.unwrap_err().code,
        ErrorCode::NotLoggedIn
    );
}

#[test]
fn an_offline_invitee_logging_in_before_the_deadline_rings_after_its_login_callback() {
    let name = "client_flow-offline-then-login";
    let (hub, clock) = manual_hub(name);
    let alice = agent(name);
    alice.login("alice");
    let outcome = alice.send(&["dave"], 30).unwrap();
    let id = outcome.invitation_id;
    hub.advance(&clock, Duration::from_secs(10));

    let dave = agent(name);
    dave.login("dave");
    dave.probe
        .wait_for("the invitation", |r| is_received(r, &id));
    let recs = dave.probe.recs();
    assert_eq!(
        recs[..3],
        [
            conn(ConnectionState::Connecting, ConnectionReason::Login),
            conn(ConnectionState::Connected, ConnectionReason::Login),
            Rec::Done("login".into(), Ok("()".into())),
        ]
    );
    match &recs[3] {
        Rec::Ev(Event::Invitation(Push::InvitationReceived { seconds_left, .. })) => {
            assert_eq!(*seconds_left, 20)
        }
        other => panic!("expected the invitation right after login: {other:?}"),
    }
    // dave's client acknowledged it (rule 4).
    alice.probe.wait_for("dave RECEIVED", |r| {
        is_state(r, &id, "dave", InviteeState::Received)
    });
    assert_eq!(hub_state(&hub, &id, "dave"), InviteeState::Received);
    dave.accept(&id, "").unwrap();
    alice.probe.wait_for("dave's accept", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationAccepted { invitee, .. })) if invitee.as_str() == "dave")
    });
}

#[test]
fn cancel_and_timeout_reach_the_invitees_clients() {
    let name = "client_flow-cancel-timeout";
    let (hub, clock) = manual_hub(name);
    let alice = agent(name);
    let bob = agent(name);
    let carol = agent(name);
    alice.login("alice");
    bob.login("bob");
    carol.login("carol");
    let id = alice.send(&["bob", "carol"], 10).unwrap().invitation_id;
    bob.probe.wait_for("ring", |r| is_received(r, &id));
    let cancel = alice.cancel(&id, Some(&["bob"])).unwrap();
    assert!(cancel.error_invitees.is_empty());
    // The cancel's own state change precedes its callback at alice.
    let recs = alice.probe.recs();
    assert!(
        index_of(&recs, |r| is_state(r, &id, "bob", InviteeState::Cancelled))
            < index_of(&recs, |r| matches!(r, Rec::Done(l, _) if l == "cancel"))
    );
    bob.probe.wait_for("the cancel", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationCancelled { invitation_id, inviter, .. }))
            if *invitation_id == id && inviter.as_str() == "alice")
    });
    hub.advance(&clock, Duration::from_secs(10));
    carol.probe.wait_for("the timeout", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationTimeout { invitation_id, .. })) if *invitation_id == id)
    });
    alice.probe.wait_for("the response timeout", |r| {
        *r == Rec::Ev(Event::Invitation(Push::InvitationResponseTimeout {
            invitation_id: id.clone(),
            invitees: users(&["carol"]).into(),
        }))
    });
    bob.flush();
    assert_eq!(
        bob.probe.count(|r| matches!(
            r,
            Rec::Ev(Event::Invitation(Push::InvitationTimeout { .. }))
        )),
        0
    );
    assert_eq!(
        bob.accept(&id, "").unwrap_err().code,
        ErrorCode::InvitationClosed
    );
}

#[test]
fn freeing_the_inviters_only_client_cancels_its_invitations() {
    let name = "client_flow-rule7";
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    let id = alice.send(&["bob"], 60).unwrap().invitation_id;
    bob.probe.wait_for("ring", |r| is_received(r, &id));
    drop(alice);
    bob.probe.wait_for("the cancel", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationCancelled { invitation_id, .. })) if *invitation_id == id)
    });
    assert_eq!(
        bob.accept(&id, "").unwrap_err().code,
        ErrorCode::InvitationClosed
    );
}

// ---- connection states ---------------------------------------------------------------

#[test]
fn login_and_logout_raise_connection_states_before_their_callbacks() {
    let name = "client_flow-conn-states";
    let a = agent(name);
    a.login("alice");
    assert_eq!(
        a.probe.recs(),
        vec![
            conn(ConnectionState::Connecting, ConnectionReason::Login),
            conn(ConnectionState::Connected, ConnectionReason::Login),
            Rec::Done("login".into(), Ok("()".into())),
        ]
    );
    a.probe.clear();
    a.logout().unwrap();
    assert_eq!(
        a.probe.recs(),
        vec![
            conn(ConnectionState::Disconnected, ConnectionReason::Logout),
            Rec::Done("logout".into(), Ok("()".into())),
        ]
    );
    // And again: a client may log in after logging out.
    a.probe.clear();
    a.login("alice");
    assert_eq!(a.probe.recs().len(), 3);
    // Login while logged in is refused at once.
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    let e = a
        .client
        .login_then(
            user("alice"),
            "t".into(),
            Box::new(move |_| {
                ran2.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    a.flush();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a refused call never calls back"
    );
}

const SECRET: &[u8] = b"client-secret";

#[test]
fn a_refused_login_reports_disconnected_then_the_error() {
    let name = "client_flow-auth";
    let (_hub, _clock) = manual_hub_with(
        name,
        HubConfig {
            secret: Some(SECRET.to_vec()),
            ..HubConfig::default()
        },
    );
    let a = agent(name);
    assert_eq!(
        a.login_with("alice", "junk").unwrap_err().code,
        ErrorCode::AuthFailed
    );
    assert_eq!(
        a.probe.recs(),
        vec![
            conn(ConnectionState::Connecting, ConnectionReason::Login),
            conn(ConnectionState::Disconnected, ConnectionReason::Login),
            Rec::Done("login".into(), Err(ErrorCode::AuthFailed)),
        ]
    );
    let bobs = beckon::token::mint(SECRET, &user("bob"), T0 + 60);
    assert_eq!(
        a.login_with("alice", &bobs).unwrap_err().code,
        ErrorCode::AuthFailed
    );
    let expired = beckon::token::mint(SECRET, &user("alice"), T0 - 60);
    assert_eq!(
        a.login_with("alice", &expired).unwrap_err().code,
        ErrorCode::TokenExpired
    );
    // Still logged out: operations are refused at once.
    assert_eq!(
        a.client
            .send_invitation_then(
                SendInvitation::new(users(&["bob"]), 10),
                Box::new(|_| panic!("must not run"))
            )
            .unwrap_err()
            .code,
        ErrorCode::NotLoggedIn
    );
    let good = beckon::token::mint(SECRET, &user("alice"), T0 + 60);
    a.login_with("alice", &good).unwrap();
    let renewed = beckon::token::mint(SECRET, &user("alice"), T0 + 3600);
    call(&a.probe, "renew", |done| {
        a.client.renew_token_then(renewed, done)
    })
    .unwrap();
    let e = call(&a.probe, "renew", |done| {
        a.client.renew_token_then("junk".into(), done)
    })
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthFailed);
}

#[test]
fn a_kicked_out_client_is_told_and_logged_out() {
    let name = "client_flow-kick";
    let first = agent_on_device(name, "phone");
    let second = agent_on_device(name, "phone");
    let alice = agent(name);
    alice.login("alice");
    first.login("bob");
    second.login("bob");
    first.probe.wait_for("kicked out", |r| {
        is_conn(
            r,
            ConnectionState::Disconnected,
            ConnectionReason::KickedOut,
        )
    });
    assert_eq!(
        second.probe.count(|r| is_conn(
            r,
            ConnectionState::Disconnected,
            ConnectionReason::KickedOut
        )),
        0
    );
    // The kicked client refuses operations at once; logout too.
    assert_eq!(
        first
            .client
            .accept_invitation_then(
                answer(&InvitationId::from_bits(1), ""),
                Box::new(|_| panic!("must not run"))
            )
            .unwrap_err()
            .code,
        ErrorCode::NotLoggedIn
    );
    assert_eq!(
        first
            .client
            .logout_then(Box::new(|_| panic!("must not run")))
            .unwrap_err()
            .code,
        ErrorCode::NotLoggedIn
    );
    // It hears nothing more; the new session does.
    let id = alice.send(&["bob"], 30).unwrap().invitation_id;
    second.probe.wait_for("ring", |r| is_received(r, &id));
    thread::sleep(Duration::from_millis(20));
    assert_eq!(first.probe.received(&id), 0);
    // The kicked client can log in again, kicking the other.
    first.login("bob");
    second.probe.wait_for("kicked out", |r| {
        is_conn(
            r,
            ConnectionState::Disconnected,
            ConnectionReason::KickedOut,
        )
    });
    first.probe.wait_for("ring", |r| is_received(r, &id));
}

// ---- refusals at once ----------------------------------------------------------------

#[test]
fn operations_before_login_fail_at_once_without_callback() {
    let name = "client_flow-before-login";
    let a = agent(name);
    let ran = Arc::new(AtomicUsize::new(0));
    let id = InvitationId::from_bits(7);
    let check = |ran: &Arc<AtomicUsize>| {
        let codes = [
            a.client
                .send_invitation_then(SendInvitation::new(users(&["bob"]), 10), counting(ran))
                .unwrap_err()
                .code,
            a.client
                .accept_invitation_then(answer(&id, ""), counting(ran))
                .unwrap_err()
                .code,
            a.client
                .refuse_invitation_then(answer(&id, ""), counting(ran))
                .unwrap_err()
                .code,
            a.client
                .cancel_invitation_then(
                    CancelInvitation {
                        invitation_id: id.clone(),
                        invitees: None,
                        extended_data: "".into(),
                    },
                    counting(ran),
                )
                .unwrap_err()
                .code,
            a.client
                .renew_token_then("t".into(), counting(ran))
                .unwrap_err()
                .code,
            a.client.logout_then(counting(ran)).unwrap_err().code,
        ];
        assert_eq!(codes, [ErrorCode::NotLoggedIn; 6]);
    };
    check(&ran);
    a.login("alice");
    a.logout().unwrap();
    check(&ran);
    a.login("alice");
    a.flush();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_operations_before_login_fail_at_once() {
    let a = agent("client_flow-async-before-login");
    let started = Instant::now();
    let e = a
        .client
        .send_invitation(SendInvitation::new(users(&["bob"]), 10))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotLoggedIn);
    assert_eq!(
        a.client
            .accept_invitation(answer(&InvitationId::from_bits(3), ""))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotLoggedIn
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn input_errors_are_returned_at_once_without_callback() {
    let name = "client_flow-input-errors";
    let a = agent(name);
    a.login("alice");
    let ran = Arc::new(AtomicUsize::new(0));
    let send = |r: SendInvitation| {
        a.client
            .send_invitation_then(r, counting(&ran))
            .unwrap_err()
            .code
    };
    assert_eq!(
        send(SendInvitation::new(vec![], 10)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        send(SendInvitation::new(users(&["bob"]), 0)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        send(SendInvitation::new(users(&["bob"]), 601)),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        send(SendInvitation::new(users(&["alice"]), 10)),
        ErrorCode::InvalidArgument
    );
    let many: Vec<String> = (0..33).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        send(SendInvitation::new(users(&many), 10)),
        ErrorCode::TooManyInvitees
    );
    let mut big = SendInvitation::new(users(&["bob"]), 10);
    big.extended_data = "x".repeat(8193).into();
    assert_eq!(send(big), ErrorCode::PayloadTooLarge);
    let huge = "x".repeat(8193);
    let id = InvitationId::from_bits(9);
    assert_eq!(
        a.client
            .accept_invitation_then(answer(&id, &huge), counting(&ran))
            .unwrap_err()
            .code,
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        a.client
            .refuse_invitation_then(answer(&id, &huge), counting(&ran))
            .unwrap_err()
            .code,
        ErrorCode::PayloadTooLarge
    );
    assert_eq!(
        a.client
            .cancel_invitation_then(
                CancelInvitation {
                    invitation_id: id,
                    invitees: None,
                    extended_data: huge.clone().into(),
                },
                counting(&ran)
            )
            .unwrap_err()
            .code,
        ErrorCode::PayloadTooLarge
    );
    a.flush();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // Duplicates are folded before the limit is checked: 33 entries, 32 users.
    let mut with_repeat: Vec<String> = (0..32).map(|i| format!("u{i}")).collect();
    with_repeat.push("u0".into());
    let with_repeat: Vec<&str> = with_repeat.iter().map(String::as_str).collect();
    assert!(a.send(&with_repeat, 10).is_ok());
}

#[test]
fn bad_configurations_are_refused() {
    for url in [
        "memory://",
        "ws://",
        "http://example.com",
        "memory://bad name",
        "",
        "memory://x/y",
    ] {
        let e = Client::new(ClientConfig::new(url)).err().expect(url);
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{url}");
    }
    let mut config = ClientConfig::new("memory://client_flow-config");
    config.request_timeout = Duration::ZERO;
    assert_eq!(
        Client::new(config).err().unwrap().code,
        ErrorCode::InvalidArgument
    );
    let hub = Hub::with_manual_clock(HubConfig::default(), ManualClock::new(T0)).unwrap();
    memory::install("client_flow-install-twice", hub.clone()).unwrap();
    assert_eq!(
        memory::install("client_flow-install-twice", hub)
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
}

// ---- the dispatcher's promises ------------------------------------------------------

#[test]
fn a_thousand_operations_then_shutdown_call_back_exactly_once() {
    let name = "client_flow-exactly-once";
    let a = agent(name);
    a.login("alice");
    const N: usize = 1000;
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let codes: Arc<Vec<AtomicI32>> = Arc::new((0..N).map(|_| AtomicI32::new(-1)).collect());
    let wrong_thread = Arc::new(AtomicUsize::new(0));
    let unknown = InvitationId::from_bits(0xabc);
    for i in 0..N {
        let (counts, codes, wrong_thread) = (counts.clone(), codes.clone(), wrong_thread.clone());
        // The first callback holds the dispatcher long enough for shutdown to
        // close the queue behind it: the others then get SHUTDOWN.
        let record = move |code: ErrorCode| {
            if i == 0 {
                thread::sleep(Duration::from_millis(300));
            }
            if thread::current().name() != Some("beckon-dispatch") {
                wrong_thread.fetch_add(1, Ordering::SeqCst);
            }
            counts[i].fetch_add(1, Ordering::SeqCst);
            codes[i].store(code as i32, Ordering::SeqCst);
        };
        let accepted = match i % 4 {
            0 => a.client.send_invitation_then(
                SendInvitation::new(users(&["bob"]), 30),
                Box::new(move |r| record(r.map_or_else(|e| e.code, |_| ErrorCode::Ok))),
            ),
            1 => a.client.accept_invitation_then(
                answer(&unknown, ""),
                Box::new(move |r| record(r.map_or_else(|e| e.code, |_| ErrorCode::Ok))),
            ),
            2 => a.client.refuse_invitation_then(
                answer(&unknown, ""),
                Box::new(move |r| record(r.map_or_else(|e| e.code, |_| ErrorCode::Ok))),
            ),
            _ => a.client.cancel_invitation_then(
                CancelInvitation {
                    invitation_id: unknown.clone(),
                    invitees: None,
                    extended_data: "".into(),
                },
                Box::new(move |r| record(r.map_or_else(|e| e.code, |_| ErrorCode::Ok))),
            ),
        };
        accepted.unwrap();
    }
    a.client.shutdown();
    let check = || {
        let mut shutdowns = 0;
        for i in 0..N {
            assert_eq!(counts[i].load(Ordering::SeqCst), 1, "callback {i}");
            let code = ErrorCode::from_i32(codes[i].load(Ordering::SeqCst)).unwrap();
            let expected = if i % 4 == 0 {
                ErrorCode::Ok
            } else {
                ErrorCode::InvitationNotFound
            };
            assert!(
                code == expected || code == ErrorCode::Shutdown,
                "callback {i}: {code:?}"
            );
            shutdowns += usize::from(code == ErrorCode::Shutdown);
        }
        shutdowns
    };
    let shutdowns = check();
    assert!(
        shutdowns >= N - 1,
        "callbacks still queued at shutdown get SHUTDOWN: {shutdowns}"
    );
    // Nothing more runs later.
    thread::sleep(Duration::from_millis(50));
    check();
    assert_eq!(wrong_thread.load(Ordering::SeqCst), 0);
    // After shutdown, operations fail at once; shutdown is idempotent.
    assert_eq!(
        a.client
            .login_then(
                user("alice"),
                "t".into(),
                Box::new(|_| panic!("must not run"))
            )
            .unwrap_err()
            .code,
        ErrorCode::Shutdown
    );
    assert!(a
        .client
        .send_invitation_then(
            SendInvitation::new(users(&["bob"]), 30),
            Box::new(|_| panic!("must not run"))
        )
        .is_err());
    a.client.shutdown();
}

#[test]
fn operations_racing_shutdown_call_back_exactly_once_if_accepted() {
    for round in 0..20 {
        let name = format!("client_flow-shutdown-race-{round}");
        let a = agent(&name);
        a.login("alice");
        let accepted = Arc::new(AtomicUsize::new(0));
        let called = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(5));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (client, accepted, called, stop, barrier) = (
                a.client.clone(),
                accepted.clone(),
                called.clone(),
                stop.clone(),
                barrier.clone(),
            );
            workers.push(thread::spawn(move || {
                barrier.wait();
                let unknown = InvitationId::from_bits(5);
                while !stop.load(Ordering::SeqCst) {
                    let called = called.clone();
                    let result = client.accept_invitation_then(
                        answer(&unknown, ""),
                        Box::new(move |_| {
                            called.fetch_add(1, Ordering::SeqCst);
                        }),
                    );
                    match result {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            assert!(
                                matches!(e.code, ErrorCode::Shutdown | ErrorCode::NotLoggedIn),
                                "{e}"
                            );
                            break;
                        }
                    }
                }
            }));
        }
        barrier.wait();
        thread::sleep(Duration::from_millis(2));
        a.client.shutdown();
        // When shutdown returns, every accepted operation has called back.
        let at_return = called.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(at_return, accepted.load(Ordering::SeqCst), "round {round}");
        thread::sleep(Duration::from_millis(5));
        assert_eq!(
            called.load(Ordering::SeqCst),
            accepted.load(Ordering::SeqCst)
        );
    }
}

#[test]
fn callbacks_and_events_run_on_the_dispatcher_thread() {
    let name = "client_flow-threads";
    let (hub, clock) = manual_hub(name);
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    let id = alice.send(&["bob"], 10).unwrap().invitation_id;
    bob.probe.wait_for("ring", |r| is_received(r, &id));
    hub.advance(&clock, Duration::from_secs(10));
    alice.probe.wait_for("timeout", |r| {
        is_state(r, &id, "bob", InviteeState::Timeout)
    });
    alice.flush();
    bob.flush();
    let me = thread::current().id();
    for probe in [&alice.probe, &bob.probe] {
        let threads = probe.threads();
        assert!(threads.len() >= 6);
        let ids: HashSet<ThreadId> = threads.iter().map(|(_, t)| *t).collect();
        assert_eq!(ids.len(), 1, "one dispatcher thread per client");
        for (name, id) in threads {
            assert_eq!(name.as_deref(), Some("beckon-dispatch"));
            assert_ne!(id, me, "never on the calling thread");
        }
    }
    let a: HashSet<ThreadId> = alice.probe.threads().iter().map(|(_, t)| *t).collect();
    let b: HashSet<ThreadId> = bob.probe.threads().iter().map(|(_, t)| *t).collect();
    assert!(a.is_disjoint(&b), "each client has its own dispatcher");
}

#[test]
fn a_panicking_handler_or_callback_does_not_stop_later_ones() {
    let name = "client_flow-panics";
    let alice = agent(name);
    let bob = agent(name);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    bob.client
        .set_event_handler(Some(Arc::new(move |event: &Event| {
            let label = match event {
                Event::ConnectionStateChanged { state, .. } => format!("{state:?}"),
                Event::Invitation(Push::InvitationReceived { .. }) => "received".into(),
                other => format!("{other:?}"),
            };
            seen2.lock().unwrap().push(label.clone());
            if label == "Connecting" || label == "received" {
                panic!("test: the handler panics on {label}");
            }
        })));
    alice.login("alice");
    bob.login("bob");
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec!["Connecting".to_string(), "Connected".to_string()]
    );
    let id1 = alice.send(&["bob"], 10).unwrap().invitation_id;
    let id2 = alice.send(&["bob"], 10).unwrap().invitation_id;
    wait_until("both invitations", || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| *l == "received")
            .count()
            == 2
    });
    // The client still acknowledged both (the receipt precedes the handler).
    alice.probe.wait_for("RECEIVED 1", |r| {
        is_state(r, &id1, "bob", InviteeState::Received)
    });
    alice.probe.wait_for("RECEIVED 2", |r| {
        is_state(r, &id2, "bob", InviteeState::Received)
    });

    // A panicking callback: the next callback still runs.
    bob.client
        .accept_invitation_then(
            answer(&id1, ""),
            Box::new(|_| panic!("test: the callback panics")),
        )
        .unwrap();
    assert_eq!(bob.accept(&id2, ""), Ok(()));
    alice.probe.wait("both accepts", |recs| {
        recs.iter()
            .filter(|r| {
                matches!(
                    r,
                    Rec::Ev(Event::Invitation(Push::InvitationAccepted { .. }))
                )
            })
            .count()
            == 2
    });
}

#[test]
fn callbacks_and_handlers_may_call_the_api_again() {
    let name = "client_flow-reentry";
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    // bob accepts from inside his event handler.
    let bob_client = Arc::downgrade(&bob.client);
    let bob_probe = bob.probe.clone();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let accepted2 = accepted.clone();
    bob.client
        .set_event_handler(Some(Arc::new(move |event: &Event| {
            bob_probe.push(Rec::Ev(event.clone()));
            if let Event::Invitation(Push::InvitationReceived { invitation_id, .. }) = event {
                let client = bob_client.upgrade().unwrap();
                let accepted = accepted2.clone();
                client
                    .accept_invitation_then(
                        answer(invitation_id, "from the handler"),
                        Box::new(move |r| accepted.lock().unwrap().push(r.map_err(|e| e.code))),
                    )
                    .unwrap();
            }
        })));
    // alice chains three sends, each from the previous one's callback.
    let (tx, rx) = mpsc::channel();
    fn chain(
        client: Arc<Client>,
        left: usize,
        ids: Vec<InvitationId>,
        tx: mpsc::Sender<Vec<InvitationId>>,
    ) {
        let next = client.clone();
        client
            .send_invitation_then(
                SendInvitation::new(users(&["bob"]), 30),
                Box::new(move |r| {
                    assert_eq!(thread::current().name(), Some("beckon-dispatch"));
                    let mut ids = ids;
                    ids.push(r.unwrap().invitation_id);
                    if left > 1 {
                        chain(next, left - 1, ids, tx);
                    } else {
                        tx.send(ids).unwrap();
                    }
                }),
            )
            .unwrap();
    }
    chain(alice.client.clone(), 3, Vec::new(), tx);
    let ids = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        alice.probe.wait_for("accepted from bob's handler", |r| {
            matches!(r, Rec::Ev(Event::Invitation(Push::InvitationAccepted { invitation_id, extended_data, .. }))
                if invitation_id == id && &**extended_data == "from the handler")
        });
    }
    wait_until("bob's callbacks", || accepted.lock().unwrap().len() == 3);
    assert!(accepted.lock().unwrap().iter().all(|r| r.is_ok()));
}

#[test]
fn shutdown_from_inside_a_callback_does_not_deadlock() {
    for mode in [DispatchMode::Thread, DispatchMode::Poll] {
        let name = format!("client_flow-shutdown-inside-{mode:?}");
        let mut config = ClientConfig::new(format!("memory://{name}"));
        config.dispatch = mode;
        let client = Arc::new(Client::new(config).unwrap());
        let results = Arc::new(Mutex::new(Vec::<(usize, Result<(), ErrorCode>)>::new()));
        let inner_returned = Arc::new(AtomicBool::new(false));
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Mutex::new(Some(gate_rx));
        // Log in (poll mode: run the login callback by polling).
        let (login_tx, login_rx) = mpsc::channel();
        client
            .login_then(
                user("alice"),
                "t".into(),
                Box::new(move |r| login_tx.send(r).unwrap()),
            )
            .unwrap();
        if mode == DispatchMode::Poll {
            client.poll(Duration::from_millis(100)).unwrap();
        }
        login_rx.recv_timeout(WAIT).unwrap().unwrap();

        let unknown = InvitationId::from_bits(77);
        for i in 0..10 {
            let results = results.clone();
            let me = Arc::downgrade(&client);
            let inner_returned = inner_returned.clone();
            let gate = if i == 0 {
                gate_rx.lock().unwrap().take()
            } else {
                None
            };
            client
                .accept_invitation_then(
                    answer(&unknown, ""),
                    Box::new(move |r| {
                        results.lock().unwrap().push((i, r.map_err(|e| e.code)));
                        if let Some(gate) = gate {
                            let _ = gate.recv_timeout(WAIT);
                            if let Some(client) = me.upgrade() {
                                client.shutdown();
                            }
                            inner_returned.store(true, Ordering::SeqCst);
                        }
                    }),
                )
                .unwrap();
        }
        gate_tx.send(()).unwrap();
        if mode == DispatchMode::Poll {
            // Polling runs callback 0, which shuts down and drains the rest.
            let polled = client.poll(Duration::from_millis(100)).unwrap();
            assert!(polled >= 1);
        }
        wait_until("the nested shutdown to return", || {
            inner_returned.load(Ordering::SeqCst)
        });
        let results = results.lock().unwrap().clone();
        let order: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>(), "{mode:?}");
        assert_eq!(results[0].1, Err(ErrorCode::InvitationNotFound));
        for (i, r) in &results[1..] {
            assert_eq!(*r, Err(ErrorCode::Shutdown), "{mode:?} callback {i}");
        }
        // The client is shut: calls fail at once, shutdown again returns.
        assert!(client
            .accept_invitation_then(answer(&unknown, ""), Box::new(|_| panic!("must not run")))
            .is_err());
        client.shutdown();
        if mode == DispatchMode::Poll {
            assert_eq!(client.poll(Duration::from_millis(1)).unwrap(), 0);
        }
    }
}

#[test]
fn dropping_the_last_handle_inside_a_callback_does_not_deadlock() {
    let name = "client_flow-drop-inside";
    let client = Client::new(ClientConfig::new(format!("memory://{name}"))).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .login_then(
            user("alice"),
            "t".into(),
            Box::new(move |r| tx.send(r).unwrap()),
        )
        .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    let holder = Arc::new(Mutex::new(Some(client)));
    let holder2 = holder.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let second = Arc::new(Mutex::new(None));
    let second2 = second.clone();
    let guard = holder.lock().unwrap();
    let c = guard.as_ref().unwrap();
    c.accept_invitation_then(
        answer(&InvitationId::from_bits(3), ""),
        Box::new(move |_| {
            // The client is dropped (freed) on its own dispatcher thread.
            let client = holder2.lock().unwrap().take();
            drop(client);
            done_tx.send(()).unwrap();
        }),
    )
    .unwrap();
    c.accept_invitation_then(
        answer(&InvitationId::from_bits(4), ""),
        Box::new(move |r| *second2.lock().unwrap() = Some(r.map_err(|e| e.code))),
    )
    .unwrap();
    drop(guard);
    done_rx.recv_timeout(WAIT).expect("no deadlock");
    wait_until("the second callback", || second.lock().unwrap().is_some());
    let second = *second.lock().unwrap();
    assert!(
        matches!(
            second,
            Some(Err(ErrorCode::Shutdown | ErrorCode::InvitationNotFound))
        ),
        "{second:?}"
    );
}

#[test]
fn shutdown_waits_for_a_callback_that_is_shutting_down() {
    let name = "client_flow-shutdown-twice";
    let a = agent(name);
    a.login("alice");
    let entered = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let me = Arc::downgrade(&a.client);
    let (entered2, finished2) = (entered.clone(), finished.clone());
    a.client
        .accept_invitation_then(
            answer(&InvitationId::from_bits(1), ""),
            Box::new(move |_| {
                if let Some(client) = me.upgrade() {
                    client.shutdown();
                }
                entered2.store(true, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(300));
                finished2.store(true, Ordering::SeqCst);
            }),
        )
        .unwrap();
    wait_until("the callback to shut down", || {
        entered.load(Ordering::SeqCst)
    });
    // "returns once no callback of this client runs or will run"
    a.client.shutdown();
    assert!(
        finished.load(Ordering::SeqCst),
        "shutdown returned while a callback of the client was still running"
    );
}

#[test]
fn poll_mode_queues_until_poll_and_runs_on_the_polling_thread() {
    let name = "client_flow-poll";
    let mut config = ClientConfig::new(format!("memory://{name}"));
    config.dispatch = DispatchMode::Poll;
    let bob = agent_with(config);
    let alice = agent(name);
    alice.login("alice");

    let ran_on = Arc::new(Mutex::new(Vec::<ThreadId>::new()));
    let ran_on2 = ran_on.clone();
    bob.client
        .login_then(
            user("bob"),
            "t".into(),
            Box::new(move |r| {
                r.unwrap();
                ran_on2.lock().unwrap().push(thread::current().id());
            }),
        )
        .unwrap();
    thread::sleep(Duration::from_millis(30));
    assert!(bob.probe.recs().is_empty(), "nothing runs before poll");
    assert!(ran_on.lock().unwrap().is_empty());

    let n = bob.client.poll(Duration::from_millis(100)).unwrap();
    assert_eq!(n, 3, "CONNECTING, CONNECTED, the login callback");
    assert_eq!(*ran_on.lock().unwrap(), vec![thread::current().id()]);
    assert!(bob
        .probe
        .threads()
        .iter()
        .all(|(_, t)| *t == thread::current().id()));

    // An invitation waits in the queue; its receipt is sent when polled.
    let id = alice.send(&["bob"], 30).unwrap().invitation_id;
    thread::sleep(Duration::from_millis(30));
    assert_eq!(bob.probe.received(&id), 0);
    alice.flush();
    assert_eq!(
        alice
            .probe
            .count(|r| is_state(r, &id, "bob", InviteeState::Received)),
        0,
        "not acknowledged before the application polls"
    );
    assert_eq!(bob.client.poll(Duration::from_millis(100)).unwrap(), 1);
    assert_eq!(bob.probe.received(&id), 1);
    alice.probe.wait_for("bob RECEIVED", |r| {
        is_state(r, &id, "bob", InviteeState::Received)
    });
    // bob's own RECEIVED state change was queued by that receipt.
    assert_eq!(bob.client.poll(Duration::from_millis(100)).unwrap(), 1);
    assert!(is_state(
        bob.probe.recs().last().unwrap(),
        &id,
        "bob",
        InviteeState::Received
    ));

    // Poll waits for work up to its timeout, then returns 0.
    let started = Instant::now();
    assert_eq!(bob.client.poll(Duration::from_millis(50)).unwrap(), 0);
    assert!(started.elapsed() >= Duration::from_millis(45));

    // Work arriving during the wait wakes it.
    let alice_client = alice.client.clone();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        alice_client
            .send_invitation_then(SendInvitation::new(users(&["bob"]), 30), Box::new(|_| {}))
            .unwrap();
    });
    let started = Instant::now();
    assert_eq!(bob.client.poll(WAIT).unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    sender.join().unwrap();

    // Poll from inside one of the client's own callbacks is refused.
    let inner = Arc::new(Mutex::new(None));
    let inner2 = inner.clone();
    let me = Arc::downgrade(&bob.client);
    bob.client
        .accept_invitation_then(
            answer(&id, ""),
            Box::new(move |_| {
                let client = me.upgrade().unwrap();
                *inner2.lock().unwrap() =
                    Some(client.poll(Duration::from_millis(1)).map_err(|e| e.code));
            }),
        )
        .unwrap();
    bob.client.poll(Duration::from_millis(100)).unwrap();
    assert_eq!(
        *inner.lock().unwrap(),
        Some(Err(ErrorCode::InvalidArgument))
    );
    // Poll on a thread-mode client is refused.
    assert_eq!(
        alice
            .client
            .poll(Duration::from_millis(1))
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );

    // Shutdown runs what is queued, with SHUTDOWN, on the shutting-down thread.
    let late = Arc::new(Mutex::new(None));
    let late2 = late.clone();
    bob.client
        .accept_invitation_then(
            answer(&id, ""),
            Box::new(move |r| {
                *late2.lock().unwrap() = Some((r.map_err(|e| e.code), thread::current().id()))
            }),
        )
        .unwrap();
    bob.client.shutdown();
    assert_eq!(
        *late.lock().unwrap(),
        Some((Err(ErrorCode::Shutdown), thread::current().id()))
    );
}

#[test]
fn eight_threads_sending_at_once_on_one_client() {
    let name = "client_flow-eight-threads";
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let results = Arc::new(Mutex::new(Vec::<(usize, usize, InvitationId)>::new()));
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, results, barrier) =
                (alice.client.clone(), results.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for n in 0..EACH {
                    let results = results.clone();
                    client
                        .send_invitation_then(
                            SendInvitation::new(users(&["bob", "carol"]), 60),
                            Box::new(move |r| {
                                results
                                    .lock()
                                    .unwrap()
                                    .push((t, n, r.unwrap().invitation_id))
                            }),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    wait_until("every callback", || {
        results.lock().unwrap().len() == THREADS * EACH
    });
    let results = results.lock().unwrap().clone();
    let ids: HashSet<&InvitationId> = results.iter().map(|(_, _, id)| id).collect();
    assert_eq!(ids.len(), THREADS * EACH, "distinct invitations");
    // Each thread's callbacks ran in the order that thread made its calls.
    for t in 0..THREADS {
        let order: Vec<usize> = results
            .iter()
            .filter(|(tt, _, _)| *tt == t)
            .map(|(_, n, _)| *n)
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "thread {t}");
    }
    bob.probe.wait("every invitation rings once", |recs| {
        recs.iter()
            .filter(|r| {
                matches!(
                    r,
                    Rec::Ev(Event::Invitation(Push::InvitationReceived { .. }))
                )
            })
            .count()
            == THREADS * EACH
    });
    for id in &ids {
        assert_eq!(bob.probe.received(id), 1);
    }
}

// ---- rule 9 at the client ---------------------------------------------------------

#[test]
fn a_client_sees_an_invitation_once_across_relogins() {
    let name = "client_flow-rule9";
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    let id = alice.send(&["bob", "dave"], 60).unwrap().invitation_id;
    bob.probe.wait_for("ring", |r| is_received(r, &id));
    // The hub re-syncs the still-ringing invitation at every login; the same
    // client object shows it once.
    for _ in 0..3 {
        bob.logout().unwrap();
        bob.login("bob");
        bob.flush();
    }
    assert_eq!(bob.probe.received(&id), 1);

    // An offline invitee: rings at the first login only.
    let dave = agent(name);
    dave.login("dave");
    dave.probe.wait_for("ring", |r| is_received(r, &id));
    for _ in 0..3 {
        dave.logout().unwrap();
        dave.login("dave");
    }
    dave.flush();
    assert_eq!(dave.probe.received(&id), 1);
    assert_eq!(
        alice
            .probe
            .count(|r| is_state(r, &id, "dave", InviteeState::Received)),
        1
    );

    // A second client object of bob (another device) rings once as well.
    let bob2 = agent(name);
    bob2.login("bob");
    bob2.probe.wait_for("ring", |r| is_received(r, &id));
    bob2.flush();
    assert_eq!(bob2.probe.received(&id), 1);
    // The answer from one device reaches the other.
    bob2.accept(&id, "").unwrap();
    bob.probe.wait_for("bob ACCEPTED", |r| {
        is_state(r, &id, "bob", InviteeState::Accepted)
    });
    assert_eq!(
        bob.accept(&id, "").unwrap_err().code,
        ErrorCode::AlreadyAnswered
    );
}

#[test]
fn without_a_handler_events_are_dropped_but_receipts_still_sent() {
    let name = "client_flow-no-handler";
    let alice = agent(name);
    let bob = agent(name);
    alice.login("alice");
    bob.login("bob");
    bob.client.set_event_handler(None);
    let id = alice.send(&["bob"], 30).unwrap().invitation_id;
    alice.probe.wait_for("bob RECEIVED", |r| {
        is_state(r, &id, "bob", InviteeState::Received)
    });
    bob.flush();
    assert_eq!(bob.probe.received(&id), 0);
    // A handler set later sees later events only; the invitation is not shown
    // again (rule 9).
    bob.client.set_event_handler(Some(bob.probe.handler()));
    bob.logout().unwrap();
    bob.login("bob");
    bob.flush();
    assert_eq!(bob.probe.received(&id), 0);
    alice.cancel(&id, None).unwrap();
    bob.probe.wait_for("the cancel", |r| {
        matches!(r, Rec::Ev(Event::Invitation(Push::InvitationCancelled { invitation_id, .. })) if *invitation_id == id)
    });
}

// ---- ordering probe ----------------------------------------------------------------

#[test]
fn the_inviter_sees_its_send_result_before_state_changes_of_that_invitation() {
    // docs/SEMANTICS.md: a client's events and operation callbacks reach it
    // in the order the client observed them. The invitees' clients
    // acknowledge on their own dispatcher threads as soon as the hub releases
    // the invitation's lock, which can be before the inviter's send callback
    // is queued.
    let name = "client_flow-send-vs-receipt";
    let alice = agent(name);
    alice.login("alice");
    let invitees: Vec<Agent> = (0..8).map(|_| agent(name)).collect();
    let invitee_names: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    for (a, n) in invitees.iter().zip(&invitee_names) {
        a.login(n);
    }
    let invitee_names: Vec<&str> = invitee_names.iter().map(String::as_str).collect();
    let mut early = 0;
    const ROUNDS: usize = 1000;
    for _ in 0..ROUNDS {
        let id = alice.send(&invitee_names, 60).unwrap().invitation_id;
        alice.probe.wait("all receipts", |recs| {
            recs.iter()
                .filter(|r| matches!(r, Rec::Ev(Event::Invitation(Push::UserStateChanged { invitation_id, .. })) if *invitation_id == id))
                .count()
                == 8
        });
        let recs = alice.probe.recs();
        let sent = index_of(
            &recs,
            |r| matches!(r, Rec::Done(l, Ok(outcome)) if l == "send" && outcome.contains(id.as_str())),
        );
        let first_state = index_of(
            &recs,
            |r| matches!(r, Rec::Ev(Event::Invitation(Push::UserStateChanged { invitation_id, .. })) if *invitation_id == id),
        );
        if first_state < sent {
            early += 1;
        }
        alice.probe.clear();
    }
    assert_eq!(
        early, 0,
        "{early} of {ROUNDS} sends: a RECEIVED state change reached the inviter before the send result"
    );
}
