//! Event webhooks end to end: a real `beckon-server` process whose
//! `[[webhooks.endpoint]]` points at a local receiver
//! (tests/common/push_fakes.rs, kind `Events`, which checks every
//! signature and the body's shape). Clients are library clients.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use beckon::protocol::{Answer as Reply, InvitationId, SendInvitation, Text};
use serde_json::Value;

mod common;
use common::push_fakes::*;
use common::{block, unique, Peer, ServerProcess, WAIT};

/// A server whose one endpoint is `receiver`, with `extra` TOML lines in
/// `[webhooks]` and `endpoint_extra` in the endpoint.
fn server(keys: &TestKeys, receiver: &Fake, extra: &str, endpoint_extra: &str) -> ServerProcess {
    let config = keys
        .dir
        .join(format!("webhooks-{}.toml", common::rand_suffix()));
    std::fs::write(
        &config,
        format!(
            "[webhooks]\nextra_root_ca = {:?}\nretry_initial_ms = 50\nretry_max_ms = 400\n{extra}\n\
             [[webhooks.endpoint]]\nname = \"backend\"\nurl = \"{}/beckon/events\"\nsecret = {:?}\n{endpoint_extra}\n",
            keys.ca_file.display().to_string(),
            receiver.url(),
            webhook_secret(),
        ),
    )
    .unwrap();
    ServerProcess::start(&["--config", config.to_str().unwrap(), "--grace-secs", "0"])
}

/// The bodies the receiver answered 2xx, once per event id, in the order
/// they were first delivered; with the number of attempts per id.
fn delivered(receiver: &Fake) -> (Vec<Value>, HashMap<String, usize>) {
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut first = Vec::new();
    let mut seen = HashSet::new();
    for request in receiver.requests() {
        let id = request.header("webhook-id").to_owned();
        *attempts.entry(id.clone()).or_default() += 1;
        if request.path == "/beckon/events" && seen.insert(id) {
            first.push(request.json());
        }
    }
    (first, attempts)
}

/// Waits until `wanted` events of `invitation` (by type, in order) have
/// arrived; returns them.
fn wait_events(receiver: &Fake, invitation: Option<&InvitationId>, wanted: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let events: Vec<Value> = delivered_ok(receiver)
            .into_iter()
            .filter(|e| match invitation {
                Some(id) => e["data"]["invitation_id"].as_str() == Some(&id.to_string()),
                None => e["type"].as_str().is_some_and(|t| t.starts_with("device.")),
            })
            .collect();
        if events.len() >= wanted.len() || Instant::now() > deadline {
            let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
            assert_eq!(kinds, wanted, "events of {invitation:?}: {events:#?}");
            return events;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the server's metrics have `line`.
fn wait_metric(server: &ServerProcess, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, metrics) = server.admin_get("/metrics");
        if metrics.contains(line) {
            return;
        }
        assert!(Instant::now() < deadline, "no {line} in {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The events the receiver took (answered 2xx), once per id, in order.
fn delivered_ok(receiver: &Fake) -> Vec<Value> {
    let succeeded = receiver.succeeded_ids();
    let (events, _) = delivered(receiver);
    events
        .into_iter()
        .filter(|e| succeeded.contains(e["id"].as_str().unwrap_or("")))
        .collect()
}

fn reply(id: &InvitationId, data: &str) -> Reply {
    Reply {
        invitation_id: id.clone(),
        extended_data: Text::from(data),
    }
}

#[test]
fn the_demo_flow_reaches_the_backend_signed_once_and_in_order() {
    let keys = TestKeys::new();
    let receiver = Fake::start(Kind::Events, &keys);
    let server = server(&keys, &receiver, "", "");
    let url = server.url();
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let alice_peer = Peer::online_synced(&url, &alice);
    let bob_peer = Peer::online_synced(&url, &bob);
    let mut send = SendInvitation::new(vec![bob.clone(), carol.clone()], 30);
    send.extended_data = Text::from(r#"{"room":"r1"}"#);
    let sent = block(alice_peer.client.send_invitation(send)).unwrap();
    let id = sent.invitation_id.clone();
    assert_eq!(bob_peer.ringing(), id);
    block(bob_peer.client.accept_invitation(reply(&id, "on my way"))).unwrap();
    block(
        alice_peer
            .client
            .cancel_invitation(beckon::protocol::CancelInvitation {
                invitation_id: id.clone(),
                invitees: None,
                extended_data: Text::from("never mind"),
            }),
    )
    .unwrap();

    let events = wait_events(
        &receiver,
        Some(&id),
        &[
            "invitation.created",
            "invitation.received",
            "invitation.accepted",
            "invitation.cancelled",
            "invitation.ended",
        ],
    );
    let created = &events[0]["data"];
    assert_eq!(created["inviter"], alice.to_string());
    assert_eq!(created["timeout_secs"], 30);
    assert_eq!(created["extended_data"], r#"{"room":"r1"}"#);
    assert_eq!(created["invitees"][0]["state"], "INVITING");
    assert_eq!(created["invitees"][1]["user_id"], carol.to_string());
    assert_eq!(created["invitees"][1]["state"], "OFFLINE");
    assert_eq!(events[1]["data"]["invitee"], bob.to_string());
    assert_eq!(events[2]["data"]["state"], "ACCEPTED");
    assert_eq!(events[2]["data"]["extended_data"], "on my way");
    assert_eq!(events[3]["data"]["invitee"], carol.to_string());
    assert_eq!(events[3]["data"]["extended_data"], "never mind");
    let ended = &events[4]["data"]["invitees"];
    assert_eq!(ended[0]["state"], "ACCEPTED");
    assert_eq!(ended[1]["state"], "CANCELLED");

    // Device events: both logins, then bob's logout.
    drop(bob_peer);
    let devices = wait_events(
        &receiver,
        None,
        &["device.online", "device.online", "device.offline"],
    );
    assert_eq!(devices[2]["data"]["user_id"], bob.to_string());
    assert_eq!(devices[2]["data"]["reason"], "logout");

    let (_, attempts) = delivered(&receiver);
    assert!(
        attempts.values().all(|n| *n == 1),
        "one attempt each: {attempts:?}"
    );
    assert_eq!(receiver.problems(), Vec::<String>::new());
    // The server counts a delivery once it has read the answer, a moment
    // after the receiver has the request.
    wait_metric(
        &server,
        r#"beckon_webhook_events_total{endpoint="backend",outcome="delivered"} 8"#,
    );
    drop(alice_peer);
}

#[test]
fn events_wait_out_a_receiver_outage_and_arrive_once_in_order() {
    let keys = TestKeys::new();
    let receiver = Fake::start(Kind::Events, &keys);
    // Down: every attempt gets a 503 until the outage ends.
    receiver.outage(Some(Answer::status(503, "down for maintenance")));
    let server = server(
        &keys,
        &receiver,
        "concurrency = 2",
        "events = [\"invitation.*\"]",
    );
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let alice_peer = Peer::online_synced(&url, &alice);
    let bob_peer = Peer::online_synced(&url, &bob);
    let mut ids = Vec::new();
    for round in 0..5 {
        let sent = alice_peer.invite(&[&bob], 30);
        bob_peer.ringing();
        let answer = reply(&sent.invitation_id, &format!("round {round}"));
        if round % 2 == 0 {
            block(bob_peer.client.accept_invitation(answer)).unwrap();
        } else {
            block(bob_peer.client.refuse_invitation(answer)).unwrap();
        }
        ids.push(sent.invitation_id);
    }
    // Attempts fail and are retried while the receiver is down.
    let deadline = Instant::now() + WAIT;
    while receiver.requests().len() < 10 {
        assert!(Instant::now() < deadline, "no retries");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(delivered_ok(&receiver).is_empty());
    receiver.outage(None);
    for (round, id) in ids.iter().enumerate() {
        let answered = if round % 2 == 0 {
            "invitation.accepted"
        } else {
            "invitation.refused"
        };
        let events = wait_events(
            &receiver,
            Some(id),
            &[
                "invitation.created",
                "invitation.received",
                answered,
                "invitation.ended",
            ],
        );
        assert_eq!(events[2]["data"]["extended_data"], format!("round {round}"));
    }
    // Every attempt of one event carried the same id: a receiver that
    // remembers ids applies each event once.
    let (events, attempts) = delivered(&receiver);
    assert_eq!(
        events.len(),
        20,
        "no device events (filtered out): {events:#?}"
    );
    assert!(
        attempts.values().any(|n| *n > 1),
        "some were retried: {attempts:?}"
    );
    assert_eq!(receiver.problems(), Vec::<String>::new());
    wait_metric(
        &server,
        r#"beckon_webhook_events_total{endpoint="backend",outcome="delivered"} 20"#,
    );
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains(r#"beckon_webhook_attempts_total{endpoint="backend",outcome="error"}"#),
        "{metrics}"
    );
}

#[test]
fn a_full_queue_drops_and_counts_and_a_gone_endpoint_is_given_up() {
    let keys = TestKeys::new();
    let receiver = Fake::start(Kind::Events, &keys);
    // Held: the one lane's first attempt waits, so the queue fills.
    receiver.outage(Some(Answer::Hold(Box::new(Answer::status(410, "gone")))));
    let server = server(
        &keys,
        &receiver,
        "concurrency = 1\nqueue = 2",
        "events = [\"device.*\"]",
    );
    let url = server.url();
    let peers: Vec<Peer> = (0..6)
        .map(|i| Peer::online_synced(&url, &unique(&format!("user{i}"))))
        .collect();
    let deadline = Instant::now() + WAIT;
    let dropped = r#"beckon_webhook_events_total{endpoint="backend",outcome="dropped"} 3"#;
    loop {
        let (_, metrics) = server.admin_get("/metrics");
        if metrics.contains(dropped) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 410: the endpoint is gone; the held event and the two queued are
    // given up after one attempt each (each held until released).
    let failed = r#"beckon_webhook_events_total{endpoint="backend",outcome="failed"} 3"#;
    loop {
        let (_, metrics) = server.admin_get("/metrics");
        if metrics.contains(failed) {
            break;
        }
        receiver.release();
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(receiver.requests().len(), 3);
    drop(peers);
}

#[test]
fn a_webhook_setting_that_cannot_work_stops_the_start_with_its_name() {
    let keys = TestKeys::new();
    let cases = [
        (
            "[[webhooks.endpoint]]\nurl = \"https://example.com/h\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nevents = [\"invitation.acepted\"]\n",
            "webhooks.endpoint[0].events: 'invitation.acepted' names no event",
        ),
        (
            "[[webhooks.endpoint]]\nurl = \"https://example.com/h\"\n",
            "webhooks.endpoint[0]: a secret or secret_file is required",
        ),
        (
            "[[webhooks.endpoint]]\nurl = \"http://example.com/h\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
            "webhooks.endpoint[0].url: 'http://example.com/h': plain http is only allowed",
        ),
        (
            "[webhooks]\nretry_initial_ms = 5000\nretry_max_ms = 1000\n",
            "webhooks.retry_max_ms: 1000 is outside 5000..=86400000",
        ),
        (
            "[[webhooks.endpoint]]\nname = \"a\"\nurl = \"https://example.com/1\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
             [[webhooks.endpoint]]\nname = \"a\"\nurl = \"https://example.com/2\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
            "webhooks.endpoint[1]: the name 'a' is taken",
        ),
    ];
    for (toml, expected) in cases {
        let config = keys.dir.join("bad-webhooks.toml");
        std::fs::write(&config, toml).unwrap();
        let stderr =
            common::refused_start(&["--store", "memory", "--config", config.to_str().unwrap()]);
        assert!(stderr.contains(expected), "{toml}: {stderr}");
        assert!(
            !stderr.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "secret in {stderr}"
        );
    }
}

#[test]
fn an_event_still_being_delivered_at_the_shutdown_deadline_is_counted_dropped() {
    let keys = TestKeys::new();
    let receiver = Fake::start(Kind::Events, &keys);
    // The receiver holds the one attempt: it is under way when the server
    // stops, and still is at the shutdown deadline.
    receiver.outage(Some(Answer::Hold(Box::new(Answer::status(200, "ok")))));
    let mut server = server(
        &keys,
        &receiver,
        "concurrency = 1",
        "events = [\"device.online\"]",
    );
    let _peer = Peer::online_synced(&server.url(), &unique("held"));
    let deadline = Instant::now() + WAIT;
    while receiver.requests().is_empty() {
        assert!(Instant::now() < deadline, "the event was never attempted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.terminate().success());
    let log = without_colours(&server.log());
    assert!(
        log.lines()
            .any(|l| l.contains("events left undelivered at shutdown") && l.contains("dropped=1")),
        "{log}"
    );
}

/// `text` without its ANSI colour sequences (ESC [ ... m).
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}
