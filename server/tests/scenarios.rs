//! The rules, operations and events of docs/SEMANTICS.md as one suite that
//! runs four times: against an in-process `memory://` hub, against a real
//! `beckon-server` process over WebSocket on 127.0.0.1 with each of its
//! single-node stores (SQLite, the default, and `--store memory`), and
//! against three nodes sharing a Redis (`--store redis`), where each peer a
//! scenario brings online goes to the next node, so inviter and invitees
//! (and one user's devices) are on different nodes. The same scenario code
//! for all, so the transports and the stores cannot drift.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use beckon::hub::{Hub, HubConfig};
use beckon::memory as memory_hubs;
use beckon::protocol::{
    Answer, CancelInvitation, ConnectionReason, ConnectionState, DeviceId, InvitationId,
    InviteeState, Notification, Push, SendInvitation, UserId,
};
use beckon::{Client, ClientConfig, DispatchMode, ErrorCode, Event};

mod common;
use common::redis::RedisServer;
use common::{block, unique, Peer, ServerProcess};

/// The runtime of the memory target's hubs (their deadlines and token
/// expiries): like an app that makes its own hubs, this test owns it, and
/// keeps it as long as the hubs, which is the whole run.
fn hub_runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_time()
                .build()
                .unwrap()
        })
        .handle()
}

/// Where a scenario runs.
#[derive(Clone, Copy)]
enum Target {
    Memory,
    /// A server on its default store (SQLite in a fresh data directory).
    Server,
    /// A server with `--store memory`.
    ServerMemoryStore,
    /// Three servers with `--store redis` on one Redis.
    Cluster,
}

/// Three nodes on one Redis, started once for the whole run.
struct Cluster {
    nodes: Vec<ServerProcess>,
}

impl Cluster {
    fn start(redis: &RedisServer, prefix: &str, flags: &[&str]) -> Cluster {
        let config = std::env::temp_dir().join(format!("beckon-scenarios-{prefix}.toml"));
        std::fs::write(&config, format!("[redis]\nprefix = \"{prefix}\"\n")).unwrap();
        let (url, config) = (redis.url(), config.display().to_string());
        let nodes = ["node-a", "node-b", "node-c"]
            .iter()
            .map(|name| {
                let mut args = vec![
                    "--max-open-invitations",
                    "100000",
                    "--grace-secs",
                    "2",
                    "--store",
                    "redis",
                    "--redis-url",
                    &url,
                    "--node-name",
                    name,
                    "--config",
                    &config,
                ];
                args.extend_from_slice(flags);
                ServerProcess::start(&args)
            })
            .collect();
        Cluster { nodes }
    }

    /// How many devices of `user` a node counts online.
    fn devices(node: &ServerProcess, user: &UserId) -> u64 {
        let (status, body) = node.admin_get(&format!("/users/{user}/devices"));
        assert!(status.contains("200"), "{status}: {body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        value["devices"].as_u64().unwrap()
    }

    /// Waits until every node counts as many devices of `user` as `at`,
    /// the node they logged in to (a node learns of another node's logins
    /// through Redis, a moment later).
    fn settle(&self, at: usize, user: &UserId) {
        let wanted = Self::devices(&self.nodes[at], user);
        let deadline = Instant::now() + common::WAIT;
        while self.nodes.iter().any(|n| Self::devices(n, user) != wanted) {
            assert!(
                Instant::now() < deadline,
                "the nodes never agreed on {user}'s devices"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The Redis of the cluster target, and its two deployments (development
/// tokens; a secret).
fn cluster(with_secret: bool) -> &'static Cluster {
    static REDIS: OnceLock<RedisServer> = OnceLock::new();
    static CLUSTERS: [OnceLock<Cluster>; 2] = [OnceLock::new(), OnceLock::new()];
    let redis = REDIS.get_or_init(RedisServer::start);
    if with_secret {
        CLUSTERS[1].get_or_init(|| {
            let path =
                std::env::temp_dir().join(format!("beckon-secret-{}", common::rand_suffix()));
            std::fs::write(&path, SECRET).unwrap();
            let path = path.display().to_string();
            Cluster::start(redis, "scenarios-secret", &["--secret-file", &path])
        })
    } else {
        CLUSTERS[0].get_or_init(|| Cluster::start(redis, "scenarios", &[]))
    }
}

thread_local! {
    /// The cluster target's next node for this test (each test has its own
    /// thread): peers brought online in turn go to nodes a, b, c, a, ...
    static NEXT_NODE: std::cell::Cell<(usize, bool)> = const { std::cell::Cell::new((0, false)) };
}

impl Target {
    /// A fresh hub for the memory target; the shared server for the other
    /// (users are unique per test, so tests do not see each other).
    fn url(self) -> String {
        match self {
            Target::Cluster => {
                NEXT_NODE.with(|n| n.set((1, false)));
                cluster(false).nodes[0].url()
            }
            Target::Memory => format!("memory://scenario-{}", common::rand_suffix()),
            Target::Server | Target::ServerMemoryStore => {
                static SERVERS: [OnceLock<ServerProcess>; 2] = [OnceLock::new(), OnceLock::new()];
                self.server(&SERVERS, &["--grace-secs", "2"]).url()
            }
        }
    }

    /// The shared server of this target's store, of the two in `servers`
    /// (SQLite, memory), started with `flags` the first time.
    fn server(
        self,
        servers: &'static [OnceLock<ServerProcess>; 2],
        flags: &[&str],
    ) -> &'static ServerProcess {
        let (server, store) = match self {
            Target::ServerMemoryStore => (&servers[1], "memory"),
            _ => (&servers[0], "sqlite"),
        };
        server.get_or_init(|| {
            let mut args = vec!["--max-open-invitations", "100000", "--store", store];
            args.extend_from_slice(flags);
            ServerProcess::start(&args)
        })
    }

    /// `user` logged in with a development token at `url`, or, on the
    /// cluster target, at the next node (once every node sees the device).
    fn online(self, url: &str, user: &UserId) -> Peer {
        let Target::Cluster = self else {
            return Peer::online(url, user);
        };
        let (at, with_secret) = NEXT_NODE.with(|n| {
            let (at, secret) = n.get();
            n.set((at + 1, secret));
            (at % 3, secret)
        });
        let cluster = cluster(with_secret);
        let peer = Peer::online(&cluster.nodes[at].url(), user);
        cluster.settle(at, user);
        peer
    }

    /// A hub that checks tokens minted from `SECRET`.
    fn url_with_secret(self) -> String {
        match self {
            Target::Cluster => {
                NEXT_NODE.with(|n| n.set((1, true)));
                cluster(true).nodes[0].url()
            }
            Target::Memory => {
                let name = format!("scenario-secret-{}", common::rand_suffix());
                let config = HubConfig {
                    secret: Some(SECRET.as_bytes().to_vec()),
                    ..HubConfig::default()
                };
                memory_hubs::install(&name, Hub::new(config, hub_runtime()).unwrap()).unwrap();
                format!("memory://{name}")
            }
            Target::Server | Target::ServerMemoryStore => {
                static SERVERS: [OnceLock<ServerProcess>; 2] = [OnceLock::new(), OnceLock::new()];
                static SECRET_FILE: OnceLock<String> = OnceLock::new();
                let path = SECRET_FILE.get_or_init(|| {
                    let path = std::env::temp_dir()
                        .join(format!("beckon-secret-{}", common::rand_suffix()));
                    std::fs::write(&path, SECRET).unwrap();
                    path.display().to_string()
                });
                self.server(&SERVERS, &["--secret-file", path]).url()
            }
        }
    }
}

const SECRET: &str = "scenario-secret-0123456789";

fn token(user: &UserId, ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    beckon::token::mint(SECRET.as_bytes(), user, now + ttl_secs)
}

fn answer(id: &InvitationId, data: &str) -> Answer {
    Answer {
        invitation_id: id.clone(),
        extended_data: data.into(),
    }
}

fn cancel(id: &InvitationId, invitees: Option<Vec<UserId>>) -> CancelInvitation {
    CancelInvitation {
        invitation_id: id.clone(),
        invitees,
        extended_data: "bye".into(),
    }
}

/// Matches INVITATION_USER_STATE_CHANGED for `who` reaching `wanted`.
fn state_of(who: &UserId, wanted: InviteeState) -> impl FnMut(&Event) -> Option<()> {
    let who = who.clone();
    move |e| match e {
        Event::Invitation(Push::UserStateChanged { user_id, state, .. })
            if *user_id == who && *state == wanted =>
        {
            Some(())
        }
        _ => None,
    }
}

/// Declares each scenario four times: `memory::name`, `server::name` (SQLite
/// store), `server_memory_store::name` and `cluster::name` (three nodes on
/// Redis).
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$name(super::Target::Memory) } )*
        }
        mod server {
            $( #[test] fn $name() { super::$name(super::Target::Server) } )*
        }
        mod server_memory_store {
            $( #[test] fn $name() { super::$name(super::Target::ServerMemoryStore) } )*
        }
        mod cluster {
            $( #[test] fn $name() { super::$name(super::Target::Cluster) } )*
        }
    };
}

scenarios!(
    demo_flow,
    refuse_tells_the_inviter,
    cancel_for_some_then_all,
    deadline_times_out_everyone_left,
    offline_invitee_rings_on_login,
    online_only_offline_invitee_is_final,
    first_answer_wins_across_devices,
    only_participants_may_act,
    inviter_logout_cancels_pending,
    same_device_again_kicks_the_old_session,
    eleventh_device_is_refused,
    limits_are_enforced,
    tokens_are_checked,
    token_warning_and_renewal,
    every_callback_once_when_freed_with_work_in_flight,
    many_threads_many_invitations,
    pool_mode_clients,
);

fn demo_flow(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let mut request = SendInvitation::new(vec![bob.clone()], 30);
    request.extended_data = "call:video".into();
    let sent = block(a.client.send_invitation(request)).unwrap();
    assert!(sent.error_invitees.is_empty());
    let (id, data) = b.expect("INVITATION_RECEIVED", |e| match e {
        Event::Invitation(Push::InvitationReceived {
            invitation_id,
            inviter,
            extended_data,
            ..
        }) => {
            assert_eq!(inviter, &alice);
            Some((invitation_id.clone(), extended_data.to_string()))
        }
        _ => None,
    });
    assert_eq!(id, sent.invitation_id);
    assert_eq!(data, "call:video");
    a.expect("RECEIVED state", |e| match e {
        Event::Invitation(Push::UserStateChanged {
            user_id,
            state: InviteeState::Received,
            ..
        }) if user_id == &bob => Some(()),
        _ => None,
    });
    block(b.client.accept_invitation(answer(&id, "ok"))).unwrap();
    let data = a.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted {
            invitee,
            extended_data,
            ..
        }) if invitee == &bob => Some(extended_data.to_string()),
        _ => None,
    });
    assert_eq!(data, "ok");
    let again = block(b.client.accept_invitation(answer(&id, "")));
    assert_eq!(again.unwrap_err().code, ErrorCode::AlreadyAnswered);
    let cancel = CancelInvitation {
        invitation_id: id,
        invitees: None,
        extended_data: "".into(),
    };
    let late = block(a.client.cancel_invitation(cancel)).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
}

fn refuse_tells_the_inviter(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    a.invite(&[&bob], 30);
    let id = b.ringing();
    block(b.client.refuse_invitation(answer(&id, "busy"))).unwrap();
    let data = a.expect("INVITATION_REFUSED", |e| match e {
        Event::Invitation(Push::InvitationRefused {
            invitee,
            extended_data,
            ..
        }) if invitee == &bob => Some(extended_data.to_string()),
        _ => None,
    });
    assert_eq!(data, "busy");
    a.expect("REJECTED state", state_of(&bob, InviteeState::Rejected));
    let late = block(b.client.accept_invitation(answer(&id, ""))).unwrap_err();
    assert_eq!(late.code, ErrorCode::AlreadyAnswered);
}

fn cancel_for_some_then_all(target: Target) {
    let url = target.url();
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let c = target.online(&url, &carol);
    let id = a.invite(&[&bob, &carol], 30).invitation_id;
    b.ringing();
    c.ringing();
    let first = block(
        a.client
            .cancel_invitation(cancel(&id, Some(vec![bob.clone()]))),
    )
    .unwrap();
    assert!(first.error_invitees.is_empty());
    let data = b.expect("INVITATION_CANCELLED", |e| match e {
        Event::Invitation(Push::InvitationCancelled {
            inviter,
            extended_data,
            ..
        }) if inviter == &alice => Some(extended_data.to_string()),
        _ => None,
    });
    assert_eq!(data, "bye");
    // Bob is final now: cancelling everyone reports him with his state.
    let all = block(a.client.cancel_invitation(cancel(&id, None))).unwrap();
    assert_eq!(all.error_invitees.len(), 1);
    assert_eq!(all.error_invitees[0].user_id, bob);
    assert_eq!(all.error_invitees[0].state, InviteeState::Cancelled);
    c.expect("INVITATION_CANCELLED", |e| {
        matches!(e, Event::Invitation(Push::InvitationCancelled { .. })).then_some(())
    });
    let late = block(c.client.accept_invitation(answer(&id, ""))).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
    let cancelled = |e: &Event| matches!(e, Event::Invitation(Push::InvitationCancelled { .. }));
    assert_eq!(b.count(cancelled), 1);
}

fn deadline_times_out_everyone_left(target: Target) {
    let url = target.url();
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let c = target.online(&url, &carol);
    let id = a.invite(&[&bob, &carol], 1).invitation_id;
    b.ringing();
    c.ringing();
    block(b.client.accept_invitation(answer(&id, ""))).unwrap();
    c.expect("INVITATION_TIMEOUT", |e| match e {
        Event::Invitation(Push::InvitationTimeout {
            invitation_id,
            inviter,
        }) => {
            assert_eq!(invitation_id, &id);
            assert_eq!(inviter, &alice);
            Some(())
        }
        _ => None,
    });
    let timed_out = a.expect("INVITATION_RESPONSE_TIMEOUT", |e| match e {
        Event::Invitation(Push::InvitationResponseTimeout { invitees, .. }) => {
            Some(invitees.to_vec())
        }
        _ => None,
    });
    assert_eq!(timed_out, vec![carol.clone()]);
    let late = block(c.client.accept_invitation(answer(&id, ""))).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
    let timeout = |e: &Event| matches!(e, Event::Invitation(Push::InvitationTimeout { .. }));
    assert_eq!(b.count(timeout), 0);
}

fn offline_invitee_rings_on_login(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let sent = a.invite(&[&bob], 30);
    assert_eq!(sent.error_invitees.len(), 1);
    assert_eq!(sent.error_invitees[0].state, InviteeState::Offline);
    let b = target.online(&url, &bob);
    let id = b.ringing();
    assert_eq!(id, sent.invitation_id);
    a.expect("RECEIVED state", state_of(&bob, InviteeState::Received));
    block(b.client.accept_invitation(answer(&id, ""))).unwrap();
    a.expect("INVITATION_ACCEPTED", |e| {
        matches!(e, Event::Invitation(Push::InvitationAccepted { .. })).then_some(())
    });
}

fn online_only_offline_invitee_is_final(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let mut request = SendInvitation::new(vec![bob.clone()], 30);
    request.online_only = true;
    let sent = block(a.client.send_invitation(request)).unwrap();
    assert_eq!(sent.error_invitees[0].state, InviteeState::Offline);
    let b = target.online(&url, &bob);
    let late = block(b.client.accept_invitation(answer(&sent.invitation_id, ""))).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
    let received = |e: &Event| matches!(e, Event::Invitation(Push::InvitationReceived { .. }));
    assert_eq!(b.count(received), 0);
}

fn first_answer_wins_across_devices(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let phone = target.online(&url, &bob);
    let laptop = target.online(&url, &bob);
    let id = a.invite(&[&bob], 30).invitation_id;
    assert_eq!(phone.ringing(), id);
    assert_eq!(laptop.ringing(), id);
    block(phone.client.accept_invitation(answer(&id, "phone"))).unwrap();
    laptop.expect("ACCEPTED state", state_of(&bob, InviteeState::Accepted));
    let second = block(laptop.client.refuse_invitation(answer(&id, ""))).unwrap_err();
    assert_eq!(second.code, ErrorCode::AlreadyAnswered);
    let accepted = a.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted { extended_data, .. }) => {
            Some(extended_data.to_string())
        }
        _ => None,
    });
    assert_eq!(accepted, "phone");
}

fn only_participants_may_act(target: Target) {
    let url = target.url();
    let (alice, bob, mallory) = (unique("alice"), unique("bob"), unique("mallory"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let m = target.online(&url, &mallory);
    let id = a.invite(&[&bob], 30).invitation_id;
    b.ringing();
    for result in [
        block(m.client.accept_invitation(answer(&id, ""))),
        block(m.client.refuse_invitation(answer(&id, ""))),
        block(a.client.accept_invitation(answer(&id, ""))),
    ] {
        assert_eq!(result.unwrap_err().code, ErrorCode::NotPermitted);
    }
    let by_invitee = block(b.client.cancel_invitation(cancel(&id, None))).unwrap_err();
    assert_eq!(by_invitee.code, ErrorCode::NotPermitted);
    let by_stranger = block(m.client.cancel_invitation(cancel(&id, None))).unwrap_err();
    assert_eq!(by_stranger.code, ErrorCode::NotPermitted);
    let unknown = InvitationId::parse("0123456789abcdef0123456789abcdef", "id").unwrap();
    let missing = block(b.client.accept_invitation(answer(&unknown, ""))).unwrap_err();
    assert_eq!(missing.code, ErrorCode::InvitationNotFound);
    // Still ringing for the real invitee.
    block(b.client.accept_invitation(answer(&id, ""))).unwrap();
}

fn inviter_logout_cancels_pending(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let id = a.invite(&[&bob], 30).invitation_id;
    b.ringing();
    block(a.client.logout()).unwrap();
    let cancelled = b.expect("INVITATION_CANCELLED", |e| match e {
        Event::Invitation(Push::InvitationCancelled { invitation_id, .. }) => {
            Some(invitation_id.clone())
        }
        _ => None,
    });
    assert_eq!(cancelled, id);
    let late = block(b.client.accept_invitation(answer(&id, ""))).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
}

fn same_device_again_kicks_the_old_session(target: Target) {
    let url = target.url();
    let bob = unique("bob");
    let device = DeviceId::parse(&format!("phone-{}", common::rand_suffix()), "device").unwrap();
    let mut config = ClientConfig::new(&url);
    config.device_id = Some(device);
    let old = Peer::with_config(config.clone(), &bob);
    block(old.client.login(bob.clone(), "t")).unwrap();
    let new = Peer::with_config(config, &bob);
    block(new.client.login(bob.clone(), "t")).unwrap();
    old.expect("DISCONNECTED(KICKED_OUT)", |e| match e {
        Event::ConnectionStateChanged {
            state: ConnectionState::Disconnected,
            reason,
        } => {
            assert_eq!(*reason, ConnectionReason::KickedOut);
            Some(())
        }
        _ => None,
    });
    let request = SendInvitation::new(vec![unique("x")], 5);
    let after = block(old.client.send_invitation(request)).unwrap_err();
    assert_eq!(after.code, ErrorCode::NotLoggedIn);
    // The new session works.
    let a = target.online(&url, &unique("alice"));
    a.invite(&[&bob], 30);
    new.ringing();
}

fn eleventh_device_is_refused(target: Target) {
    let url = target.url();
    let bob = unique("bob");
    let devices: Vec<Peer> = (0..10).map(|_| target.online(&url, &bob)).collect();
    let eleventh = Peer::new(&url, &bob);
    let refused = block(eleventh.client.login(bob.clone(), "t")).unwrap_err();
    assert_eq!(refused.code, ErrorCode::NotPermitted);
    block(devices[0].client.logout()).unwrap();
    // A slot is free again (the server may take a moment to end the session).
    let deadline = Instant::now() + common::WAIT;
    loop {
        match block(eleventh.client.login(bob.clone(), "t")) {
            Ok(()) => break,
            Err(e) if e.code == ErrorCode::NotPermitted && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn limits_are_enforced(target: Target) {
    let url = target.url();
    let alice = unique("alice");
    let a = target.online(&url, &alice);
    let send = |request: SendInvitation| block(a.client.send_invitation(request));
    let many: Vec<UserId> = (0..33).map(|i| unique(&format!("u{i}"))).collect();
    let too_many = send(SendInvitation::new(many, 30)).unwrap_err();
    assert_eq!(too_many.code, ErrorCode::TooManyInvitees);
    let mut big = SendInvitation::new(vec![unique("bob")], 30);
    big.extended_data = "x".repeat(8 * 1024 + 1).into();
    assert_eq!(send(big).unwrap_err().code, ErrorCode::PayloadTooLarge);
    let mut loud = SendInvitation::new(vec![unique("bob")], 30);
    loud.notification = Some(Notification {
        title: "t".repeat(257).into(),
        ..Notification::default()
    });
    assert_eq!(send(loud).unwrap_err().code, ErrorCode::PayloadTooLarge);
    let selfish = send(SendInvitation::new(vec![alice.clone()], 30)).unwrap_err();
    assert_eq!(selfish.code, ErrorCode::InvalidArgument);
    let forever = send(SendInvitation::new(vec![unique("bob")], 601)).unwrap_err();
    assert_eq!(forever.code, ErrorCode::InvalidArgument);
    // 32 distinct invitees (a repeat folded) is within the limit.
    let mut exactly: Vec<UserId> = (0..32).map(|i| unique(&format!("v{i}"))).collect();
    exactly.push(exactly[0].clone());
    let sent = send(SendInvitation::new(exactly, 30)).unwrap();
    assert_eq!(sent.error_invitees.len(), 32);
}

fn tokens_are_checked(target: Target) {
    let url = target.url_with_secret();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let attempt = |user: &UserId, token: String| {
        let peer = Peer::new(&url, user);
        block(peer.client.login(user.clone(), token)).map(|()| peer)
    };
    let code = |result: Result<Peer, beckon::Error>| result.err().unwrap().code;
    assert_eq!(
        code(attempt(&alice, "garbage".into())),
        ErrorCode::AuthFailed
    );
    assert_eq!(
        code(attempt(&alice, token(&bob, 300))),
        ErrorCode::AuthFailed
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = beckon::token::mint(SECRET.as_bytes(), &alice, now - 5);
    assert_eq!(code(attempt(&alice, expired)), ErrorCode::TokenExpired);
    let forged = beckon::token::mint(b"another-secret-entirely", &alice, now + 300);
    assert_eq!(code(attempt(&alice, forged)), ErrorCode::AuthFailed);
    let a = attempt(&alice, token(&alice, 300)).unwrap();
    let b = attempt(&bob, token(&bob, 300)).unwrap();
    a.invite(&[&bob], 30);
    b.ringing();
    let bad_renewal = block(a.client.renew_token(token(&bob, 300))).unwrap_err();
    assert_eq!(bad_renewal.code, ErrorCode::AuthFailed);
}

fn token_warning_and_renewal(target: Target) {
    let url = target.url_with_secret();
    let alice = unique("alice");
    let a = Peer::new(&url, &alice);
    // 31 s left: the warning, 30 s before expiry, comes about a second later.
    block(a.client.login(alice.clone(), token(&alice, 31))).unwrap();
    let left = a.expect("TOKEN_WILL_EXPIRE", |e| match e {
        Event::TokenWillExpire { seconds_left } => Some(*seconds_left),
        _ => None,
    });
    assert!((1..=30).contains(&left), "{left}");
    block(a.client.renew_token(token(&alice, 3600))).unwrap();
    let sent = a.invite(&[&unique("bob")], 30);
    assert_eq!(sent.error_invitees.len(), 1);
}

fn every_callback_once_when_freed_with_work_in_flight(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let _b = target.online(&url, &bob);
    let client = Client::new(ClientConfig::new(&url)).unwrap();
    block(client.login(alice.clone(), "t")).unwrap();
    let calls: Arc<Mutex<Vec<usize>>> = Arc::default();
    const OPS: usize = 300;
    for i in 0..OPS {
        let calls = calls.clone();
        let request = SendInvitation::new(vec![bob.clone()], 30);
        let done = Box::new(move |result: beckon::Result<_>| {
            if let Err(e) = &result {
                assert_eq!(e.code, ErrorCode::Shutdown, "{e}");
            }
            calls.lock().unwrap().push(i);
        });
        client.send_invitation_then(request, done).unwrap();
    }
    client.shutdown();
    let mut calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        OPS,
        "every callback ran by the time free returned"
    );
    calls.sort_unstable();
    calls.dedup();
    assert_eq!(calls.len(), OPS, "no callback ran twice");
}

fn many_threads_many_invitations(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = target.online(&url, &alice);
    let b = target.online(&url, &bob);
    let done = Arc::new(AtomicUsize::new(0));
    const THREADS: usize = 8;
    const EACH: usize = 25;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (a, bob, done) = (&a, &bob, done.clone());
            scope.spawn(move || {
                for _ in 0..EACH {
                    let sent = a.invite(&[bob], 30);
                    assert!(sent.error_invitees.is_empty());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), THREADS * EACH);
    // Every invitation rings exactly once on bob's device.
    let mut ids = std::collections::HashSet::new();
    while ids.len() < THREADS * EACH {
        assert!(ids.insert(b.ringing()), "an invitation rang twice");
    }
}

fn pool_mode_clients(target: Target) {
    let url = target.url();
    let mut config = ClientConfig::new(&url);
    config.dispatch = DispatchMode::Pool;
    let pairs: Vec<(Peer, Peer)> = (0..20)
        .map(|_| {
            let (alice, bob) = (unique("alice"), unique("bob"));
            let a = Peer::with_config(config.clone(), &alice);
            block(a.client.login(alice.clone(), "t")).unwrap();
            let b = Peer::with_config(config.clone(), &bob);
            block(b.client.login(bob.clone(), "t")).unwrap();
            (a, b)
        })
        .collect();
    for (a, b) in &pairs {
        let id = a.invite(&[&b.user], 30).invitation_id;
        assert_eq!(b.ringing(), id);
        block(b.client.accept_invitation(answer(&id, ""))).unwrap();
        a.expect("INVITATION_ACCEPTED", |e| {
            matches!(e, Event::Invitation(Push::InvitationAccepted { .. })).then_some(())
        });
    }
}
