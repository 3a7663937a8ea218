//! The Redis store (`serve --store redis`) against a real `redis-server` of
//! the test's own (common/redis.rs): a restart loses nothing, a node that
//! starts under another name takes over a stopped node's invitations, Redis
//! going away fails changes with SERVER and nothing acknowledged is lost, a
//! node whose lease lapsed stops, and what a start cannot read is refused
//! and left as it is. Several running nodes: tests/cluster.rs.

use std::time::{Duration, Instant};

use beckon::protocol::{Answer, InvitationId, Push, SendInvitation, Text, UserId};
use beckon::{ClientConfig, ErrorCode, Event};
use redis::Commands;

mod common;
use common::push_fakes::TestKeys;
use common::redis::RedisServer;
use common::{block, unique, Peer, ServerProcess, WAIT};

/// A node on `redis` named `node`, with a short lease (1.5 s) so tests of
/// lapsed leases are quick.
fn node(redis: &RedisServer, prefix: &str, node: &str) -> ServerProcess {
    node_with_lease(redis, prefix, node, 1500)
}

fn node_with_lease(redis: &RedisServer, prefix: &str, node: &str, lease_ms: u64) -> ServerProcess {
    let url = redis.url();
    ServerProcess::start(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--node-name",
        node,
        "--config",
        &config_with_lease(prefix, lease_ms),
    ])
}

/// A config file with the `[redis]` settings the flags do not cover.
fn config_file(prefix: &str) -> String {
    config_with_lease(prefix, 1500)
}

fn config_with_lease(prefix: &str, lease_ms: u64) -> String {
    let path = std::env::temp_dir().join(format!("beckon-redis-config-{prefix}-{lease_ms}.toml"));
    std::fs::write(
        &path,
        format!("[redis]\nprefix = \"{prefix}\"\nlease_ms = {lease_ms}\n"),
    )
    .expect("config file");
    path.display().to_string()
}

fn prefix() -> String {
    format!("t{}", &common::rand_suffix()[..10])
}

fn accept(peer: &Peer, id: &InvitationId) -> beckon::Result<()> {
    block(peer.client.accept_invitation(Answer {
        invitation_id: id.clone(),
        extended_data: Text::from("on redis"),
    }))
}

fn accepted_by(inviter: &Peer, id: &InvitationId, invitee: &UserId) {
    inviter.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted {
            invitation_id,
            invitee: who,
            ..
        }) if invitation_id == id && who == invitee => Some(()),
        _ => None,
    });
}

fn received(peer: &Peer, id: &InvitationId) -> usize {
    peer.count(|e| {
        matches!(e, Event::Invitation(Push::InvitationReceived { invitation_id, .. }) if invitation_id == id)
    })
}

#[test]
fn a_node_killed_and_started_again_under_its_name_loses_nothing() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let mut server = node(&redis, &prefix, "node-a");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&server.url(), &alice);
    let invitee = Peer::online(&server.url(), &bob);
    let mut request = SendInvitation::new(vec![bob.clone()], 60);
    request.idempotency_key = Some(Text::from("call-1"));
    let sent = block(inviter.client.send_invitation(request.clone())).unwrap();
    assert_eq!(invitee.ringing(), sent.invitation_id);

    server.kill();
    server.restart();
    // The clients reconnect by themselves (and re-send what was under way).
    // A send retried with its idempotency key is the same invitation.
    let again = block(inviter.client.send_invitation(request)).unwrap();
    assert_eq!(again.invitation_id, sent.invitation_id);
    // The invitation still rings: the answer reaches the inviter.
    accept(&invitee, &sent.invitation_id).unwrap();
    accepted_by(&inviter, &sent.invitation_id, &bob);
    // The client tells its app of one invitation once (rule 9), across the
    // restart too.
    assert_eq!(received(&invitee, &sent.invitation_id), 1);
}

#[test]
fn a_node_started_after_another_stopped_takes_its_invitations() {
    let redis = RedisServer::start();
    let prefix = prefix();
    let mut first = node(&redis, &prefix, "node-a");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&first.url(), &alice);
    let sent = inviter.invite(&[&bob], 60);

    // node-a dies; once its lease lapses, node-b (started later) takes its
    // invitations at start.
    first.kill();
    drop(inviter);
    std::thread::sleep(Duration::from_millis(1600));
    let second = node(&redis, &prefix, "node-b");
    let invitee = Peer::online(&second.url(), &bob);
    assert_eq!(invitee.ringing(), sent.invitation_id);
    // A new device of the inviter: it hears of the answer once synced.
    let inviter = Peer::online_synced(&second.url(), &alice);
    accept(&invitee, &sent.invitation_id).unwrap();
    accepted_by(&inviter, &sent.invitation_id, &bob);
    let mut conn = redis.connection();
    let owned_by_a: usize = conn.scard(format!("{{{prefix}}}:owned:node-a")).unwrap();
    let owned_by_b: usize = conn.scard(format!("{{{prefix}}}:owned:node-b")).unwrap();
    assert_eq!((owned_by_a, owned_by_b), (0, 1));
    let owner: String = conn
        .hget(format!("{{{prefix}}}:inv:{}", sent.invitation_id), "o")
        .unwrap();
    assert_eq!(owner, "node-b");
}

#[test]
fn redis_away_fails_changes_with_server_and_loses_nothing_acknowledged() {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let prefix = prefix();
    // A lease longer than Redis is away here.
    let mut server = node_with_lease(&redis, &prefix, "node-a", 30_000);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut config = ClientConfig::new(server.url());
    config.request_timeout = Duration::from_secs(3);
    let inviter = Peer::with_config(config, &alice);
    block(inviter.client.login(alice.clone(), "dev-token")).unwrap();
    let invitee = Peer::online(&server.url(), &bob);
    let before = inviter.invite(&[&bob], 60);
    assert_eq!(invitee.ringing(), before.invitation_id);

    redis.kill();
    let failed = block(
        inviter
            .client
            .send_invitation(SendInvitation::new(vec![bob.clone()], 60)),
    );
    let error = failed.expect_err("a send while Redis is away must fail");
    assert!(
        matches!(error.code, ErrorCode::Server | ErrorCode::RequestTimeout),
        "{error:?}"
    );
    // Back within the lease: the node carries on, and what was acknowledged
    // before is still there.
    redis.restart();
    let deadline = Instant::now() + WAIT;
    let after = loop {
        match block(
            inviter
                .client
                .send_invitation(SendInvitation::new(vec![bob.clone()], 60)),
        ) {
            Ok(sent) => break sent,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no send works after Redis came back: {e:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    accept(&invitee, &before.invitation_id).unwrap();
    accepted_by(&inviter, &before.invitation_id, &bob);
    assert!(server.exited().is_none(), "the node stays up");
    let mut conn = redis.connection();
    let owned: Vec<String> = conn.smembers(format!("{{{prefix}}}:owned:node-a")).unwrap();
    assert!(
        owned.contains(&after.invitation_id.to_string()),
        "{owned:?}"
    );
}

#[test]
fn a_node_whose_lease_lapsed_stops_instead_of_answering() {
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let prefix = prefix();
    let mut server = node(&redis, &prefix, "node-a");
    redis.kill();
    // Longer than the lease (1.5 s): when Redis is back, the lease is gone.
    std::thread::sleep(Duration::from_millis(2500));
    redis.restart();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node went on without its lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "it stops with an error: {status:?}");
}

#[test]
fn what_a_start_cannot_read_is_refused_and_left_as_it_is() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut conn = redis.connection();

    // A newer schema.
    let newer = prefix();
    let _: () = conn
        .hset(format!("{{{newer}}}:meta"), "schema", 99)
        .unwrap();
    let config = config_file(&newer);
    let message =
        common::refused_start(&["--store", "redis", "--redis-url", &url, "--config", &config]);
    assert!(message.contains("schema 99"), "{message}");
    let schema: i64 = conn.hget(format!("{{{newer}}}:meta"), "schema").unwrap();
    assert_eq!(schema, 99, "left as it was");

    // A record that is not one.
    let broken = prefix();
    let id = "0123456789abcdef0123456789abcdef";
    let key = format!("{{{broken}}}:inv:{id}");
    let _: () = conn
        .hset_multiple(&key, &[("v", "1"), ("r", "garbage")])
        .unwrap();
    let _: () = conn.sadd(format!("{{{broken}}}:owned:node-x"), id).unwrap();
    let config = config_file(&broken);
    let message = common::refused_start(&[
        "--store",
        "redis",
        "--redis-url",
        &url,
        "--node-name",
        "node-x",
        "--config",
        &config,
    ]);
    assert!(
        message.contains(&key) && message.contains("cannot be read"),
        "{message}"
    );
    let kept: String = conn.hget(&key, "r").unwrap();
    assert_eq!(kept, "garbage", "left as it was");

    // Nobody there.
    let message =
        common::refused_start(&["--store", "redis", "--redis-url", "redis://127.0.0.1:1/"]);
    assert!(
        message.contains("redis://127.0.0.1:1/") && message.contains("cannot connect"),
        "{message}"
    );
    // A password never shows.
    let message = common::refused_start(&[
        "--store",
        "redis",
        "--redis-url",
        "redis://me:hunter2@127.0.0.1:1/",
    ]);
    assert!(
        !message.contains("hunter2") && message.contains("me:***@"),
        "{message}"
    );
}

/// `rediss://` with `redis.ca_file`: a Redis that speaks only TLS on the
/// node's port, its certificate signed by a private CA. With the CA the node
/// works; without it (the system's roots do not know that CA) it refuses
/// to start, saying why.
#[test]
fn a_redis_behind_tls_with_a_private_ca() {
    let keys = TestKeys::new();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
        .to_string();
    let (cert, key) = (
        keys.cert_file.display().to_string(),
        keys.key_file.display().to_string(),
    );
    // The plain port stays for the fixture's checks; the node uses TLS.
    let redis = RedisServer::start_with(&[
        "--appendonly",
        "no",
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ]);
    let prefix = prefix();
    let url = format!("rediss://127.0.0.1:{tls_port}/");
    let config = std::env::temp_dir().join(format!("beckon-redis-tls-{prefix}.toml"));
    std::fs::write(
        &config,
        format!(
            "[redis]\nprefix = \"{prefix}\"\nlease_ms = 1500\nca_file = {:?}\n",
            keys.ca_file.display().to_string()
        ),
    )
    .expect("config file");
    let config = config.display().to_string();
    let args = ["--store", "redis", "--redis-url", &url];

    let server =
        ServerProcess::start(&[&args[..], &["--node-name", "tls-a", "--config", &config]].concat());
    let (alice, bob) = (unique("alice"), unique("bob"));
    let inviter = Peer::online(&server.url(), &alice);
    let invitee = Peer::online(&server.url(), &bob);
    let sent = inviter.invite(&[&bob], 60);
    assert_eq!(invitee.ringing(), sent.invitation_id);
    accept(&invitee, &sent.invitation_id).unwrap();
    accepted_by(&inviter, &sent.invitation_id, &bob);
    let mut conn = redis.connection();
    let owner: String = conn
        .hget(format!("{{{prefix}}}:inv:{}", sent.invitation_id), "o")
        .unwrap();
    assert_eq!(owner, "tls-a", "stored through the TLS connection");
    drop(server);

    let without_ca = config_file(&prefix);
    let stderr = common::refused_start(
        &[
            &args[..],
            &["--node-name", "tls-b", "--config", &without_ca],
        ]
        .concat(),
    );
    assert!(
        stderr.contains("redis rediss://127.0.0.1") && stderr.contains("cannot connect"),
        "{stderr}"
    );
}
