//! Regression tests for problems found in review: each failed before its fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use beckon::hub::{Hub, HubConfig, ManualClock};
use beckon::memory;
use beckon::protocol::{Answer, ConnectionState, InvitationId, InviteeState, Push, SendInvitation};
use beckon::{Client, ClientConfig, DispatchMode, Event};

mod common;
use common::user;

const WAIT: Duration = Duration::from_secs(5);

fn logged_in(hub_name: &str, name: &str) -> Client {
    let client = Client::new(ClientConfig::new(format!("memory://{hub_name}"))).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .login_then(
            user(name),
            String::new(),
            Box::new(move |r| tx.send(r).unwrap()),
        )
        .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    client
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Connected,
    LoginDone,
    Received(InvitationId),
}

/// An invitation sent while the invitee's login is under way reaches it after
/// CONNECTED and the login callback, and is acknowledged (rule 4).
#[test]
fn an_invitation_sent_during_login_comes_after_the_login_and_is_acknowledged() {
    let hub = memory::hub("regress-login-race").unwrap();
    let alice = Arc::new(logged_in("regress-login-race", "alice"));
    for round in 0..100 {
        let name = format!("bob{round}");
        let bob = Client::new(ClientConfig::new("memory://regress-login-race")).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        bob.set_event_handler(Some(Arc::new(move |event: &Event| match event {
            Event::ConnectionStateChanged {
                state: ConnectionState::Connected,
                ..
            } => record.lock().unwrap().push(Seen::Connected),
            Event::Invitation(Push::InvitationReceived { invitation_id, .. }) => record
                .lock()
                .unwrap()
                .push(Seen::Received(invitation_id.clone())),
            _ => {}
        })));
        let stop = Arc::new(AtomicBool::new(false));
        let sender = {
            let (alice, stop, name) = (alice.clone(), stop.clone(), name.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && sent < 200 {
                    let request = SendInvitation::new(vec![user(&name)], 300);
                    let _ = alice.send_invitation_then(request, Box::new(|_| {}));
                    sent += 1;
                }
            })
        };
        let record = seen.clone();
        bob.login_then(
            user(&name),
            String::new(),
            Box::new(move |_| record.lock().unwrap().push(Seen::LoginDone)),
        )
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        // Let bob's dispatcher run what was queued, then check.
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let events = seen.lock().unwrap().clone();
            let login_at = events.iter().position(|s| *s == Seen::LoginDone);
            let connected_at = events.iter().position(|s| *s == Seen::Connected);
            if let (Some(login_at), Some(connected_at)) = (login_at, connected_at) {
                for (at, event) in events.iter().enumerate() {
                    if let Seen::Received(id) = event {
                        assert!(
                            at > login_at && at > connected_at,
                            "round {round}: {events:?}"
                        );
                        let acknowledged =
                            hub.invitee_states(id).unwrap()[0].state == InviteeState::Received;
                        if !acknowledged && std::time::Instant::now() > deadline {
                            panic!("round {round}: {id} was shown but never acknowledged");
                        }
                    }
                }
                let all_acknowledged = events.iter().all(|e| match e {
                    Seen::Received(id) => {
                        hub.invitee_states(id).unwrap()[0].state == InviteeState::Received
                    }
                    _ => true,
                });
                if all_acknowledged {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: {events:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A token that "never" expires neither panics nor leaves a ghost session.
#[test]
fn a_far_future_token_expiry_logs_in_and_out_cleanly() {
    let hub = beckon::memory::new_hub(HubConfig {
        secret: Some(b"s".to_vec()),
        ..HubConfig::default()
    })
    .unwrap();
    memory::install("regress-far-token", hub.clone()).unwrap();
    let bob = Client::new(ClientConfig::new("memory://regress-far-token")).unwrap();
    let token = beckon::token::mint(b"s", &user("bob"), u64::MAX);
    let (tx, rx) = mpsc::channel();
    let done = tx.clone();
    bob.login_then(
        user("bob"),
        token.clone(),
        Box::new(move |r| done.send(r).unwrap()),
    )
    .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    let done = tx.clone();
    bob.renew_token_then(token, Box::new(move |r| done.send(r).unwrap()))
        .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    let (sent_tx, sent_rx) = mpsc::channel();
    bob.send_invitation_then(
        SendInvitation::new(vec![user("carol")], 30),
        Box::new(move |r| sent_tx.send(r.map(|_| ())).unwrap()),
    )
    .unwrap();
    sent_rx.recv_timeout(WAIT).unwrap().unwrap();
    drop(bob);
    assert_eq!(hub.device_count(&user("bob")), 0);
}

/// Renewing with the same token warns once, not once per renewal.
#[test]
fn renewing_with_the_same_token_warns_once() {
    let clock = ManualClock::new(1_700_000_000);
    let hub = Hub::with_manual_clock(
        HubConfig {
            secret: Some(b"s".to_vec()),
            ..HubConfig::default()
        },
        clock.clone(),
    )
    .unwrap();
    memory::install("regress-renew-twice", hub.clone()).unwrap();
    let token = beckon::token::mint(b"s", &user("bob"), 1_700_000_000 + 3600);
    let bob = Client::new(ClientConfig::new("memory://regress-renew-twice")).unwrap();
    let (warn_tx, warn_rx) = mpsc::channel();
    bob.set_event_handler(Some(Arc::new(move |event: &Event| {
        if matches!(event, Event::TokenWillExpire { .. }) {
            warn_tx.send(()).unwrap();
        }
    })));
    let (tx, rx) = mpsc::channel();
    let done = tx.clone();
    bob.login_then(
        user("bob"),
        token.clone(),
        Box::new(move |r| done.send(r).unwrap()),
    )
    .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    bob.renew_token_then(token, Box::new(move |r| tx.send(r).unwrap()))
        .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    hub.advance(&clock, Duration::from_secs(3600 - 29));
    warn_rx.recv_timeout(WAIT).unwrap();
    assert!(warn_rx.recv_timeout(Duration::from_millis(200)).is_err());
}

/// Events queued under one login are still shown after the client logs out
/// and in again (they were queued before the logout's DISCONNECTED).
#[test]
fn events_queued_before_a_relogin_are_not_lost() {
    let _ = memory::hub("regress-relogin").unwrap();
    let carol = logged_in("regress-relogin", "carol");
    let mut config = ClientConfig::new("memory://regress-relogin");
    config.dispatch = DispatchMode::Poll;
    let bob = Client::new(config).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    bob.set_event_handler(Some(Arc::new(move |event: &Event| {
        record.lock().unwrap().push(event.clone())
    })));
    bob.login_then(user("bob"), String::new(), Box::new(|_| {}))
        .unwrap();
    let id = Arc::new(Mutex::new(None));
    let keep = id.clone();
    bob.send_invitation_then(
        SendInvitation::new(vec![user("carol"), user("dave")], 60),
        Box::new(move |r| *keep.lock().unwrap() = Some(r.unwrap().invitation_id)),
    )
    .unwrap();
    bob.poll(Duration::from_millis(10)).unwrap();
    let id = id.lock().unwrap().clone().unwrap();
    let (tx, rx) = mpsc::channel();
    carol
        .accept_invitation_then(
            Answer {
                invitation_id: id.clone(),
                extended_data: "".into(),
            },
            Box::new(move |r| tx.send(r).unwrap()),
        )
        .unwrap();
    rx.recv_timeout(WAIT).unwrap().unwrap();
    bob.logout_then(Box::new(|_| {})).unwrap();
    bob.login_then(user("bob"), String::new(), Box::new(|_| {}))
        .unwrap();
    while bob.poll(Duration::from_millis(20)).unwrap() > 0 {}
    let accepted = seen.lock().unwrap().iter().any(|event| {
        matches!(event, Event::Invitation(Push::InvitationAccepted { invitation_id, .. })
            if *invitation_id == id)
    });
    assert!(accepted, "{:?}", seen.lock().unwrap());
}

/// A client that logs in as another user is shown that user's invitations,
/// even one it already showed to the previous user.
#[test]
fn rule_9_is_per_user() {
    let _ = memory::hub("regress-rule9-user").unwrap();
    let alice = logged_in("regress-rule9-user", "alice");
    let device = logged_in("regress-rule9-user", "bob");
    let (tx, rx) = mpsc::channel();
    device.set_event_handler(Some(Arc::new(move |event: &Event| {
        if let Event::Invitation(Push::InvitationReceived { invitation_id, .. }) = event {
            tx.send(invitation_id.clone()).unwrap();
        }
    })));
    let (sent_tx, sent_rx) = mpsc::channel();
    alice
        .send_invitation_then(
            SendInvitation::new(vec![user("bob"), user("carol")], 60),
            Box::new(move |r| sent_tx.send(r.unwrap().invitation_id).unwrap()),
        )
        .unwrap();
    let id = sent_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), id);
    let (done_tx, done_rx) = mpsc::channel();
    let done = done_tx.clone();
    device
        .logout_then(Box::new(move |r| done.send(r).unwrap()))
        .unwrap();
    done_rx.recv_timeout(WAIT).unwrap().unwrap();
    device
        .login_then(
            user("carol"),
            String::new(),
            Box::new(move |r| done_tx.send(r).unwrap()),
        )
        .unwrap();
    done_rx.recv_timeout(WAIT).unwrap().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), id, "carol rings too");
}

/// The same, made deterministic: the invitation is sent while the invitee's
/// login is stalled inside the hub (through the log sink, which the hub calls
/// after registering the session).
#[test]
fn an_invitation_sent_inside_the_login_window_is_shown_after_login_and_acknowledged() {
    use beckon::log::{set_sink, Level};
    let hub = memory::hub("regress-login-window").unwrap();
    let alice = Arc::new(logged_in("regress-login-window", "alice"));
    let sent = Arc::new(Mutex::new(None));
    {
        let (alice, sent) = (alice.clone(), sent.clone());
        set_sink(
            Some(Arc::new(
                move |_level, _tag, sub_tag: &str, message: &str| {
                    if sub_tag == "hub" && message.starts_with("login: user 'stall-bob'") {
                        let (alice, sent) = (alice.clone(), sent.clone());
                        std::thread::spawn(move || {
                            let request = SendInvitation::new(vec![user("stall-bob")], 300);
                            alice
                                .send_invitation_then(
                                    request,
                                    Box::new(move |r| {
                                        *sent.lock().unwrap() = Some(r.unwrap().invitation_id)
                                    }),
                                )
                                .unwrap();
                        })
                        .join()
                        .unwrap();
                        std::thread::sleep(Duration::from_millis(50));
                    }
                },
            )),
            Level::Info,
        );
    }
    let bob = Client::new(ClientConfig::new("memory://regress-login-window")).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = order.clone();
    bob.set_event_handler(Some(Arc::new(move |event: &Event| {
        if let Event::Invitation(Push::InvitationReceived { .. }) = event {
            record.lock().unwrap().push("received");
        }
    })));
    let record = order.clone();
    bob.login_then(
        user("stall-bob"),
        String::new(),
        Box::new(move |_| record.lock().unwrap().push("login callback")),
    )
    .unwrap();
    set_sink(None, Level::Error);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let id = sent.lock().unwrap().clone();
        let state = id
            .and_then(|id| hub.invitee_states(&id))
            .map(|s| s[0].state);
        if state == Some(InviteeState::Received) && order.lock().unwrap().len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{state:?} {:?}",
            order.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*order.lock().unwrap(), ["login callback", "received"]);
}

fn poll_client(hub_name: &str) -> (Client, Arc<Mutex<Vec<String>>>) {
    let mut config = ClientConfig::new(format!("memory://{hub_name}"));
    config.dispatch = DispatchMode::Poll;
    let client = Client::new(config).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let record = log.clone();
    client.set_event_handler(Some(Arc::new(move |event: &Event| {
        if let Event::Invitation(Push::InvitationReceived { invitation_id, .. }) = event {
            record
                .lock()
                .unwrap()
                .push(format!("received {invitation_id}"));
        }
    })));
    (client, log)
}

fn drain(client: &Client) {
    while client.poll(Duration::from_millis(20)).unwrap() > 0 {}
}

fn send_to(from: &Client, to: &[&str]) -> InvitationId {
    let (tx, rx) = mpsc::channel();
    from.send_invitation_then(
        SendInvitation::new(to.iter().map(|n| user(n)).collect(), 60),
        Box::new(move |r| tx.send(r.unwrap().invitation_id).unwrap()),
    )
    .unwrap();
    rx.recv_timeout(WAIT).unwrap()
}

/// An invitation queued for alice, shown after the client re-logged in as
/// bob, does not hide bob's own copy of it.
#[test]
fn a_queued_push_of_the_previous_user_does_not_hide_the_new_users_invitation() {
    let _ = memory::hub("regress-other-user").unwrap();
    let carol = logged_in("regress-other-user", "carol");
    let (client, log) = poll_client("regress-other-user");
    client
        .login_then(user("alice"), String::new(), Box::new(|_| {}))
        .unwrap();
    drain(&client);
    let id = send_to(&carol, &["alice", "bob"]);
    client.logout_then(Box::new(|_| {})).unwrap(); // alice's copy stays queued
    client
        .login_then(user("bob"), String::new(), Box::new(|_| {}))
        .unwrap();
    drain(&client);
    let shown = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == format!("received {id}"))
        .count();
    assert_eq!(
        shown,
        2,
        "once for alice, once for bob: {:?}",
        log.lock().unwrap()
    );
}

/// alice, then bob, then alice again on one client: alice sees it once.
#[test]
fn rule_9_holds_across_logins_as_other_users() {
    let _ = memory::hub("regress-aba").unwrap();
    let carol = logged_in("regress-aba", "carol");
    let (client, log) = poll_client("regress-aba");
    client
        .login_then(user("alice"), String::new(), Box::new(|_| {}))
        .unwrap();
    drain(&client);
    let id = send_to(&carol, &["alice"]);
    drain(&client);
    for who in ["bob", "alice"] {
        client.logout_then(Box::new(|_| {})).unwrap();
        client
            .login_then(user(who), String::new(), Box::new(|_| {}))
            .unwrap();
        drain(&client);
    }
    let shown = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == format!("received {id}"))
        .count();
    assert_eq!(shown, 1, "{:?}", log.lock().unwrap());
}

/// Once `Hub::logout` returns, nothing more is queued for that session, even
/// while other threads keep sending to its user (who has another device).
#[test]
fn nothing_is_queued_for_a_session_after_its_logout_returned() {
    use beckon::protocol::SessionSink;
    use beckon::protocol::{CancelInvitation, DeviceId};

    struct Marks(Arc<Mutex<Vec<&'static str>>>);
    impl SessionSink for Marks {
        fn deliver(&self, _push: Push) {
            self.0.lock().unwrap().push("push");
        }
    }
    let hub = beckon::memory::new_hub(HubConfig::default()).unwrap();
    let device = |name: &str| DeviceId::parse(name, "device").unwrap();
    let sink = || Arc::new(Marks(Arc::default()));
    let boss = hub.login(user("boss"), device("b"), "", sink()).unwrap();
    let other = hub.login(user("inv"), device("other"), "", sink()).unwrap();
    hub.sync(&other);
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (hub, stop, boss) = (hub.clone(), stop.clone(), boss.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sent = hub
                        .send(&boss, SendInvitation::new(vec![user("inv")], 600))
                        .unwrap();
                    let _ = hub.cancel(
                        &boss,
                        CancelInvitation {
                            invitation_id: sent.invitation_id,
                            invitees: None,
                            extended_data: "".into(),
                        },
                    );
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let mut late = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let marks = Arc::new(Mutex::new(Vec::new()));
        let session = hub
            .login(user("inv"), device("d"), "", Arc::new(Marks(marks.clone())))
            .unwrap();
        hub.sync(&session);
        hub.logout(&session);
        marks.lock().unwrap().push("ended");
        std::thread::sleep(Duration::from_micros(200));
        let marks = marks.lock().unwrap();
        if marks.last() != Some(&"ended") {
            late += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(late, 0, "pushes were queued after logout returned");
}
