//! Pool mode (`DispatchMode::Pool`): many clients share a few dispatcher
//! threads, and each client's callbacks still run one at a time, in order,
//! exactly once, never on the caller's thread; `shutdown` (free) keeps its
//! promises, from outside and from inside a callback.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use beckon::protocol::{Push, SendInvitation};
use beckon::{Client, ClientConfig, DispatchMode, ErrorCode, Event};

mod common;
use common::{answer, user};

const WAIT: Duration = Duration::from_secs(10);

fn pool_client(hub: &str) -> Client {
    let mut config = ClientConfig::new(format!("memory://{hub}"));
    config.dispatch = DispatchMode::Pool;
    Client::new(config).unwrap()
}

fn block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn a_hundred_pairs_share_a_few_threads() {
    const PAIRS: usize = 100;
    let hub = "pool-many";
    let mut pairs = Vec::new();
    let rung = Arc::new(AtomicUsize::new(0));
    for i in 0..PAIRS {
        let inviter = pool_client(hub);
        let invitee = pool_client(hub);
        let invitee = Arc::new(invitee);
        let (rung, weak) = (rung.clone(), Arc::downgrade(&invitee));
        invitee.set_event_handler(Some(Arc::new(move |event: &Event| {
            if let Event::Invitation(Push::InvitationReceived { invitation_id, .. }) = event {
                rung.fetch_add(1, Ordering::SeqCst);
                if let Some(invitee) = weak.upgrade() {
                    invitee
                        .accept_invitation_then(answer(invitation_id, ""), Box::new(|_| {}))
                        .unwrap();
                }
            }
        })));
        block(inviter.login(user(&format!("pool-a{i}")), "")).unwrap();
        block(invitee.login(user(&format!("pool-b{i}")), "")).unwrap();
        pairs.push((inviter, invitee));
    }
    let accepted = Arc::new(AtomicUsize::new(0));
    for (i, (inviter, _)) in pairs.iter().enumerate() {
        let accepted = accepted.clone();
        inviter.set_event_handler(Some(Arc::new(move |event: &Event| {
            if let Event::Invitation(Push::InvitationAccepted { .. }) = event {
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        })));
        let request = SendInvitation::new(vec![user(&format!("pool-b{i}"))], 30);
        inviter
            .send_invitation_then(request, Box::new(|r| assert!(r.is_ok())))
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while accepted.load(Ordering::SeqCst) < PAIRS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(rung.load(Ordering::SeqCst), PAIRS);
    assert_eq!(accepted.load(Ordering::SeqCst), PAIRS);
    let pool_threads = threads_named("beckon-pool");
    assert!(
        (1..=16).contains(&pool_threads),
        "{pool_threads} pool threads for {} clients",
        2 * PAIRS
    );
    assert_eq!(
        threads_named("beckon-dispatch"),
        0,
        "no per-client threads in pool mode"
    );
}

#[test]
fn callbacks_of_one_client_are_serial_in_order_and_off_the_callers_thread() {
    let hub = "pool-order";
    let alice = pool_client(hub);
    block(alice.login(user("pool-order-a"), "")).unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let order = Arc::new(Mutex::new(Vec::new()));
    let caller = std::thread::current().id();
    const OPS: usize = 500;
    for i in 0..OPS {
        let (inside, order) = (inside.clone(), order.clone());
        let request = SendInvitation::new(vec![user("pool-order-b")], 30);
        alice
            .send_invitation_then(
                request,
                Box::new(move |result| {
                    assert!(result.is_ok());
                    assert_ne!(std::thread::current().id(), caller);
                    assert!(
                        !inside.swap(true, Ordering::SeqCst),
                        "two callbacks at once"
                    );
                    order.lock().unwrap().push(i);
                    std::thread::yield_now();
                    inside.store(false, Ordering::SeqCst);
                }),
            )
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while order.lock().unwrap().len() < OPS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order, (0..OPS).collect::<Vec<_>>());
}

#[test]
fn free_with_work_in_flight_runs_every_callback_once() {
    for round in 0..20 {
        let hub = format!("pool-free-{round}");
        let client = pool_client(&hub);
        block(client.login(user("pool-free-a"), "")).unwrap();
        // Hold the pool's attention on a slow first callback, so that most
        // callbacks are still queued when the client is freed.
        let counts = Arc::new(Mutex::new(vec![0u32; 1000]));
        let shut = Arc::new(AtomicUsize::new(0));
        for i in 0..1000 {
            let (counts, shut) = (counts.clone(), shut.clone());
            let request = SendInvitation::new(vec![user("pool-free-b")], 30);
            client
                .send_invitation_then(
                    request,
                    Box::new(move |result| {
                        if i == 0 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        if let Err(e) = result {
                            assert_eq!(e.code, ErrorCode::Shutdown);
                            shut.fetch_add(1, Ordering::SeqCst);
                        }
                        counts.lock().unwrap()[i] += 1;
                    }),
                )
                .unwrap();
        }
        client.shutdown();
        let counts = counts.lock().unwrap().clone();
        assert!(
            counts.iter().all(|c| *c == 1),
            "round {round}: {:?}",
            &counts[..10]
        );
        drop(client);
    }
}

#[test]
fn free_from_inside_its_own_callback() {
    let client = Arc::new(pool_client("pool-self-free"));
    block(client.login(user("pool-self-a"), "")).unwrap();
    let (tx, rx) = mpsc::channel();
    // The first callback waits until all 50 operations are started.
    let (go, wait_go) = mpsc::channel::<()>();
    let wait_go = Arc::new(Mutex::new(wait_go));
    let runs = Arc::new(AtomicUsize::new(0));
    for i in 0..50 {
        let (me, tx, runs, wait_go) = (client.clone(), tx.clone(), runs.clone(), wait_go.clone());
        let request = SendInvitation::new(vec![user("pool-self-b")], 30);
        client
            .send_invitation_then(
                request,
                Box::new(move |result| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    if i == 0 {
                        assert!(result.is_ok());
                        wait_go.lock().unwrap().recv_timeout(WAIT).unwrap();
                        me.shutdown(); // nested: the rest run now, with SHUTDOWN
                        tx.send(()).unwrap();
                    }
                }),
            )
            .unwrap();
    }
    go.send(()).unwrap();
    rx.recv_timeout(WAIT).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 50);
    client.shutdown();
    assert_eq!(runs.load(Ordering::SeqCst), 50);
}
