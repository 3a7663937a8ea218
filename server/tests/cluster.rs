//! Several `beckon-server` nodes on one Redis (`--store redis`): a device on
//! one node invites a device on another, which rings, answers, and is
//! answered; a send retried on another node is the same invitation; a node
//! that is killed has its invitations taken over and its devices come back
//! on another node.

use std::time::{Duration, Instant};

use beckon::protocol::{
    Answer, InvitationId, Push, PushOutcome, PushProvider, SendInvitation, Text, UserId,
};
use beckon::Event;

mod common;
use common::push_fakes::{push_toml, set_target, Fake, Kind, TestKeys};
use common::redis::RedisServer;
use common::{block, unique, Peer, ServerProcess, WAIT};

/// Nodes of one deployment (a prefix of their own on the test's Redis).
struct Deployment {
    redis: RedisServer,
    prefix: String,
    config: String,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment::with("")
    }

    /// A deployment whose nodes' config file ends with `extra` (sections).
    fn with(extra: &str) -> Deployment {
        Deployment::with_settings("", extra)
    }

    /// A deployment whose nodes' config file has `top` (settings) before its
    /// sections, and ends with `extra` (sections).
    fn with_settings(top: &str, extra: &str) -> Deployment {
        let redis = RedisServer::start();
        let prefix = format!("c{}", &common::rand_suffix()[..10]);
        let config = std::env::temp_dir().join(format!("beckon-cluster-{prefix}.toml"));
        std::fs::write(
            &config,
            // Rates above a client's, for the rounds of the race test.
            format!(
                "grace_secs = 2\nmessages_per_sec = 100000\nmessages_burst = 100000\n{top}\n\
                 [redis]\nprefix = \"{prefix}\"\nlease_ms = 1500\n{extra}"
            ),
        )
        .expect("config");
        Deployment {
            redis,
            prefix,
            config: config.display().to_string(),
        }
    }

    fn node(&self, name: &str) -> ServerProcess {
        let url = self.redis.url();
        ServerProcess::start(&[
            "--store",
            "redis",
            "--redis-url",
            &url,
            "--node-name",
            name,
            "--config",
            &self.config,
        ])
    }
}

fn answer(id: &InvitationId, note: &str) -> Answer {
    Answer {
        invitation_id: id.clone(),
        extended_data: Text::from(note),
    }
}

fn accepted(inviter: &Peer, id: &InvitationId, invitee: &UserId) {
    inviter.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted {
            invitation_id,
            invitee: who,
            ..
        }) if invitation_id == id && who == invitee => Some(()),
        _ => None,
    });
}

#[test]
fn an_invitation_rings_and_is_answered_across_nodes() {
    let deployment = Deployment::new();
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let inviter = Peer::online(&a.url(), &alice);
    let invitee = Peer::online(&b.url(), &bob);
    let other = Peer::online(&b.url(), &carol);
    // The directory may take a moment to reach node-a. (Sending before
    // would leave an invitation that rings them once they are seen.)
    wait_devices(&a, &bob, 1);
    wait_devices(&a, &carol, 1);
    let sent = inviter.invite(&[&bob, &carol], 30);
    assert!(sent.error_invitees.is_empty(), "{sent:?}");
    assert_eq!(invitee.ringing(), sent.invitation_id);
    assert_eq!(other.ringing(), sent.invitation_id);
    // Receipts reach the inviter's node: their state becomes RECEIVED.
    inviter.expect("bob RECEIVED", |e| match e {
        Event::Invitation(Push::UserStateChanged { user_id, state, .. })
            if user_id == &bob && *state == beckon::protocol::InviteeState::Received =>
        {
            Some(())
        }
        _ => None,
    });
    block(
        invitee
            .client
            .accept_invitation(answer(&sent.invitation_id, "on b")),
    )
    .unwrap();
    accepted(&inviter, &sent.invitation_id, &bob);
    // The first answer won: carol's refusal is still hers to give, and a
    // second accept by bob is refused as on one node.
    let again = block(
        invitee
            .client
            .accept_invitation(answer(&sent.invitation_id, "twice")),
    );
    assert_eq!(again.unwrap_err().code, beckon::ErrorCode::AlreadyAnswered);
    block(
        other
            .client
            .refuse_invitation(answer(&sent.invitation_id, "no")),
    )
    .unwrap();
    inviter.expect("INVITATION_REFUSED", |e| match e {
        Event::Invitation(Push::InvitationRefused { invitee, .. }) if invitee == &carol => Some(()),
        _ => None,
    });
}

#[test]
fn a_send_retried_on_another_node_is_the_same_invitation() {
    let deployment = Deployment::new();
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let on_a = Peer::online(&a.url(), &alice);
    let mut request = SendInvitation::new(vec![bob.clone()], 30);
    request.idempotency_key = Some(Text::from("retry-me"));
    let first = block(on_a.client.send_invitation(request.clone())).unwrap();
    let on_b = Peer::online(&b.url(), &alice);
    let second = block(on_b.client.send_invitation(request)).unwrap();
    assert_eq!(first.invitation_id, second.invitation_id);
}

#[test]
fn a_killed_node_s_invitations_are_taken_over_and_still_ring() {
    let deployment = Deployment::new();
    let mut a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&a.url(), &alice);
    let invitee = Peer::online(&b.url(), &bob);
    wait_devices(&a, &bob, 1);
    let sent = inviter.invite(&[&bob], 60);
    assert!(sent.error_invitees.is_empty(), "{sent:?}");
    assert_eq!(invitee.ringing(), sent.invitation_id);
    a.kill();
    drop(inviter);
    // The inviter comes back on node-b within the grace period.
    let inviter = Peer::online_synced(&b.url(), &alice);
    // node-b takes node-a's invitations once its lease lapses (1.5 s).
    let deadline = Instant::now() + WAIT;
    loop {
        match block(
            invitee
                .client
                .accept_invitation(answer(&sent.invitation_id, "after")),
        ) {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "never taken over: {e:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    accepted(&inviter, &sent.invitation_id, &bob);
    let _ = deployment.prefix.len();
}

/// Waits until `node` counts `wanted` devices of `user` online.
fn wait_devices(node: &ServerProcess, user: &UserId, wanted: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = node.admin_get(&format!("/users/{user}/devices"));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        if value["devices"].as_u64() == Some(wanted) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user}: never {wanted} devices: {body}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_devices_on_two_nodes_accepting_at_once_one_wins_every_time() {
    const ROUNDS: usize = 1000;
    let deployment = Deployment::new();
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let c = deployment.node("node-c");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&a.url(), &alice);
    let phone = Peer::online(&b.url(), &bob);
    let laptop = Peer::online(&c.url(), &bob);
    wait_devices(&a, &bob, 2);
    let started = Instant::now();
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let id = inviter.invite(&[&bob], 30).invitation_id;
        assert_eq!(phone.ringing(), id, "round {round}");
        assert_eq!(laptop.ringing(), id, "round {round}");
        let (first, second) = block(async {
            tokio::join!(
                phone.client.accept_invitation(answer(&id, "phone")),
                laptop.client.accept_invitation(answer(&id, "laptop")),
            )
        });
        match (&first, &second) {
            (Ok(()), Err(e)) if e.code == beckon::ErrorCode::AlreadyAnswered => wins[0] += 1,
            (Err(e), Ok(())) if e.code == beckon::ErrorCode::AlreadyAnswered => wins[1] += 1,
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        }
        accepted(&inviter, &id, &bob);
    }
    // Every round told the inviter once.
    std::thread::sleep(Duration::from_millis(200));
    let told = inviter.count(|e| matches!(e, Event::Invitation(Push::InvitationAccepted { .. })));
    assert_eq!(told, ROUNDS);
    eprintln!(
        "{ROUNDS} rounds in {:?}: the phone (node-b) won {}, the laptop (node-c) {}",
        started.elapsed(),
        wins[0],
        wins[1]
    );
}

/// A push target set on one node rings by push from an invitation made on
/// another (the Redis store's commits carry every target change to every
/// node), and a target cleared there is gone here too.
#[test]
fn a_push_target_set_on_one_node_rings_from_another() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let deployment = Deployment::with(&push_toml(&keys, None, None, Some(&hook)));
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let target = serde_json::json!({"provider": "webhook", "token": "bob-phone"});
    set_target(&b.url(), &bob, "phone", target);
    // Bob's session on node-b ends after the grace period (2 s): he is
    // offline everywhere then.
    wait_devices(&a, &bob, 1);
    wait_devices(&a, &bob, 0);

    let inviter = Peer::online(&a.url(), &alice);
    let sent = inviter.invite(&[&bob], 30);
    let (outcome, provider) = inviter.expect("INVITATION_PUSH_RESULT", |event| match event {
        Event::Invitation(Push::InvitationPushResult {
            invitee,
            outcome,
            provider,
            ..
        }) if invitee == &bob => Some((*outcome, *provider)),
        _ => None,
    });
    assert_eq!(
        (outcome, provider),
        (PushOutcome::Sent, Some(PushProvider::Webhook))
    );
    let ring = hook.wait_requests(1, WAIT).remove(0);
    assert_eq!(
        ring.json()["invitation"]["invitation_id"],
        sent.invitation_id.to_string()
    );
    assert_eq!(ring.json()["token"], "bob-phone");

    // Bob's phone logs in on node-b and clears its target: node-a forgets
    // it.
    let mut config = beckon::ClientConfig::new(b.url());
    config.device_id = Some(beckon::protocol::DeviceId::parse("phone", "device").unwrap());
    let phone = Peer::with_config(config, &bob);
    block(phone.client.login(bob.clone(), "dev-token")).unwrap();
    block(phone.client.clear_push_target()).unwrap();
    drop(phone);
    wait_devices(&a, &bob, 0);
    let second = inviter.invite(&[&bob], 30);
    let outcome = inviter.expect("INVITATION_PUSH_RESULT", |event| match event {
        Event::Invitation(Push::InvitationPushResult {
            invitation_id,
            outcome,
            ..
        }) if invitation_id == &second.invitation_id => Some(*outcome),
        _ => None,
    });
    assert_eq!(outcome, PushOutcome::NoPushTarget);

    // Set again; a node started after that has it from its start. (A token
    // of 200 bytes: its stored form, the stream's last entry, is not UTF-8.)
    let token = format!("bob-phone-2-{}", "x".repeat(188));
    let target = serde_json::json!({"provider": "webhook", "token": token});
    set_target(&b.url(), &bob, "phone", target);
    let c = deployment.node("node-c");
    wait_devices(&c, &bob, 0);
    let caller = Peer::online(&c.url(), &unique("carol"));
    caller.invite(&[&bob], 30);
    let outcome = caller.expect("INVITATION_PUSH_RESULT", |event| match event {
        Event::Invitation(Push::InvitationPushResult { outcome, .. }) => Some(*outcome),
        _ => None,
    });
    assert_eq!(outcome, PushOutcome::Sent);
    assert_eq!(hook.wait_requests(2, WAIT)[1].json()["token"], token);
}

#[test]
fn webhooks_tell_each_event_once_from_the_node_that_has_it() {
    let keys = TestKeys::new();
    let receiver = Fake::start(Kind::Events, &keys);
    let deployment = Deployment::with(&format!(
        "[webhooks]\nextra_root_ca = {:?}\n[[webhooks.endpoint]]\nurl = \"{}/events\"\nsecret = {:?}\n",
        keys.ca_file.display().to_string(),
        receiver.url(),
        common::push_fakes::webhook_secret(),
    ));
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&a.url(), &alice);
    let invitee = Peer::online(&b.url(), &bob);
    wait_devices(&a, &bob, 1);
    wait_devices(&b, &alice, 1);
    let sent = inviter.invite(&[&bob], 30);
    assert_eq!(invitee.ringing(), sent.invitation_id);
    // The answer runs on node-a, which holds the invitation.
    block(
        invitee
            .client
            .accept_invitation(answer(&sent.invitation_id, "yes")),
    )
    .unwrap();
    accepted(&inviter, &sent.invitation_id, &bob);

    let id = sent.invitation_id.to_string();
    let wanted = [
        "invitation.created",
        "invitation.received",
        "invitation.accepted",
        "invitation.ended",
    ];
    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events: Vec<serde_json::Value> = receiver
            .requests()
            .iter()
            .map(|r| r.json())
            .filter(|e| {
                e["data"]["invitation_id"] == id.as_str()
                    || e["data"]["user_id"] == alice.as_str()
                    || e["data"]["user_id"] == bob.as_str()
            })
            .collect();
        let done = wanted
            .iter()
            .all(|kind| events.iter().any(|e| e["type"] == *kind));
        if done || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A moment for a second node's copy, were there one.
    std::thread::sleep(Duration::from_millis(300));
    let count = |kind: &str, field: &str, value: &str| {
        receiver
            .requests()
            .iter()
            .map(|r| r.json())
            .filter(|e| e["type"] == kind && e["data"][field] == value)
            .count()
    };
    for kind in wanted {
        assert_eq!(count(kind, "invitation_id", &id), 1, "{kind}: {events:#?}");
    }
    assert_eq!(count("device.online", "user_id", alice.as_str()), 1);
    assert_eq!(count("device.online", "user_id", bob.as_str()), 1);
    assert_eq!(receiver.problems(), Vec::<String>::new());
}

/// Every page of `peer`'s history that `query` asks for, newest first.
fn all_pages(
    peer: &Peer,
    mut query: beckon::protocol::InvitationQuery,
) -> Vec<beckon::protocol::InvitationSummary> {
    let mut all = Vec::new();
    loop {
        let page = block(peer.client.query_invitations(query.clone())).unwrap();
        assert!(page.invitations.len() <= query.limit as usize, "{page:?}");
        all.extend(page.invitations);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return all,
        }
    }
}

#[test]
fn history_is_shared_by_the_nodes_and_outlives_them() {
    use beckon::protocol::{HistoryRole, InvitationQuery, InviteeState};
    let deployment = Deployment::with_settings("history_per_user = 20", "");
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&a.url(), &alice);
    let invitee = Peer::online(&b.url(), &bob);
    wait_devices(&a, &bob, 1);
    // 24 invitations end on node-a (which holds them): bob refuses 3 of
    // every 4, and alice cancels the rest.
    let mut refused = Vec::new();
    for round in 0..24 {
        let sent = inviter.invite(&[&bob], 30);
        assert_eq!(invitee.ringing(), sent.invitation_id);
        if round % 4 == 3 {
            block(
                inviter
                    .client
                    .cancel_invitation(beckon::protocol::CancelInvitation {
                        invitation_id: sent.invitation_id.clone(),
                        invitees: None,
                        extended_data: Text::from(""),
                    }),
            )
            .unwrap();
        } else {
            block(
                invitee
                    .client
                    .refuse_invitation(answer(&sent.invitation_id, "busy")),
            )
            .unwrap();
            refused.push(sent.invitation_id.clone());
        }
    }
    // bob asks node-b, which ended none of them: pages of 7, newest first,
    // the newest 20 (history_per_user), each with its final state.
    let query = InvitationQuery {
        limit: 7,
        ..Default::default()
    };
    let seen = all_pages(&invitee, query.clone());
    assert_eq!(seen.len(), 20, "{seen:?}");
    let order: Vec<(u64, String)> = seen
        .iter()
        .map(|s| (s.created_ms, s.invitation_id.to_string()))
        .collect();
    assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    for summary in &seen {
        assert_eq!(summary.inviter, alice);
        let state = summary.invitees[0].state;
        if refused.contains(&summary.invitation_id) {
            assert_eq!(state, InviteeState::Rejected, "{summary:?}");
        } else {
            assert_eq!(state, InviteeState::Cancelled, "{summary:?}");
        }
    }
    // Roles: all of bob's were received, all of alice's sent.
    let received = InvitationQuery {
        role: HistoryRole::Received,
        limit: 100,
        ..Default::default()
    };
    let sent = InvitationQuery {
        role: HistoryRole::Sent,
        ..received.clone()
    };
    assert_eq!(all_pages(&invitee, sent.clone()).len(), 0);
    assert_eq!(all_pages(&invitee, received.clone()).len(), 20);
    assert_eq!(all_pages(&inviter, received).len(), 0);
    let alice_sent = all_pages(&inviter, sent.clone());
    assert_eq!(alice_sent, seen);
    // A time range: what was sent before the 5th newest.
    let until = InvitationQuery {
        until_ms: seen[4].created_ms,
        limit: 100,
        ..Default::default()
    };
    let older = all_pages(&invitee, until);
    assert!(older.iter().all(|s| s.created_ms < seen[4].created_ms));
    assert!(older.len() >= 15, "{}", older.len());

    // Both nodes stop; a node started since, with nothing in memory, lists
    // the same.
    drop((inviter, invitee));
    drop((a, b));
    let c = deployment.node("node-c");
    let bob_again = Peer::online(&c.url(), &bob);
    assert_eq!(all_pages(&bob_again, query), seen);
}

const API_KEY: &str = "cluster-key-0123456789abcdef0123456789";

/// A call of `node`'s API with the deployment's key: (status, body).
fn api(
    node: &ServerProcess,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, value) = common::api::call(node, method, path, Some(API_KEY), body.as_deref());
    (status, value)
}

#[test]
fn any_node_s_api_acts_on_the_invitations_and_devices_of_every_node() {
    use serde_json::json;
    let deployment = Deployment::with(&format!(
        "[api]\nlisten = \"127.0.0.1:0\"\n\
         [[api.key]]\nname = \"backend\"\nsecret = \"{API_KEY}\"\n"
    ));
    let a = deployment.node("node-a");
    let b = deployment.node("node-b");
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let bob_device = Peer::online(&b.url(), &bob);
    let carol_device = Peer::online(&b.url(), &carol);
    wait_devices(&a, &bob, 1);
    wait_devices(&a, &carol, 1);

    // node-a's API sends for alice (no device anywhere): bob rings on node-b.
    let send = json!({
        "inviter": alice.as_str(),
        "invitees": [bob.as_str()],
        "timeout_secs": 30,
        "idempotency_key": "call-1",
    });
    let (status, sent) = api(&a, "POST", "/v1/invitations", Some(send.clone()));
    assert_eq!(status, 200, "{sent}");
    let id = sent["invitation_id"].as_str().unwrap().to_owned();
    assert_eq!(bob_device.ringing().to_string(), id);
    // The same send retried on node-b: node-a claimed the key, and answers
    // with its invitation.
    let (status, again) = api(&b, "POST", "/v1/invitations", Some(send));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["invitation_id"], id.as_str());
    assert_eq!(
        bob_device.count(|e| matches!(e, Event::Invitation(Push::InvitationReceived { .. }))),
        1
    );

    // bob accepts on node-b; node-b's API reads node-a's invitation from Redis.
    let invitation_id = InvitationId::parse(&id, "id").unwrap();
    block(
        bob_device
            .client
            .accept_invitation(answer(&invitation_id, "yes")),
    )
    .unwrap();
    let (status, seen) = api(&b, "GET", &format!("/v1/invitations/{id}"), None);
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["invitees"][0]["state"], "ACCEPTED", "{seen}");
    assert_eq!(seen["sent_by_server"], true);

    // node-b's API cancels an invitation node-a holds.
    let (status, sent) = api(
        &a,
        "POST",
        "/v1/invitations",
        Some(json!({
            "inviter": alice.as_str(),
            "invitees": [bob.as_str(), carol.as_str()],
            "timeout_secs": 30,
        })),
    );
    assert_eq!(status, 200, "{sent}");
    let second = sent["invitation_id"].as_str().unwrap().to_owned();
    assert_eq!(carol_device.ringing().to_string(), second);
    let (status, cancelled) = api(
        &b,
        "POST",
        &format!("/v1/invitations/{second}/cancel"),
        Some(json!({"extended_data": "never mind"})),
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["error_invitees"], json!([]));
    carol_device.expect("INVITATION_CANCELLED", |e| match e {
        Event::Invitation(Push::InvitationCancelled { invitation_id, .. })
            if invitation_id.to_string() == second =>
        {
            Some(())
        }
        _ => None,
    });
    let (status, seen) = api(&a, "GET", &format!("/v1/invitations/{second}"), None);
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["ended"], true, "{seen}");

    // Both nodes' APIs list bob's history, the same.
    let (status, history) = api(&b, "GET", &format!("/v1/users/{bob}/invitations"), None);
    assert_eq!(status, 200, "{history}");
    let listed: Vec<&str> = history["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["invitation_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{history}");
    assert!(listed.contains(&id.as_str()) && listed.contains(&second.as_str()));
    let (_, history_on_a) = api(&a, "GET", &format!("/v1/users/{bob}/invitations"), None);
    assert_eq!(history_on_a, history);

    // node-a's API lists carol's device on node-b, and kicks it there.
    let (status, devices) = api(&a, "GET", &format!("/v1/users/{carol}/devices"), None);
    assert_eq!(status, 200, "{devices}");
    let device = devices["devices"][0]["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kick = format!("/v1/users/{carol}/devices/{device}");
    let (status, kicked) = api(&a, "DELETE", &kick, None);
    assert_eq!(status, 204, "{kicked}");
    carol_device.expect("KICKED_OUT", |e| {
        matches!(
            e,
            Event::ConnectionStateChanged {
                reason: beckon::protocol::ConnectionReason::KickedOut,
                ..
            }
        )
        .then_some(())
    });
    wait_devices(&a, &carol, 0);
    let (status, missing) = api(&a, "DELETE", &kick, None);
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "DEVICE_NOT_FOUND");
}
