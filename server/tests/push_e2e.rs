//! Push delivery end to end: a real `beckon-server` process whose `[push]`
//! points at the local fakes (tests/common/push_fakes.rs). Push targets are
//! set with raw `set_push_target` frames; inviters and online invitees are
//! library clients.

use std::time::Duration;

use beckon::protocol::{CancelInvitation, Push, PushOutcome, PushProvider, UserId};
use beckon::Event;
use serde_json::json;

mod common;
use common::push_fakes::*;
use common::{block, unique, Peer, ServerProcess, WAIT};

fn apns_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// The next push result the inviter gets for `invitee`.
fn push_result(peer: &Peer, invitee: &UserId) -> (PushOutcome, String, Option<PushProvider>) {
    peer.expect("INVITATION_PUSH_RESULT", |event| match event {
        Event::Invitation(Push::InvitationPushResult {
            invitee: who,
            outcome,
            reason,
            provider,
            ..
        }) if who == invitee => Some((*outcome, reason.to_string(), *provider)),
        _ => None,
    })
}

/// The next sent push result for any invitee: who, and through what.
fn push_result_any(peer: &Peer) -> (UserId, Option<PushProvider>) {
    peer.expect("INVITATION_PUSH_RESULT", |event| match event {
        Event::Invitation(Push::InvitationPushResult {
            invitee,
            outcome: PushOutcome::Sent,
            provider,
            ..
        }) if provider != &Some(PushProvider::ApnsVoip) => Some((invitee.clone(), *provider)),
        _ => None,
    })
}

fn received(peer: &Peer) -> usize {
    peer.count(|e| matches!(e, Event::Invitation(Push::InvitationReceived { .. })))
}

fn cancel(peer: &Peer, invitation_id: &beckon::protocol::InvitationId) {
    block(peer.client.cancel_invitation(CancelInvitation {
        invitation_id: invitation_id.clone(),
        invitees: None,
        extended_data: "".into(),
    }))
    .unwrap();
}

#[test]
fn pushes_through_a_real_server() {
    let keys = TestKeys::new();
    let apns = Fake::start(Kind::Apns, &keys);
    let fcm = Fake::start(Kind::Fcm, &keys);
    let hook = Fake::start(Kind::Webhook, &keys);
    let config = keys.dir.join("server.toml");
    std::fs::write(
        &config,
        push_toml(&keys, Some(&apns), Some(&fcm), Some(&hook)),
    )
    .unwrap();
    let server = ServerProcess::start(&["--config", config.to_str().unwrap(), "--grace-secs", "0"]);
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let voip =
        json!({"provider": "apns_voip", "token": apns_token(1), "alert_token": apns_token(2)});
    set_target(&server.url(), &bob, "phone", voip.clone());

    // Bob is offline: exactly one VoIP push, and Alice learns it went.
    let caller = Peer::online(&url, &alice);
    let invitation = caller.invite(&[&bob], 30).invitation_id;
    assert_eq!(
        push_result(&caller, &bob),
        (
            PushOutcome::Sent,
            String::new(),
            Some(PushProvider::ApnsVoip)
        )
    );
    let ring = apns.wait_requests(1, WAIT).remove(0);
    assert_eq!(ring.path, format!("/3/device/{}", apns_token(1)));
    assert_eq!(ring.header("apns-push-type"), "voip");
    assert_eq!(ring.header("apns-topic"), format!("{TOPIC}.voip"));
    assert_eq!(ring.header("apns-collapse-id"), invitation.to_string());
    let beckon = &ring.json()["beckon"];
    assert_eq!(beckon["inviter"], alice.to_string());
    assert_eq!(beckon["invitees"][0]["user_id"], bob.to_string());

    // Bob's app opens: the invitation rings once, by sync.
    let callee = Peer::online(&url, &bob);
    assert_eq!(callee.ringing(), invitation);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(received(&callee), 1);
    drop(callee);
    std::thread::sleep(Duration::from_millis(200));

    // Cancel: one stop push, an alert to the alert token.
    cancel(&caller, &invitation);
    let stop = apns.wait_requests(2, WAIT).remove(1);
    assert_eq!(stop.path, format!("/3/device/{}", apns_token(2)));
    assert_eq!(stop.header("apns-push-type"), "alert");
    assert_eq!(stop.header("apns-topic"), TOPIC);
    assert_eq!(stop.json()["beckon"]["type"], "stop");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(apns.requests().len(), 2, "exactly one ring and one stop");

    // 410: the target is gone; the next send finds none.
    apns.script([Answer::apns_unregistered()]);
    let second = caller.invite(&[&bob], 30).invitation_id;
    let (outcome, reason, _) = push_result(&caller, &bob);
    assert_eq!(
        (outcome, reason.as_str()),
        (PushOutcome::Failed, "Unregistered")
    );
    cancel(&caller, &second);
    let _third = caller.invite(&[&bob], 30);
    assert_eq!(push_result(&caller, &bob).0, PushOutcome::NoPushTarget);

    // A slow provider delays nothing for online invitees.
    set_target(&server.url(), &bob, "phone", voip);
    apns.outage(Some(Answer::Slow(
        Duration::from_secs(5),
        Box::new(Answer::status(200, "")),
    )));
    let carol = unique("carol");
    let online = Peer::online(&url, &carol);
    let slow = caller.invite(&[&bob, &carol], 30).invitation_id;
    assert_eq!(online.ringing(), slow);
    apns.outage(None);

    // FCM and webhook targets.
    let (dave, erin) = (unique("dave"), unique("erin"));
    set_target(
        &server.url(),
        &dave,
        "pixel",
        json!({"provider": "fcm", "token": "fcm-dave"}),
    );
    set_target(
        &server.url(),
        &erin,
        "web",
        json!({"provider": "webhook", "token": "erin-7"}),
    );
    let both = caller.invite(&[&dave, &erin], 30).invitation_id;
    // In either order.
    let mut providers = vec![push_result_any(&caller), push_result_any(&caller)];
    providers.sort_by_key(|(who, _)| who.to_string());
    assert_eq!(
        providers,
        vec![
            (dave.clone(), Some(PushProvider::Fcm)),
            (erin.clone(), Some(PushProvider::Webhook))
        ]
    );
    let message = &fcm.wait_requests(1, WAIT)[0].json()["message"];
    assert_eq!(message["token"], "fcm-dave");
    assert_eq!(message["data"]["invitation_id"], both.to_string());
    let hooked = hook.wait_requests(1, WAIT)[0].json();
    assert_eq!(hooked["user"], erin.to_string());
    assert_eq!(hooked["invitation"]["invitation_id"], both.to_string());
    cancel(&caller, &both);
    fcm.wait_requests(2, WAIT);
    hook.wait_requests(2, WAIT);

    // /metrics counts them, each by its target's provider.
    wait_metrics(
        &server,
        &[
            r#"beckon_push_sent_total{provider="fcm"} 2"#,
            r#"beckon_push_sent_total{provider="webhook"} 2"#,
            r#"beckon_push_failed_total{provider="apns_voip",reason="Unregistered"} 1"#,
            r#"beckon_push_queue_depth{provider="fcm"} 0"#,
            r#"beckon_push_latency_seconds_count{provider="webhook"} 2"#,
        ],
    );

    for fake in [&apns, &fcm, &hook] {
        assert_eq!(fake.problems(), Vec::<String>::new());
    }
}

/// Waits until the server's /metrics has every line of `lines`.
fn wait_metrics(server: &ServerProcess, lines: &[&str]) {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = server.admin_get("/metrics");
        assert!(status.contains("200"), "{status}");
        let missing: Vec<&&str> = lines
            .iter()
            .filter(|line| !body.lines().any(|l| l == **line))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "not in /metrics: {missing:?}\n{}",
            body.lines()
                .filter(|l| l.starts_with("beckon_push"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A device's target is kept by the SQLite store: a restarted server still
/// pushes to it.
#[test]
fn targets_survive_a_restart_with_the_sqlite_store() {
    let keys = TestKeys::new();
    let fcm = Fake::start(Kind::Fcm, &keys);
    let config = keys.dir.join("server.toml");
    std::fs::write(&config, push_toml(&keys, None, Some(&fcm), None)).unwrap();
    let mut server =
        ServerProcess::start(&["--config", config.to_str().unwrap(), "--grace-secs", "0"]);
    let (alice, dave) = (unique("alice"), unique("dave"));
    set_target(
        &server.url(),
        &dave,
        "pixel",
        json!({"provider": "fcm", "token": "fcm-dave"}),
    );
    server.kill();
    server.restart();
    let caller = Peer::online(&server.url(), &alice);
    let after = caller.invite(&[&dave], 30).invitation_id;
    assert_eq!(push_result(&caller, &dave).0, PushOutcome::Sent);
    let ring = fcm.wait_requests(1, WAIT).remove(0);
    assert_eq!(ring.json()["message"]["token"], "fcm-dave");
    assert_eq!(
        ring.json()["message"]["data"]["invitation_id"],
        after.to_string()
    );
    assert_eq!(fcm.problems(), Vec::<String>::new());
}

#[test]
fn a_server_with_a_bad_push_config_refuses_to_start() {
    let keys = TestKeys::new();
    let config = keys.dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "dev = true\nstore = \"memory\"\n[push.apns]\nteam_id = \"T1\"\nkey_id = \"K1\"\nkey_file = {:?}\n",
            keys.dir.join("AuthKey_missing.p8").display().to_string()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("push.apns.key_file") && stderr.contains("AuthKey_missing.p8"),
        "{stderr}"
    );
}
