//! Durability at scale against a real `beckon-server` on its SQLite store:
//! thousands of invitations ringing when the server is killed with -9 and
//! started again on the same data directory, and a kill landing in the middle
//! of a burst of sends. Nothing acknowledged may be lost, nothing may exist
//! twice, every client sees each event once, and deadlines that passed while
//! the server was down fire TIMEOUT when it comes back.
//!
//! The two tests run one after the other (they would only slow each other
//! down on a small machine).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use beckon::protocol::{
    Answer, CancelInvitation, ConnectionReason, ConnectionState, InvitationId, InviteeState,
    SendInvitation, UserId,
};
use beckon::{CallOptions, ErrorCode};

mod common;
use common::members::{count, Member};
use common::slots::{wait_for, Slots};
use common::{rand_suffix, unique, ServerProcess};

/// How long a request may wait for its answer where the test wants every one
/// answered, however slow the machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Keeps the tests of this file from running at the same time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- a data directory, and what `store check` says of it ------------------------

/// A data directory of the test's own (given to the server with `--data-dir`,
/// so the test can copy and check it); removed when dropped.
struct DataDir {
    path: PathBuf,
}

/// What `beckon-server store check` reported.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    open: u64,
    ended: u64,
}

impl DataDir {
    fn new() -> DataDir {
        let path = std::env::temp_dir().join(format!("beckon-durability-{}", rand_suffix()));
        std::fs::create_dir_all(&path).unwrap();
        DataDir { path }
    }

    fn arg(&self) -> String {
        self.path.display().to_string()
    }

    /// Takes a consistent copy of the store while the server runs on it
    /// (`store backup`) and checks the copy (`store check`): healthy, and how
    /// many invitations it holds.
    fn check_copy(&self) -> Stored {
        let copy = self.path.with_extension(format!("copy-{}", rand_suffix()));
        std::fs::create_dir_all(&copy).unwrap();
        let backup = beckon_server(&[
            "store",
            "backup",
            "--data-dir",
            &self.arg(),
            "--to",
            &copy.join("beckon.db").display().to_string(),
        ]);
        assert!(backup.0, "store backup failed: {}", backup.1);
        let (healthy, report) = beckon_server(&["store", "check", "--data-dir", &path_arg(&copy)]);
        let _ = std::fs::remove_dir_all(&copy);
        assert!(healthy, "store check of the copy: {report}");
        assert!(report.contains("healthy"), "{report}");
        let line = report
            .lines()
            .find_map(|l| l.strip_prefix("invitations: "))
            .unwrap_or_else(|| panic!("no invitation count in: {report}"));
        // "N open, M ended (in retention)"
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 2, "{line}");
        Stored {
            open: numbers[0],
            ended: numbers[1],
        }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `beckon-server ARGS`; (succeeded, stdout and stderr).
fn beckon_server(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_beckon-server"))
        .args(args)
        .output()
        .expect("run beckon-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// One value of the server's /metrics (the line `NAME VALUE`); 0 if absent.
fn metric(server: &ServerProcess, name: &str) -> f64 {
    let (status, body) = server.admin_get("/metrics");
    assert!(status.contains("200"), "{status}");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// Makes a client for each user and logs them all in at once.
fn log_in(url: &str, users: &[UserId], request_timeout: Duration) -> Vec<Member> {
    let members: Vec<Member> = users
        .iter()
        .map(|u| Member::new(url, u, request_timeout))
        .collect();
    let done = Slots::new(members.len());
    for (i, member) in members.iter().enumerate() {
        let set = done.setter(i);
        member
            .client
            .login_then(member.user.clone(), "dev-token".into(), Box::new(set))
            .unwrap();
    }
    done.wait_all("logins", Duration::from_secs(30));
    for result in done.take() {
        result.unwrap();
    }
    members
}

fn answer(id: &InvitationId) -> Answer {
    Answer {
        invitation_id: id.clone(),
        extended_data: "".into(),
    }
}

fn users(prefix: &str, n: usize) -> Vec<UserId> {
    (0..n).map(|i| unique(&format!("{prefix}{i}"))).collect()
}

fn all_came_back(members: &[&Member]) -> bool {
    members.iter().all(|m| m.told().came_back())
}

// ---- 1: ten thousand invitations ringing across a kill -9 -------------------------

const INVITERS: usize = 20;
const INVITEES: usize = 200;
const INVITATIONS: usize = 10_000;
/// The last ones sent: their deadline passes while the server is down.
const SHORT: usize = 500;
const SHORT_TIMEOUT_SECS: u64 = 5;
const LONG_TIMEOUT_SECS: u32 = 300;

/// The limits a test server gets: no per-user quota or rate limit in the way.
const LOAD_FLAGS: [&str; 8] = [
    "--max-open-invitations",
    "100000",
    "--messages-per-sec",
    "1000000",
    "--messages-burst",
    "1000000",
    "--grace-secs",
    "60",
];

/// Invitation `k`: who sends it, who it rings, whether it is short.
fn plan(k: usize) -> (usize, usize, bool) {
    (k % INVITERS, k % INVITEES, k >= INVITATIONS - SHORT)
}

/// After the restart the invitee of a long invitation accepts it or refuses
/// it (a mix).
fn accepts(k: usize) -> bool {
    (k / INVITEES) % 2 == 0
}

/// Sends invitations `range` (each per `plan`) and waits for every result.
fn send_range(
    inviters: &[Member],
    invitees: &[Member],
    range: std::ops::Range<usize>,
    timeout_secs: u32,
) -> Vec<InvitationId> {
    let start = range.start;
    let results = Slots::new(range.len());
    for k in range.clone() {
        let (from, to, _) = plan(k);
        let request = SendInvitation::new(vec![invitees[to].user.clone()], timeout_secs);
        let set = results.setter(k - start);
        inviters[from]
            .client
            .send_invitation_then(request, Box::new(set))
            .unwrap();
    }
    results.wait_all("send results", Duration::from_secs(90));
    results
        .take()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let outcome = r.unwrap_or_else(|e| panic!("send {}: {e}", start + i));
            assert!(outcome.error_invitees.is_empty(), "{outcome:?}");
            outcome.invitation_id
        })
        .collect()
}

/// Waits until every invitation of `range` rang its invitee and its inviter
/// heard of the receipt (so the receipt is durable: nothing leaves the server
/// before the change it tells of is committed).
fn wait_rung(inviters: &[Member], invitees: &[Member], ids: &[InvitationId], first: usize) {
    wait_for(
        "every invitation rang its invitee",
        Duration::from_secs(90),
        || {
            ids.iter().enumerate().all(|(i, id)| {
                let (_, to, _) = plan(first + i);
                invitees[to].told().received.contains_key(id)
            })
        },
    );
    wait_for(
        "every inviter heard of every receipt",
        Duration::from_secs(90),
        || {
            ids.iter().enumerate().all(|(i, id)| {
                let (from, _, _) = plan(first + i);
                inviters[from]
                    .told()
                    .states
                    .get(id)
                    .is_some_and(|s| s.contains(&InviteeState::Received))
            })
        },
    );
}

/// A server for load on its own data directory.
fn start_on(data: &DataDir) -> ServerProcess {
    let data_arg = data.arg();
    let mut flags: Vec<&str> = LOAD_FLAGS.to_vec();
    flags.extend(["--data-dir", &data_arg]);
    ServerProcess::start(&flags)
}

#[test]
fn at_scale_everything_ringing_rings_again_once() {
    let _serial = serial();
    let started = Instant::now();
    let data = DataDir::new();
    let mut server = start_on(&data);
    let url = server.url();
    // Long request timeouts: no request is lost to a client-side timeout.
    let inviters = log_in(&url, &users("inviter", INVITERS), PATIENCE);
    let invitees = log_in(&url, &users("invitee", INVITEES), PATIENCE);
    eprintln!(
        "{} clients logged in: {:?}",
        INVITERS + INVITEES,
        started.elapsed()
    );

    // The long ones first, then the short ones, whose deadline must pass
    // while the server is down.
    let long = INVITATIONS - SHORT;
    let mut ids = send_range(&inviters, &invitees, 0..long, LONG_TIMEOUT_SECS);
    wait_rung(&inviters, &invitees, &ids, 0);
    eprintln!(
        "{long} long invitations sent and rung: {:?}",
        started.elapsed()
    );
    let short_sent = Instant::now();
    let short_ids = send_range(
        &inviters,
        &invitees,
        long..INVITATIONS,
        SHORT_TIMEOUT_SECS as u32,
    );
    let short_answered = Instant::now();
    wait_rung(&inviters, &invitees, &short_ids, long);
    ids.extend(short_ids);
    let distinct: HashSet<&InvitationId> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        INVITATIONS,
        "every send made its own invitation"
    );
    assert_eq!(
        data.check_copy(),
        Stored {
            open: INVITATIONS as u64,
            ended: 0
        },
        "the store holds every invitation, once"
    );

    server.kill();
    // Without this the short deadlines passed while the server was up, and
    // the test would not be about a restart.
    let up_for = short_sent.elapsed();
    assert!(
        up_for < Duration::from_secs(SHORT_TIMEOUT_SECS),
        "the kill came {up_for:?} after the short sends: this machine is too slow for \
         SHORT_TIMEOUT_SECS ({SHORT_TIMEOUT_SECS} s)"
    );
    eprintln!(
        "killed {up_for:?} after the short sends began, {:?} in",
        started.elapsed()
    );
    // Down until every short deadline has passed (each is at most
    // SHORT_TIMEOUT_SECS after its answer came).
    let all_passed =
        short_answered + Duration::from_secs(SHORT_TIMEOUT_SECS) + Duration::from_millis(500);
    thread::sleep(all_passed.saturating_duration_since(Instant::now()));
    // What the clients were told while the server was down was told by the
    // old server: no timeout was pushed before the kill.
    for member in &invitees {
        let told = member.told();
        assert!(
            told.timed_out.is_empty(),
            "{}: a timeout before the kill",
            member.user
        );
    }
    server.restart();
    let restarted = Instant::now();

    let everyone: Vec<&Member> = inviters.iter().chain(&invitees).collect();
    wait_for(
        "every client logged in afresh on the new server",
        Duration::from_secs(40),
        || all_came_back(&everyone),
    );
    eprintln!(
        "every client back {:?} after the restart",
        restarted.elapsed()
    );

    // The new server restored the long invitations (open) and timed out the
    // short ones at start; the metric counts every invitation restored,
    // those that timed out at start included.
    assert_eq!(
        metric(&server, "beckon_store_recovered_invitations"),
        INVITATIONS as f64
    );
    // Every long invitation rings its invitee again, once (the client hides
    // the repeat, rule 9): one push per open invitation and nothing else (no
    // receipt changes a state again, the short ones ring no more).
    let expected_rings = (INVITATIONS - SHORT) as f64;
    wait_for(
        "every open invitation rang again",
        Duration::from_secs(40),
        || metric(&server, "beckon_pushes_total") >= expected_rings,
    );
    // Both sides learn of the timeouts, from the snapshot the client asks for
    // when it logs in afresh.
    wait_for(
        "the short invitations' timeouts reached both sides",
        Duration::from_secs(30),
        || {
            ids[long..].iter().enumerate().all(|(i, id)| {
                let (from, to, _) = plan(long + i);
                invitees[to].told().timed_out.contains_key(id)
                    && inviters[from].told().response_timeout.contains_key(id)
            })
        },
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        metric(&server, "beckon_pushes_total"),
        expected_rings,
        "pushes after the restart: one ring per open invitation"
    );

    // A device of each invitee that logs in now is rung for exactly the
    // invitations still open for it, each once.
    let mut open_for: Vec<HashSet<InvitationId>> = vec![HashSet::new(); INVITEES];
    for (k, id) in ids.iter().enumerate().take(long) {
        open_for[plan(k).1].insert(id.clone());
    }
    let invitee_users: Vec<UserId> = invitees.iter().map(|m| m.user.clone()).collect();
    let second = log_in(&url, &invitee_users, PATIENCE);
    wait_for(
        "second devices rung for what is open",
        Duration::from_secs(40),
        || {
            second
                .iter()
                .enumerate()
                .all(|(j, m)| m.told().received.len() >= open_for[j].len())
        },
    );
    thread::sleep(Duration::from_millis(200));
    for (j, member) in second.iter().enumerate() {
        let told = member.told();
        let rung: HashSet<InvitationId> = told.received.keys().cloned().collect();
        assert_eq!(rung, open_for[j], "{}: second device rung", member.user);
        assert!(told.received.values().all(|&n| n == 1), "{}", member.user);
    }
    drop(second);
    eprintln!(
        "second devices checked {:?} after the restart",
        restarted.elapsed()
    );

    // Answers after the restart: each reaches its inviter once; a late
    // answer to a short one is refused, the invitation is closed.
    let answered = Slots::new(INVITATIONS);
    for (k, id) in ids.iter().enumerate() {
        let (_, to, short) = plan(k);
        let set = answered.setter(k);
        let client = &invitees[to].client;
        if short || accepts(k) {
            client.accept_invitation_then(answer(id), Box::new(set))
        } else {
            client.refuse_invitation_then(answer(id), Box::new(set))
        }
        .unwrap();
    }
    answered.wait_all("answers", Duration::from_secs(90));
    for (k, result) in answered.take().into_iter().enumerate() {
        if plan(k).2 {
            let error = result.expect_err("a late answer to a timed-out invitation");
            assert_eq!(error.code, ErrorCode::InvitationClosed, "{error}");
        } else {
            result.unwrap_or_else(|e| panic!("answer {k}: {e}"));
        }
    }
    wait_for(
        "every answer reached its inviter",
        Duration::from_secs(60),
        || {
            ids[..long].iter().enumerate().all(|(k, id)| {
                let told = inviters[plan(k).0].told();
                count(&told.accepted, id) + count(&told.refused, id) >= 1
            })
        },
    );
    eprintln!(
        "answers delivered {:?} after the restart",
        restarted.elapsed()
    );
    thread::sleep(Duration::from_millis(300));

    // Each event once, on each side, across the restart.
    for (k, id) in ids.iter().enumerate() {
        let (from, to, short) = plan(k);
        let inviter = inviters[from].told();
        let invitee = invitees[to].told();
        let who = format!("invitation {k} ({id})");
        assert_eq!(count(&invitee.received, id), 1, "{who}: rule 9");
        let (accepted, refused) = (count(&inviter.accepted, id), count(&inviter.refused, id));
        let final_state = if short {
            assert_eq!((accepted, refused), (0, 0), "{who}");
            assert_eq!(count(&inviter.response_timeout, id), 1, "{who}");
            assert_eq!(count(&invitee.timed_out, id), 1, "{who}");
            InviteeState::Timeout
        } else if accepts(k) {
            assert_eq!((accepted, refused), (1, 0), "{who}");
            InviteeState::Accepted
        } else {
            assert_eq!((accepted, refused), (0, 1), "{who}");
            InviteeState::Rejected
        };
        if !short {
            assert_eq!(count(&inviter.response_timeout, id), 0, "{who}");
            assert_eq!(count(&invitee.timed_out, id), 0, "{who}");
        }
        assert_eq!(count(&invitee.cancelled, id), 0, "{who}");
        let expected = vec![InviteeState::Received, final_state];
        assert_eq!(inviter.states.get(id), Some(&expected), "{who}: inviter");
        assert_eq!(invitee.states.get(id), Some(&expected), "{who}: invitee");
    }
    for member in &everyone {
        let told = member.told();
        // Only invitations of this test: nothing unexpected showed up.
        let ours = |id: &InvitationId| distinct.contains(id);
        assert!(told.received.keys().all(ours), "{}", member.user);
        assert!(told.states.keys().all(ours), "{}", member.user);
        assert_eq!(
            told.changes(),
            vec![
                (ConnectionState::Connecting, ConnectionReason::Login),
                (ConnectionState::Connected, ConnectionReason::Login),
                (ConnectionState::Reconnecting, ConnectionReason::Network),
                (ConnectionState::Connected, ConnectionReason::Login),
            ],
            "{}",
            member.user
        );
    }
    // Everything ended, nothing extra exists.
    assert_eq!(
        data.check_copy(),
        Stored {
            open: 0,
            ended: INVITATIONS as u64
        }
    );
    eprintln!("done in {:?}", started.elapsed());
}

// ---- 2: a kill in the middle of a burst of sends ---------------------------------

/// Invitees of the burst, and sends each inviter keeps in flight.
const BURST_INVITEES: usize = 6;
const WINDOW: usize = 24;

/// One send of the burst: its invitee, and its idempotency key if the test
/// gave it one.
#[derive(Clone)]
struct Sent {
    invitee: usize,
    key: Option<String>,
}

/// A send's result, and whether its callback ran before the kill.
type Outcome = (Result<InvitationId, ErrorCode>, bool);

struct Burst {
    killed: AtomicBool,
    stop: AtomicBool,
    in_flight: Vec<AtomicUsize>,
}

/// Stops the senders when dropped (also when the test fails).
struct StopOnDrop(Arc<Burst>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// Fires sends from `inviter` (number `index`) until told to stop, keeping
/// `WINDOW` in flight; with `keyed`, each with an idempotency key of the
/// test's own.
fn fire(
    burst: Arc<Burst>,
    index: usize,
    inviter: Arc<Member>,
    invitees: Vec<UserId>,
    keyed: bool,
    sent: Arc<Mutex<Vec<Sent>>>,
    outcomes: Arc<Slots<Outcome>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut n = 0usize;
        // Bounded: far more than a run sends.
        while n < 100_000 && !burst.stop.load(Ordering::SeqCst) {
            if burst.in_flight[index].load(Ordering::SeqCst) >= WINDOW {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            let to = (n + index) % invitees.len();
            let key = keyed.then(|| format!("burst-{index}-{n}-{}", rand_suffix()));
            let mut request = SendInvitation::new(vec![invitees[to].clone()], LONG_TIMEOUT_SECS);
            request.idempotency_key = key.clone().map(Into::into);
            let slot = outcomes.add();
            sent.lock().unwrap().push(Sent { invitee: to, key });
            burst.in_flight[index].fetch_add(1, Ordering::SeqCst);
            let set = outcomes.setter(slot);
            let state = burst.clone();
            inviter
                .client
                .send_invitation_then(
                    request,
                    Box::new(move |result| {
                        let before_kill = !state.killed.load(Ordering::SeqCst);
                        state.in_flight[index].fetch_sub(1, Ordering::SeqCst);
                        set((
                            result.map(|o| o.invitation_id).map_err(|e| e.code),
                            before_kill,
                        ));
                    }),
                )
                .unwrap();
            n += 1;
        }
    })
}

#[test]
fn a_kill_in_the_middle_of_a_burst_loses_no_acknowledged_send() {
    let _serial = serial();
    let started = Instant::now();
    let data = DataDir::new();
    let mut server = start_on(&data);
    let url = server.url();
    let invitee_users = users("callee", BURST_INVITEES);
    let invitees = log_in(&url, &invitee_users, Duration::from_secs(30));
    // Two kinds of inviter: patient ones (their sends outlive the outage:
    // the client re-sends them with the idempotency key it gave them), and
    // hasty ones, whose sends give up after a second, and which give each
    // send a key of their own (to retry by hand).
    let patient: Vec<Arc<Member>> = log_in(&url, &users("patient", 2), Duration::from_secs(40))
        .into_iter()
        .map(Arc::new)
        .collect();
    let hasty: Vec<Arc<Member>> = log_in(&url, &users("hasty", 2), Duration::from_millis(1000))
        .into_iter()
        .map(Arc::new)
        .collect();
    let inviters: Vec<(Arc<Member>, bool)> = patient
        .iter()
        .map(|m| (m.clone(), false))
        .chain(hasty.iter().map(|m| (m.clone(), true)))
        .collect();

    let burst = Arc::new(Burst {
        killed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        in_flight: (0..inviters.len()).map(|_| AtomicUsize::new(0)).collect(),
    });
    // However the test ends, the senders stop.
    let _stop = StopOnDrop(burst.clone());
    let mut records = Vec::new();
    let mut firing = Vec::new();
    for (index, (member, keyed)) in inviters.iter().enumerate() {
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let outcomes: Arc<Slots<Outcome>> = Slots::new(0);
        firing.push(fire(
            burst.clone(),
            index,
            member.clone(),
            invitee_users.clone(),
            *keyed,
            sent.clone(),
            outcomes.clone(),
        ));
        records.push((sent, outcomes));
    }
    let acknowledged = || -> usize { records.iter().map(|(_, o)| o.filled()).sum() };
    wait_for(
        "sends acknowledged before the kill",
        Duration::from_secs(30),
        || acknowledged() >= 400,
    );

    burst.killed.store(true, Ordering::SeqCst);
    let in_flight: usize = burst
        .in_flight
        .iter()
        .map(|n| n.load(Ordering::SeqCst))
        .sum();
    server.kill();
    eprintln!(
        "killed with {in_flight} sends in flight, {} acknowledged, {:?} in",
        acknowledged(),
        started.elapsed()
    );
    assert!(in_flight > 0, "the kill came with sends in flight");
    // Sends go on while the server is down: the clients keep them; the hasty
    // ones give up meanwhile.
    thread::sleep(Duration::from_millis(2000));
    // Everything the invitees were told so far came from the old server: what
    // rang is what it had committed.
    let rung_before: HashSet<InvitationId> = invitees
        .iter()
        .flat_map(|m| m.told().received.keys().cloned().collect::<Vec<_>>())
        .collect();
    server.restart();
    let restarted = Instant::now();
    let everyone: Vec<&Member> = invitees
        .iter()
        .chain(inviters.iter().map(|(m, _)| &**m))
        .collect();
    wait_for("every client came back", Duration::from_secs(30), || {
        all_came_back(&everyone)
    });
    // A little more of the burst on the new server, then stop.
    let at_restart = acknowledged();
    wait_for(
        "sends acknowledged after the restart",
        Duration::from_secs(30),
        || acknowledged() >= at_restart + 200,
    );
    burst.stop.store(true, Ordering::SeqCst);
    for thread in firing {
        thread.join().unwrap();
    }
    for (_, outcomes) in &records {
        outcomes.wait_all("every send's callback", Duration::from_secs(60));
    }
    eprintln!("burst over {:?} after the restart", restarted.elapsed());

    // The final id of every send, and its invitee.
    let mut finals: Vec<(InvitationId, usize)> = Vec::new();
    let (mut ok_before, mut ok_after, mut late_but_committed) = (0, 0, 0);
    // Sends that timed out, and those of them the old server had committed
    // (their retry gives an id that rang before the kill).
    let (mut failed, mut failed_but_committed) = (0, 0);
    let mut cancel_sample = Vec::new();
    for ((sent, outcomes), (member, keyed)) in records.iter().zip(&inviters) {
        let sent = sent.lock().unwrap().clone();
        let outcomes = outcomes.take();
        assert_eq!(sent.len(), outcomes.len());
        let mut retries = Vec::new();
        for (send, (result, before_kill)) in sent.iter().zip(outcomes) {
            match result {
                Ok(id) => {
                    if before_kill {
                        ok_before += 1;
                        if cancel_sample.len() < 40 && ok_before % 7 == 0 {
                            cancel_sample.push((member.clone(), id.clone()));
                        }
                    } else {
                        ok_after += 1;
                        if rung_before.contains(&id) {
                            // Committed before the kill, answered after the
                            // restart (the client's re-send): the same id.
                            late_but_committed += 1;
                        }
                    }
                    if *keyed && before_kill {
                        // Retried by hand after the restart: the same id.
                        retries.push((send.clone(), Some(id.clone())));
                    }
                    finals.push((id, send.invitee));
                }
                Err(code) => {
                    assert!(*keyed, "a patient send failed: {code:?}");
                    assert_eq!(code, ErrorCode::RequestTimeout);
                    failed += 1;
                    retries.push((send.clone(), None));
                }
            }
        }
        // Retries by hand with the send's own key, twice: both give the
        // first send's id, or, for a send that was never answered, one id.
        for round in 0..2 {
            let results = Slots::new(retries.len());
            for (i, (send, _)) in retries.iter().enumerate() {
                let mut request = SendInvitation::new(
                    vec![invitee_users[send.invitee].clone()],
                    LONG_TIMEOUT_SECS,
                );
                request.idempotency_key = send.key.clone().map(Into::into);
                let set = results.setter(i);
                member
                    .client
                    .send_invitation_then_with(
                        request,
                        CallOptions::within(PATIENCE),
                        Box::new(set),
                    )
                    .unwrap();
            }
            results.wait_all("retries by hand", Duration::from_secs(30));
            for ((send, known), result) in retries.iter_mut().zip(results.take()) {
                let id = result
                    .unwrap_or_else(|e| panic!("retry of {:?}: {e}", send.key))
                    .invitation_id;
                match known {
                    Some(first) => assert_eq!(&id, first, "retry of {:?}", send.key),
                    None => {
                        assert_eq!(round, 0);
                        if rung_before.contains(&id) {
                            failed_but_committed += 1;
                        }
                        *known = Some(id.clone());
                        finals.push((id, send.invitee));
                    }
                }
            }
        }
    }
    eprintln!(
        "{} sends: {ok_before} acknowledged before the kill, {ok_after} after the restart \
         ({late_but_committed} of them committed before the kill), {failed} timed out \
         ({failed_but_committed} of them committed before the kill; all retried by hand)",
        finals.len()
    );

    // No invitation exists twice, and each send has its own.
    let distinct: HashSet<&InvitationId> = finals.iter().map(|(id, _)| id).collect();
    assert_eq!(
        distinct.len(),
        finals.len(),
        "two sends got the same invitation"
    );
    // Whatever the old server committed belongs to a send.
    for id in &rung_before {
        assert!(
            distinct.contains(id),
            "{id} rang before the kill but no send has it"
        );
    }
    let mut expected: Vec<HashSet<InvitationId>> = vec![HashSet::new(); BURST_INVITEES];
    for (id, to) in &finals {
        expected[*to].insert(id.clone());
    }
    // The invitees' devices showed each invitation once (rule 9 across the
    // restart) and no other.
    wait_for(
        "every invitation rang its invitee",
        Duration::from_secs(30),
        || {
            invitees
                .iter()
                .enumerate()
                .all(|(j, m)| m.told().received.len() >= expected[j].len())
        },
    );
    // A new device of each invitee is rung for every one of them, once.
    let second = log_in(&url, &invitee_users, Duration::from_secs(30));
    wait_for("second devices rung", Duration::from_secs(30), || {
        second
            .iter()
            .enumerate()
            .all(|(j, m)| m.told().received.len() >= expected[j].len())
    });
    thread::sleep(Duration::from_millis(300));
    for (j, (first, again)) in invitees.iter().zip(&second).enumerate() {
        for member in [first, again] {
            let told = member.told();
            let rung: HashSet<InvitationId> = told.received.keys().cloned().collect();
            assert_eq!(rung, expected[j], "{}", member.user);
            assert!(told.received.values().all(|&n| n == 1), "{}", member.user);
        }
    }
    // The store holds them all, once each, all still open.
    assert_eq!(
        data.check_copy(),
        Stored {
            open: finals.len() as u64,
            ended: 0
        }
    );
    // And an inviter can cancel what it was told was sent before the kill.
    let cancels = Slots::new(cancel_sample.len());
    for (i, (member, id)) in cancel_sample.iter().enumerate() {
        let request = CancelInvitation {
            invitation_id: id.clone(),
            invitees: None,
            extended_data: "".into(),
        };
        member
            .client
            .cancel_invitation_then_with(
                request,
                CallOptions::within(PATIENCE),
                Box::new(cancels.setter(i)),
            )
            .unwrap();
    }
    cancels.wait_all("cancels", Duration::from_secs(30));
    for ((_, id), result) in cancel_sample.iter().zip(cancels.take()) {
        let outcome = result.unwrap_or_else(|e| panic!("cancel of {id}: {e}"));
        assert!(outcome.error_invitees.is_empty(), "{outcome:?}");
    }
    assert!(!cancel_sample.is_empty());
    eprintln!("done in {:?}", started.elapsed());
}
