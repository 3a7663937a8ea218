//! Faults between clients and a real `beckon-server`: the server killed with -9
//! and started again, connections cut under the client, a peer gone silent
//! (only heartbeats can tell), a graceful shutdown. Clients must reconnect on
//! their own, report the state changes in order, lose no event, show none twice,
//! and complete every pending operation exactly once.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use beckon::protocol::{
    Answer, ConnectionReason, ConnectionState, InvitationId, InviteeState, Push, SendInvitation,
};
use beckon::{ClientConfig, ErrorCode, Event};

mod common;
use common::{block, unique, Peer, ServerProcess, WAIT};

/// A TCP proxy on 127.0.0.1 between clients and the server that can cut every
/// connection (as a network failure does), freeze them (no byte passes, no
/// socket closes: a dead peer only heartbeats reveal), or swallow what clients
/// write (bytes the client wrote that never reach the server).
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    swallow: Arc<Swallow>,
}

/// Client-to-server bytes dropped from the moment the server sends a chosen
/// pattern on to a client.
#[derive(Default)]
struct Swallow {
    /// Armed: once server bytes contain it, swallowing starts (once).
    after: Mutex<Option<&'static [u8]>>,
    on: AtomicBool,
    dropped: AtomicUsize,
}

impl Proxy {
    fn start(server_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let swallow: Arc<Swallow> = Arc::default();
        let (frozen2, open2, swallow2) = (frozen.clone(), open.clone(), swallow.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                {
                    let mut open = open2.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    frozen2.clone(),
                    Way::Up(swallow2.clone()),
                );
                pump(server, client, frozen2.clone(), Way::Down(swallow2.clone()));
            }
        });
        Proxy {
            port,
            frozen,
            open,
            swallow,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy (new ones still pass).
    fn cut(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// From the first server bytes containing `pattern` on, what clients write
    /// is dropped (the server never reads it), until `cut`.
    fn swallow_after(&self, pattern: &'static [u8]) {
        *self.swallow.after.lock().unwrap() = Some(pattern);
    }

    /// Waits (at most WAIT) until some client bytes were swallowed, then a
    /// little more so the whole frame is.
    fn wait_swallowed(&self) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.swallow.dropped.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was swallowed within {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(200));
    }

    /// Stops swallowing and closes every connection through the proxy.
    fn cut_swallowing(&self) {
        *self.swallow.after.lock().unwrap() = None;
        self.swallow.on.store(false, Ordering::SeqCst);
        self.cut();
    }
}

/// Which way a pump copies, with the proxy's swallowing.
enum Way {
    /// Client to server: dropped while swallowing.
    Up(Arc<Swallow>),
    /// Server to client: starts the swallowing when armed.
    Down(Arc<Swallow>),
}

/// Copies `from` to `to` until either closes; while frozen, copies nothing.
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>, way: Way) {
    thread::spawn(move || {
        from.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            if frozen.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    match &way {
                        Way::Up(swallow) if swallow.on.load(Ordering::SeqCst) => {
                            swallow.dropped.fetch_add(n, Ordering::SeqCst);
                            continue;
                        }
                        Way::Up(_) => {}
                        Way::Down(swallow) => {
                            let mut after = swallow.after.lock().unwrap();
                            if after.is_some_and(|p| buffer[..n].windows(p.len()).any(|w| w == p)) {
                                *after = None;
                                swallow.on.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

fn answer(id: &InvitationId) -> Answer {
    Answer {
        invitation_id: id.clone(),
        extended_data: "".into(),
    }
}

fn connection_states(peer: &Peer) -> Vec<(ConnectionState, ConnectionReason)> {
    peer.seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionStateChanged { state, reason } => Some((*state, *reason)),
            _ => None,
        })
        .collect()
}

fn wait_for_state(peer: &Peer, wanted: ConnectionState) -> ConnectionReason {
    peer.expect(&format!("{wanted:?}"), |e| match e {
        Event::ConnectionStateChanged { state, reason } if *state == wanted => Some(*reason),
        _ => None,
    })
}

fn received(e: &Event) -> bool {
    matches!(e, Event::Invitation(Push::InvitationReceived { .. }))
}

#[test]
fn a_cut_connection_resumes_and_misses_nothing() {
    let server = ServerProcess::start(&["--grace-secs", "30"]);
    let proxy = Proxy::start(server.port);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online(&proxy.url(), &bob);
    let first = a.invite(&[&bob], 60).invitation_id;
    assert_eq!(b.ringing(), first);

    proxy.cut();
    assert_eq!(
        wait_for_state(&b, ConnectionState::Reconnecting),
        ConnectionReason::Network
    );
    // While bob is away: a second invitation, and an answer of his in flight.
    let second = a.invite(&[&bob], 60).invitation_id;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let record = accepted.clone();
    b.client
        .accept_invitation_then(
            answer(&first),
            Box::new(move |r| record.lock().unwrap().push(r)),
        )
        .unwrap();

    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Network
    );
    assert_eq!(
        b.ringing(),
        second,
        "the invitation sent while away arrives"
    );
    a.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted { invitation_id, .. }) => {
            (invitation_id == &first).then_some(())
        }
        _ => None,
    });
    thread::sleep(Duration::from_millis(300));
    let results = accepted.lock().unwrap().clone();
    assert_eq!(
        results.len(),
        1,
        "the accept completed exactly once: {results:?}"
    );
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(b.count(received), 2, "each invitation shown once");
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains(r#"beckon_logins_total{result="resumed"} 1"#),
        "the session was resumed, not started afresh:\n{metrics}"
    );
    assert_eq!(
        connection_states(&b),
        vec![
            (ConnectionState::Connecting, ConnectionReason::Login),
            (ConnectionState::Connected, ConnectionReason::Login),
            (ConnectionState::Reconnecting, ConnectionReason::Network),
            (ConnectionState::Connected, ConnectionReason::Network),
        ]
    );
}

/// The login's sync is a notice (no result, no seq): one written just before
/// the connection drops never reaches the server, and the resumed session's
/// welcome says so (`synced: false`). The client sends it again, so the
/// device still rings.
#[test]
fn a_sync_lost_with_the_connection_is_sent_again_on_resume() {
    let server = ServerProcess::start(&["--grace-secs", "30"]);
    let proxy = Proxy::start(server.port);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    // Everything bob writes after the welcome (his sync) is lost.
    proxy.swallow_after(b"\"welcome\"");
    let b = Peer::online(&proxy.url(), &bob);
    proxy.wait_swallowed();
    proxy.cut_swallowing();
    assert_eq!(
        wait_for_state(&b, ConnectionState::Reconnecting),
        ConnectionReason::Network
    );
    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Network,
        "the session was resumed"
    );
    let sent = a.invite(&[&bob], 60);
    assert!(sent.error_invitees.is_empty(), "{:?}", sent.error_invitees);
    assert_eq!(b.ringing(), sent.invitation_id, "the device rings");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(b.count(received), 1, "rung once");
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains(r#"beckon_logins_total{result="resumed"} 1"#),
        "the session was resumed, not started afresh:\n{metrics}"
    );
}

/// A receipt (rule 4) is a notice too: one lost with the connection is sent
/// again on the resumed session, so the inviter still sees RECEIVED, once.
#[test]
fn a_receipt_lost_with_the_connection_is_sent_again_on_resume() {
    let server = ServerProcess::start(&["--grace-secs", "30"]);
    let proxy = Proxy::start(server.port);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online_synced(&proxy.url(), &bob);
    // Everything bob writes once he is rung (his receipt) is lost.
    proxy.swallow_after(b"\"invitation_received\"");
    let id = a.invite(&[&bob], 60).invitation_id;
    assert_eq!(b.ringing(), id);
    proxy.wait_swallowed();
    proxy.cut_swallowing();
    assert_eq!(
        wait_for_state(&b, ConnectionState::Reconnecting),
        ConnectionReason::Network
    );
    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Network,
        "the session was resumed"
    );
    let bob_received = |e: &Event| {
        matches!(e, Event::Invitation(Push::UserStateChanged { invitation_id, user_id, state, .. })
            if invitation_id == &id && user_id == &bob && *state == InviteeState::Received)
    };
    a.expect("bob RECEIVED", |e| bob_received(e).then_some(()));
    // Bob's own device hears it too (that is what confirms his receipt).
    b.expect("bob's own RECEIVED", |e| bob_received(e).then_some(()));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(a.count(bob_received), 1, "RECEIVED shown once");
    assert_eq!(b.count(received), 1, "rung once");
}

#[test]
fn a_killed_server_comes_back_and_every_callback_runs_once() {
    let mut server = ServerProcess::start(&[]);
    let url = server.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut config = ClientConfig::new(&url);
    config.request_timeout = Duration::from_secs(3);
    let a = Peer::with_config(config.clone(), &alice);
    block(a.client.login(alice.clone(), "t")).unwrap();
    let b = Peer::with_config(config, &bob);
    block(b.client.login(bob.clone(), "t")).unwrap();
    let ringing = a.invite(&[&bob], 60).invitation_id;
    assert_eq!(b.ringing(), ringing);

    server.kill();
    wait_for_state(&a, ConnectionState::Reconnecting);
    wait_for_state(&b, ConnectionState::Reconnecting);
    // Operations started while the server is down: each completes once, with
    // the server's answer after the restart or REQUEST_TIMEOUT.
    let results = Arc::new(Mutex::new(Vec::new()));
    const SENDS: usize = 20;
    for i in 0..SENDS {
        let record = results.clone();
        a.client
            .send_invitation_then(
                SendInvitation::new(vec![bob.clone()], 60),
                Box::new(move |r| record.lock().unwrap().push((i, r.map(|o| o.invitation_id)))),
            )
            .unwrap();
    }
    server.restart();
    // A new server has no session to resume: CONNECTED says LOGIN (logged in
    // afresh), not NETWORK (resumed).
    assert_eq!(
        wait_for_state(&a, ConnectionState::Connected),
        ConnectionReason::Login
    );
    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Login
    );
    let deadline = std::time::Instant::now() + WAIT;
    while results.lock().unwrap().len() < SENDS && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    let results = results.lock().unwrap().clone();
    assert_eq!(results.len(), SENDS, "every callback ran");
    let mut indices: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len(), SENDS, "no callback ran twice");
    for (_, result) in &results {
        match result {
            Ok(_) => {}
            Err(e) => assert_eq!(e.code, ErrorCode::RequestTimeout, "{e}"),
        }
    }
    let created_count = results.iter().filter(|(_, r)| r.is_ok()).count();
    eprintln!(
        "sends during the outage: {created_count} answered after the restart, the rest timed out"
    );
    // Each invitation the new server created rings bob exactly once.
    let created: Vec<InvitationId> = results.iter().filter_map(|(_, r)| r.clone().ok()).collect();
    for _ in &created {
        let id = b.ringing();
        assert!(created.contains(&id));
    }
    // And new work goes through as before.
    let fresh = a.invite(&[&bob], 60).invitation_id;
    assert_eq!(b.ringing(), fresh);
    block(b.client.accept_invitation(answer(&fresh))).unwrap();
    for peer in [&a, &b] {
        let states = connection_states(peer);
        assert_eq!(
            states,
            vec![
                (ConnectionState::Connecting, ConnectionReason::Login),
                (ConnectionState::Connected, ConnectionReason::Login),
                (ConnectionState::Reconnecting, ConnectionReason::Network),
                (ConnectionState::Connected, ConnectionReason::Login),
            ]
        );
    }
}

#[test]
fn a_silent_connection_is_noticed_by_heartbeats() {
    // Heartbeats every second: the server drops the silent connection after
    // about 3 s, the session after one more (grace), and rule 7 cancels what
    // the silent user sent.
    let server = ServerProcess::start(&["--heartbeat-secs", "1", "--grace-secs", "1"]);
    let proxy = Proxy::start(server.port);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online(&proxy.url(), &bob);
    let id = b.invite(&[&alice], 60).invitation_id;
    assert_eq!(a.ringing(), id);

    proxy.freeze(true);
    let cancelled = a.expect("INVITATION_CANCELLED (rule 7)", |e| match e {
        Event::Invitation(Push::InvitationCancelled { invitation_id, .. }) => {
            Some(invitation_id.clone())
        }
        _ => None,
    });
    assert_eq!(cancelled, id);
    // The client noticed the silence too.
    assert_eq!(
        wait_for_state(&b, ConnectionState::Reconnecting),
        ConnectionReason::Network
    );
    proxy.freeze(false);
    proxy.cut();
    // Its session is gone, so it logs in afresh (CONNECTED, LOGIN) and works
    // again.
    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Login
    );
    let again = b.invite(&[&alice], 60).invitation_id;
    assert_eq!(a.ringing(), again);
}

#[test]
fn a_graceful_shutdown_tells_clients_and_they_come_back() {
    let mut server = ServerProcess::start(&[]);
    let bob = unique("bob");
    let b = Peer::online(&server.url(), &bob);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        wait_for_state(&b, ConnectionState::Reconnecting),
        ConnectionReason::ServerShutdown
    );
    server.restart();
    assert_eq!(
        wait_for_state(&b, ConnectionState::Connected),
        ConnectionReason::Login,
        "a new server: logged in afresh"
    );
    let a = Peer::online(&server.url(), &unique("alice"));
    let id = a.invite(&[&bob], 30).invitation_id;
    assert_eq!(b.ringing(), id);
}

#[test]
fn free_during_a_login_that_hangs_runs_its_callback_once() {
    // A peer that accepts TCP and never answers the WebSocket handshake.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    thread::spawn(move || {
        for stream in silent.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}"));
    config.request_timeout = Duration::from_millis(500);
    let client = beckon::Client::new(config).unwrap();
    let results = Arc::new(Mutex::new(Vec::new()));
    let record = results.clone();
    client
        .login_then(
            unique("alice"),
            "t".into(),
            Box::new(move |r| record.lock().unwrap().push(r)),
        )
        .unwrap();
    client.shutdown();
    {
        let results = results.lock().unwrap();
        assert_eq!(
            results.len(),
            1,
            "the login's callback ran by the time free returned"
        );
        assert_eq!(results[0].as_ref().unwrap_err().code, ErrorCode::Shutdown);
    }
    // The transport gives up later (its timeout); the callback must not run again.
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(results.lock().unwrap().len(), 1);

    // Without free, the same login fails with REQUEST_TIMEOUT, once.
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}"));
    config.request_timeout = Duration::from_millis(300);
    let client = beckon::Client::new(config).unwrap();
    let error = block(client.login(unique("bob"), "t")).unwrap_err();
    assert_eq!(error.code, ErrorCode::RequestTimeout, "{error}");
}

#[test]
fn an_inviter_away_past_the_grace_period_is_told_what_it_missed_once() {
    // Alice's connection dies and stays dead past the grace period: her
    // session is gone, with the answers queued in it. When she comes back on a
    // fresh session she names what she knew, and the server's snapshot tells
    // her client the answers she missed, each once.
    let server = ServerProcess::start(&["--grace-secs", "1"]);
    let proxy = Proxy::start(server.port);
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let a = Peer::online(&proxy.url(), &alice);
    let b = Peer::online(&server.url(), &bob);
    let c = Peer::online(&server.url(), &carol);
    let first = a.invite(&[&bob, &carol], 60).invitation_id;
    assert_eq!(b.ringing(), first);
    assert_eq!(c.ringing(), first);

    // Away: no byte passes and every connection is closed, so her reconnects
    // hang until the proxy thaws.
    proxy.freeze(true);
    proxy.cut();
    assert_eq!(
        wait_for_state(&a, ConnectionState::Reconnecting),
        ConnectionReason::Network
    );
    block(b.client.accept_invitation(answer(&first))).unwrap();
    block(c.client.refuse_invitation(answer(&first))).unwrap();
    // The grace period passes: the server ends her session.
    thread::sleep(Duration::from_millis(2500));
    proxy.freeze(false);
    proxy.cut();

    assert_eq!(
        wait_for_state(&a, ConnectionState::Connected),
        ConnectionReason::Login,
        "a fresh session, not a resumed one"
    );
    a.expect("INVITATION_ACCEPTED by bob", |e| match e {
        Event::Invitation(Push::InvitationAccepted {
            invitation_id,
            invitee,
            ..
        }) => (invitation_id == &first && invitee == &bob).then_some(()),
        _ => None,
    });
    a.expect("INVITATION_REFUSED by carol", |e| match e {
        Event::Invitation(Push::InvitationRefused {
            invitation_id,
            invitee,
            ..
        }) => (invitation_id == &first && invitee == &carol).then_some(()),
        _ => None,
    });
    thread::sleep(Duration::from_millis(300));
    let accepted = a.count(|e| matches!(e, Event::Invitation(Push::InvitationAccepted { .. })));
    let refused = a.count(|e| matches!(e, Event::Invitation(Push::InvitationRefused { .. })));
    assert_eq!((accepted, refused), (1, 1), "each told once");
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        !metrics.contains(r#"beckon_logins_total{result="resumed"}"#),
        "the session was resumed:\n{metrics}"
    );
}
