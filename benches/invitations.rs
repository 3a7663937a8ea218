//! Criterion benchmarks of the invitation path (see `benches/README.md`).
//!
//! - `send_call/c_abi/*`, `send_call/rust/*`: one `beckon_send_invitation` (or
//!   `Client::send_invitation_then`) call, to its return, on a `memory://` hub,
//!   with 1 or 8 online invitees whose clients have no event handler.
//! - `hub/send/*`: `Hub::send` alone, with session sinks that drop every push.
//! - `complete_invitations/*`: send, INVITATION_RECEIVED, accept,
//!   INVITATION_ACCEPTED at the inviter, as invitations per second: 1000 in
//!   flight over 4 inviter/invitee pairs, or one round trip at a time.
//!
//! Every invitation times out after 600 s and the hub keeps it (then keeps it
//! ended for its 10 min retention): hub memory grows with every invitation sent,
//! so measurement times are short. Queues stay bounded: sends are timed in
//! chunks, and between chunks (untimed) the bench waits until the inviter's
//! callbacks ran and every invitee acknowledged the last invitation. Each invitee
//! client is replaced (untimed) after it received `per_client()` invitations,
//! see there why. Every wait has a timeout: a stuck bench panics, it never hangs.

use std::ffi::{c_char, c_void, CStr, CString};
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use parking_lot::{Condvar, Mutex};

use beckon::client::{Callback, Client, ClientConfig, Event};
use beckon::ffi::client::{
    beckon_client, beckon_client_config, beckon_client_free, beckon_client_login,
    beckon_client_new, beckon_client_set_event_handler, BECKON_DISPATCH_THREAD,
};
use beckon::ffi::error::BECKON_OK;
use beckon::ffi::event::{
    beckon_event, BECKON_EVENT_INVITATION_ACCEPTED, BECKON_EVENT_INVITATION_RECEIVED,
};
use beckon::ffi::invitation::{
    beckon_accept_invitation, beckon_invitation_config, beckon_send_invitation,
};
use beckon::ffi::results::{beckon_result, beckon_send_result};
use beckon::hub::{Hub, HubConfig, Session};
use beckon::protocol::{
    Answer, DeviceId, InvitationId, InviteeState, Push, SendInvitation, SendOutcome, SessionSink,
    Text, UserId,
};

/// Every invitation's timeout: the longest allowed, so none times out mid-run.
const TIMEOUT_SECS: u32 = 600;
/// The longest any single wait may take before the bench gives up (panics).
const WAIT: Duration = Duration::from_secs(30);
/// How many invitations one invitee client receives before it is replaced by a
/// fresh one (untimed). A client remembers every invitation it showed for
/// timeout + 60 s, and from 1024 remembered ones on `ClientCore::first_sight`
/// scans the whole map on every new invitation, which would make the run
/// quadratic (see README). Staying below keeps the figures about one call.
/// `BECKON_BENCH_KEEP_CLIENTS=1` keeps the clients for the whole run instead.
const PER_CLIENT_DEFAULT: u64 = 1000;

fn per_client() -> u64 {
    static PER_CLIENT: OnceLock<u64> = OnceLock::new();
    *PER_CLIENT.get_or_init(|| match std::env::var("BECKON_BENCH_KEEP_CLIENTS") {
        Ok(value) if value == "1" => u64::MAX,
        _ => PER_CLIENT_DEFAULT,
    })
}

/// Sends timed back to back before the bench lets the queues drain.
const CHUNK: u64 = 1000;
/// Pairs and invitations in flight for the pipelined complete-invitation bench.
const PAIRS: usize = 4;
const IN_FLIGHT: usize = 1000;

static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// A name no other fixture of this process uses (hubs, users).
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed))
}

/// Resident memory of the bench process, for the notes printed after a bench.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn note(what: &str, invitations: u64) {
    if invitations == 0 {
        return; // filtered out
    }
    eprintln!(
        "note: {what}: {invitations} invitations created on its hub; process RSS {} MiB",
        rss_mib()
    );
}

// ---- waiting, always with a timeout --------------------------------------------

/// A counter that a thread can wait on until it reaches a target.
struct Tally {
    count: AtomicU64,
    /// The target a waiter waits for (u64::MAX when nobody waits), so that
    /// `add` takes the lock only when it may have to wake someone.
    target: AtomicU64,
    lock: Mutex<()>,
    ready: Condvar,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            count: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            lock: Mutex::new(()),
            ready: Condvar::new(),
        })
    }

    fn get(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    fn add(&self) {
        let now = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if now >= self.target.load(Ordering::SeqCst) {
            let _guard = self.lock.lock();
            self.ready.notify_all();
        }
    }

    /// Waits until the count reaches `target`; false after `timeout`.
    fn wait_for(&self, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.target.store(target, Ordering::SeqCst);
        let mut guard = self.lock.lock();
        let reached = loop {
            if self.get() >= target {
                break true;
            }
            if self.ready.wait_until(&mut guard, deadline).timed_out() {
                break self.get() >= target;
            }
        };
        self.target.store(u64::MAX, Ordering::SeqCst);
        reached
    }
}

/// Polls `done` until it holds; panics after `WAIT`.
fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "bench: timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Waits (untimed) until every invitee of `id` acknowledged it: each invitee
/// client handles its pushes in order, so then it has handled every earlier one.
fn wait_received(hub: &Hub, id: &InvitationId) {
    poll_until("the invitees to acknowledge", || {
        hub.invitee_states(id)
            .is_some_and(|states| states.iter().all(|s| s.state == InviteeState::Received))
    });
}

// ---- chunked runs ----------------------------------------------------------------

/// A fixture whose timed work is split into chunks, with untimed settling and
/// invitee-client replacement between them.
trait Chunked {
    /// Iterations the current invitee clients can still take (see `per_client`).
    fn room(&self) -> u64;
    /// Replaces the invitee clients with fresh ones.
    fn renew(&mut self);
    /// Runs `k` iterations; returns their time.
    fn timed(&mut self, k: u64) -> Duration;
    /// Untimed: waits until the queues are drained enough.
    fn settle(&mut self);
}

fn run_chunked(fixture: &mut impl Chunked, iters: u64, chunk: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        if fixture.room() == 0 {
            fixture.renew();
        }
        let k = left.min(chunk).min(fixture.room());
        total += fixture.timed(k);
        fixture.settle();
        left -= k;
    }
    total
}

// ---- C ABI helpers ---------------------------------------------------------------

/// A one-shot result of a `beckon_result_callback`.
struct Done {
    code: Mutex<Option<i32>>,
    ready: Condvar,
}

unsafe extern "C" fn on_done(user_data: *mut c_void, result: *const beckon_result) {
    // SAFETY: `user_data` is the `Done` the caller keeps alive until this ran (or
    // leaks it); `result` is valid during the call.
    let (done, code) = unsafe { (&*(user_data as *const Done), (*result).error) };
    *done.code.lock() = Some(code);
    done.ready.notify_all();
}

/// A C client, freed on drop.
struct CClient(*mut beckon_client);

impl CClient {
    fn new(url: &CStr) -> CClient {
        let config = beckon_client_config {
            struct_size: size_of::<beckon_client_config>() as u32,
            server_url: url.as_ptr(),
            device_id: ptr::null(),
            dispatch_mode: BECKON_DISPATCH_THREAD,
            request_timeout_ms: 0,
        };
        let mut client = ptr::null_mut();
        // SAFETY: valid config and out pointer.
        let code = unsafe { beckon_client_new(&config, &mut client) };
        assert_eq!(code, BECKON_OK, "bench: beckon_client_new failed");
        CClient(client)
    }

    /// Logs in and waits for the callback.
    fn login(&self, user: &CStr) {
        let done = Box::new(Done {
            code: Mutex::new(None),
            ready: Condvar::new(),
        });
        let user_data = &*done as *const Done as *mut c_void;
        // SAFETY: a live client, valid strings; `done` outlives the callback.
        let code = unsafe {
            beckon_client_login(self.0, user.as_ptr(), ptr::null(), Some(on_done), user_data)
        };
        assert_eq!(code, BECKON_OK, "bench: beckon_client_login failed");
        let deadline = Instant::now() + WAIT;
        let mut result = done.code.lock();
        while result.is_none() {
            if done.ready.wait_until(&mut result, deadline).timed_out() && result.is_none() {
                drop(result);
                std::mem::forget(done); // the callback may still come
                panic!("bench: login timed out");
            }
        }
        assert_eq!(*result, Some(BECKON_OK), "bench: login failed");
    }
}

impl Drop for CClient {
    fn drop(&mut self) {
        // SAFETY: a client from `beckon_client_new`, freed once.
        unsafe { beckon_client_free(self.0) };
    }
}

/// What a send callback does: count, and for the marked last send of a chunk,
/// remember the invitation id.
struct SendCtx {
    sent: Arc<Tally>,
    errors: AtomicU64,
    last_id: Option<Mutex<String>>,
}

impl SendCtx {
    fn new(sent: &Arc<Tally>, marker: bool) -> Box<SendCtx> {
        Box::new(SendCtx {
            sent: sent.clone(),
            errors: AtomicU64::new(0),
            last_id: marker.then(|| Mutex::new(String::new())),
        })
    }

    fn as_user_data(&self) -> *mut c_void {
        self as *const SendCtx as *mut c_void
    }
}

unsafe extern "C" fn on_send(user_data: *mut c_void, result: *const beckon_send_result) {
    // SAFETY: `user_data` is a `SendCtx` that outlives the client; `result` and
    // its strings are valid during the call.
    unsafe {
        let ctx = &*(user_data as *const SendCtx);
        let result = &*result;
        if result.error != BECKON_OK {
            ctx.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(last) = &ctx.last_id {
            let id = CStr::from_ptr(result.invitation_id);
            *last.lock() = id.to_string_lossy().into_owned();
        }
        ctx.sent.add();
    }
}

fn invitation_config() -> beckon_invitation_config {
    beckon_invitation_config {
        struct_size: size_of::<beckon_invitation_config>() as u32,
        timeout_seconds: TIMEOUT_SECS,
        extended_data: ptr::null(),
        notification: ptr::null(),
        flags: 0,
        request_timeout_ms: 0,
    }
}

// ---- Rust client helpers ---------------------------------------------------------

fn rust_client(url: &str, user: &UserId) -> Client {
    let client = Client::new(ClientConfig::new(url)).expect("bench: Client::new");
    let (sender, receiver) = std::sync::mpsc::channel();
    client
        .login_then(
            user.clone(),
            String::new(),
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        )
        .expect("bench: login");
    receiver
        .recv_timeout(WAIT)
        .expect("bench: login timed out")
        .expect("bench: login failed");
    client
}

fn user(name: &str) -> UserId {
    UserId::parse(name, "user").expect("bench: user id")
}

// ---- 1. send_call/c_abi ------------------------------------------------------------

/// One inviter, `count` invitees with no event handler, on a fresh hub.
struct CSend {
    hub: Arc<Hub>,
    url: CString,
    // Clients before the contexts: they are freed (and stop calling back) first.
    inviter: CClient,
    invitees: Vec<CClient>,
    invitee_ids: Vec<CString>,
    count: usize,
    received: u64,
    issued: u64,
    sent: Arc<Tally>,
    counter: Box<SendCtx>,
    marker: Box<SendCtx>,
}

impl CSend {
    fn new(count: usize) -> CSend {
        let name = unique("bench-send-c");
        let url = CString::new(format!("memory://{name}")).expect("url");
        let inviter = CClient::new(&url);
        inviter.login(c"inviter");
        let hub = beckon::memory::hub(&name).expect("bench: hub");
        let sent = Tally::new();
        let mut fixture = CSend {
            hub,
            counter: SendCtx::new(&sent, false),
            marker: SendCtx::new(&sent, true),
            sent,
            url,
            inviter,
            invitees: Vec::new(),
            invitee_ids: Vec::new(),
            count,
            received: 0,
            issued: 0,
        };
        fixture.renew();
        fixture
    }
}

impl Chunked for CSend {
    fn room(&self) -> u64 {
        per_client() - self.received
    }

    fn renew(&mut self) {
        self.invitees.clear(); // frees the old clients
        self.invitee_ids = (0..self.count)
            .map(|_| CString::new(unique("invitee")).expect("id"))
            .collect();
        for id in &self.invitee_ids {
            let client = CClient::new(&self.url);
            client.login(id);
            self.invitees.push(client);
        }
        self.received = 0;
    }

    fn timed(&mut self, k: u64) -> Duration {
        let invitees: Vec<*const c_char> = self.invitee_ids.iter().map(|s| s.as_ptr()).collect();
        let config = invitation_config();
        let counter = self.counter.as_user_data();
        let marker = self.marker.as_user_data();
        let start = Instant::now();
        for i in 0..k {
            let user_data = if i + 1 == k { marker } else { counter };
            // SAFETY: a live client; valid arrays, strings and config; the
            // contexts outlive the client.
            let code = unsafe {
                beckon_send_invitation(
                    self.inviter.0,
                    invitees.as_ptr(),
                    invitees.len(),
                    &config,
                    Some(on_send),
                    user_data,
                )
            };
            assert_eq!(code, BECKON_OK, "bench: beckon_send_invitation failed");
        }
        let elapsed = start.elapsed();
        self.issued += k;
        self.received += k;
        elapsed
    }

    fn settle(&mut self) {
        assert!(
            self.sent.wait_for(self.issued, WAIT),
            "bench: send callbacks timed out ({} of {})",
            self.sent.get(),
            self.issued
        );
        let errors = self.counter.errors.load(Ordering::Relaxed)
            + self.marker.errors.load(Ordering::Relaxed);
        assert_eq!(errors, 0, "bench: sends failed");
        let last = self.marker.last_id.as_ref().map(|m| m.lock().clone());
        let id = InvitationId::parse(&last.unwrap_or_default(), "id").expect("bench: last id");
        wait_received(&self.hub, &id);
    }
}

// ---- 2. send_call/rust -------------------------------------------------------------

struct RustSend {
    hub: Arc<Hub>,
    url: String,
    inviter: Client,
    invitees: Vec<Client>,
    invitee_ids: Vec<UserId>,
    count: usize,
    received: u64,
    issued: u64,
    sent: Arc<Tally>,
    errors: Arc<AtomicU64>,
    last: Arc<Mutex<Option<InvitationId>>>,
}

impl RustSend {
    fn new(count: usize) -> RustSend {
        let name = unique("bench-send-rust");
        let url = format!("memory://{name}");
        let inviter = rust_client(&url, &user("inviter"));
        let mut fixture = RustSend {
            hub: beckon::memory::hub(&name).expect("bench: hub"),
            url,
            inviter,
            invitees: Vec::new(),
            invitee_ids: Vec::new(),
            count,
            received: 0,
            issued: 0,
            sent: Tally::new(),
            errors: Arc::new(AtomicU64::new(0)),
            last: Arc::new(Mutex::new(None)),
        };
        fixture.renew();
        fixture
    }

    fn callback(&self, marker: bool) -> Callback<SendOutcome> {
        let sent = self.sent.clone();
        let errors = self.errors.clone();
        let last = marker.then(|| self.last.clone());
        Box::new(move |result: beckon::Result<SendOutcome>| {
            match result {
                Ok(outcome) => {
                    if let Some(last) = last {
                        *last.lock() = Some(outcome.invitation_id);
                    }
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            sent.add();
        })
    }
}

impl Chunked for RustSend {
    fn room(&self) -> u64 {
        per_client() - self.received
    }

    fn renew(&mut self) {
        self.invitees.clear();
        self.invitee_ids = (0..self.count).map(|_| user(&unique("invitee"))).collect();
        for id in &self.invitee_ids {
            self.invitees.push(rust_client(&self.url, id));
        }
        self.received = 0;
    }

    fn timed(&mut self, k: u64) -> Duration {
        let start = Instant::now();
        for i in 0..k {
            let request = SendInvitation::new(self.invitee_ids.clone(), TIMEOUT_SECS);
            let done = self.callback(i + 1 == k);
            self.inviter
                .send_invitation_then(request, done)
                .expect("bench: send_invitation_then");
        }
        let elapsed = start.elapsed();
        self.issued += k;
        self.received += k;
        elapsed
    }

    fn settle(&mut self) {
        assert!(
            self.sent.wait_for(self.issued, WAIT),
            "bench: send callbacks timed out ({} of {})",
            self.sent.get(),
            self.issued
        );
        assert_eq!(
            self.errors.load(Ordering::Relaxed),
            0,
            "bench: sends failed"
        );
        let id = self.last.lock().take().expect("bench: last id");
        wait_received(&self.hub, &id);
    }
}

fn send_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("send_call");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for count in [1usize, 8] {
        let label = if count == 1 {
            "1_invitee".to_owned()
        } else {
            format!("{count}_invitees")
        };
        let mut fixture = CSend::new(count);
        group.bench_function(BenchmarkId::new("c_abi", &label), |b| {
            b.iter_custom(|iters| run_chunked(&mut fixture, iters, CHUNK))
        });
        note(&format!("send_call/c_abi/{label}"), fixture.issued);
        drop(fixture);

        let mut fixture = RustSend::new(count);
        group.bench_function(BenchmarkId::new("rust", &label), |b| {
            b.iter_custom(|iters| run_chunked(&mut fixture, iters, CHUNK))
        });
        note(&format!("send_call/rust/{label}"), fixture.issued);
    }
    group.finish();
}

// ---- 3. hub/send -------------------------------------------------------------------

/// A session sink that drops every push: what is left is the engine's own work.
struct DropSink;

impl SessionSink for DropSink {
    fn deliver(&self, _push: Push) {}
}

fn hub_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(2500));
    for count in [1usize, 8] {
        let hub = beckon::memory::new_hub(HubConfig::in_process()).expect("bench: hub");
        let login = |name: &str| -> Arc<Session> {
            hub.login(
                user(name),
                DeviceId::parse("device", "device").expect("device"),
                "",
                Arc::new(DropSink),
            )
            .expect("bench: hub login")
        };
        let inviter = login("inviter");
        let invitee_ids: Vec<UserId> = (0..count).map(|i| user(&format!("invitee-{i}"))).collect();
        let _invitees: Vec<Arc<Session>> =
            invitee_ids.iter().map(|id| login(id.as_str())).collect();
        let request = SendInvitation::new(invitee_ids, TIMEOUT_SECS);
        let mut sent = 0u64;
        let label = if count == 1 {
            "1_invitee".to_owned()
        } else {
            format!("{count}_invitees")
        };
        group.bench_function(BenchmarkId::new("send", &label), |b| {
            b.iter_batched(
                || {
                    sent += 1;
                    request.clone()
                },
                |request| hub.send(&inviter, request).expect("bench: hub send"),
                BatchSize::SmallInput,
            )
        });
        note(&format!("hub/send/{label}"), sent);
    }
    group.finish();
}

// ---- 4. complete_invitations -------------------------------------------------------

/// `pairs` inviter/invitee pairs through the Rust client: invitees accept on
/// INVITATION_RECEIVED, inviters count INVITATION_ACCEPTED. One iteration sends
/// `batch` invitations (round robin over the pairs) and waits for every answer.
struct RustPairs {
    url: String,
    pairs: usize,
    batch: usize,
    inviters: Vec<Client>,
    invitees: Vec<Arc<Client>>,
    invitee_ids: Vec<UserId>,
    accepted: Arc<Tally>,
    failures: Arc<AtomicU64>,
    /// Answers counted so far (over every generation of clients).
    expected: u64,
    received: u64,
    total: u64,
}

impl RustPairs {
    fn new(pairs: usize, batch: usize) -> RustPairs {
        let mut fixture = RustPairs {
            url: format!("memory://{}", unique("bench-complete-rust")),
            pairs,
            batch,
            inviters: Vec::new(),
            invitees: Vec::new(),
            invitee_ids: Vec::new(),
            accepted: Tally::new(),
            failures: Arc::new(AtomicU64::new(0)),
            expected: 0,
            received: 0,
            total: 0,
        };
        fixture.renew();
        fixture
    }
}

impl Chunked for RustPairs {
    fn room(&self) -> u64 {
        let per_invitee = (self.batch / self.pairs) as u64;
        (per_client() - self.received) / per_invitee
    }

    fn renew(&mut self) {
        self.inviters.clear();
        self.invitees.clear();
        self.invitee_ids.clear();
        let empty = Text::from("");
        for _ in 0..self.pairs {
            let inviter = rust_client(&self.url, &user(&unique("inviter")));
            let accepted = self.accepted.clone();
            inviter.set_event_handler(Some(Arc::new(move |event: &Event| {
                if let Event::Invitation(Push::InvitationAccepted { .. }) = event {
                    accepted.add();
                }
            })));
            self.inviters.push(inviter);

            let id = user(&unique("invitee"));
            let invitee = Arc::new(rust_client(&self.url, &id));
            let weak: Weak<Client> = Arc::downgrade(&invitee);
            let failures = self.failures.clone();
            let empty = empty.clone();
            invitee.set_event_handler(Some(Arc::new(move |event: &Event| {
                let Event::Invitation(Push::InvitationReceived { invitation_id, .. }) = event
                else {
                    return;
                };
                let Some(client) = weak.upgrade() else { return };
                let answer = Answer {
                    invitation_id: invitation_id.clone(),
                    extended_data: empty.clone(),
                };
                let on_error = failures.clone();
                let started = client.accept_invitation_then(
                    answer,
                    Box::new(move |result| {
                        if result.is_err() {
                            on_error.fetch_add(1, Ordering::Relaxed);
                        }
                    }),
                );
                if started.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            })));
            self.invitees.push(invitee);
            self.invitee_ids.push(id);
        }
        self.received = 0;
    }

    fn timed(&mut self, k: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..k {
            let target = self.expected + self.batch as u64;
            let start = Instant::now();
            for i in 0..self.batch {
                let pair = i % self.pairs;
                let request =
                    SendInvitation::new(vec![self.invitee_ids[pair].clone()], TIMEOUT_SECS);
                let failures = self.failures.clone();
                self.inviters[pair]
                    .send_invitation_then(
                        request,
                        Box::new(move |result| {
                            if result.is_err() {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }),
                    )
                    .expect("bench: send_invitation_then");
            }
            let done = self.accepted.wait_for(target, WAIT);
            total += start.elapsed();
            assert!(
                done,
                "bench: {} of {target} invitations accepted before the timeout ({} failures)",
                self.accepted.get(),
                self.failures.load(Ordering::Relaxed)
            );
            self.expected = target;
            self.received += (self.batch / self.pairs) as u64;
            self.total += self.batch as u64;
        }
        total
    }

    fn settle(&mut self) {}
}

/// The same through the C ABI: `beckon_send_invitation`, an event handler on
/// each invitee that calls `beckon_accept_invitation`, and one on each inviter
/// that counts BECKON_EVENT_INVITATION_ACCEPTED.
struct CPairs {
    url: CString,
    pairs: usize,
    batch: usize,
    // Clients before the contexts their handlers use: freed first.
    inviters: Vec<CClient>,
    invitees: Vec<CClient>,
    invitee_ctx: Vec<Arc<CInviteeCtx>>,
    invitee_ids: Vec<CString>,
    inviter_ctx: Box<CInviterCtx>,
    expected: u64,
    received: u64,
    total: u64,
}

struct CInviteeCtx {
    client: AtomicPtr<beckon_client>,
    failures: AtomicU64,
}

struct CInviterCtx {
    accepted: Arc<Tally>,
    failures: AtomicU64,
}

unsafe extern "C" fn invitee_event(user_data: *mut c_void, event: *const beckon_event) {
    // SAFETY: `user_data` is the invitee's context, which outlives its client;
    // `event` and its strings are valid during the call.
    unsafe {
        let ctx = &*(user_data as *const CInviteeCtx);
        let event = &*event;
        if event.kind == BECKON_EVENT_INVITATION_RECEIVED {
            let client = ctx.client.load(Ordering::Acquire);
            let code = beckon_accept_invitation(
                client,
                event.invitation_id,
                ptr::null(),
                None,
                ptr::null_mut(),
            );
            if code != BECKON_OK {
                ctx.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

unsafe extern "C" fn inviter_event(user_data: *mut c_void, event: *const beckon_event) {
    // SAFETY: as `invitee_event`.
    unsafe {
        let ctx = &*(user_data as *const CInviterCtx);
        if (*event).kind == BECKON_EVENT_INVITATION_ACCEPTED {
            ctx.accepted.add();
        }
    }
}

unsafe extern "C" fn inviter_send(user_data: *mut c_void, result: *const beckon_send_result) {
    // SAFETY: as `invitee_event`.
    unsafe {
        if (*result).error != BECKON_OK {
            let ctx = &*(user_data as *const CInviterCtx);
            ctx.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl CPairs {
    fn new(pairs: usize, batch: usize) -> CPairs {
        let url = CString::new(format!("memory://{}", unique("bench-complete-c"))).expect("url");
        let mut fixture = CPairs {
            url,
            pairs,
            batch,
            inviters: Vec::new(),
            invitees: Vec::new(),
            invitee_ctx: Vec::new(),
            invitee_ids: Vec::new(),
            inviter_ctx: Box::new(CInviterCtx {
                accepted: Tally::new(),
                failures: AtomicU64::new(0),
            }),
            expected: 0,
            received: 0,
            total: 0,
        };
        fixture.renew();
        fixture
    }

    fn failures(&self) -> u64 {
        self.inviter_ctx.failures.load(Ordering::Relaxed)
            + self
                .invitee_ctx
                .iter()
                .map(|c| c.failures.load(Ordering::Relaxed))
                .sum::<u64>()
    }
}

impl Chunked for CPairs {
    fn room(&self) -> u64 {
        let per_invitee = (self.batch / self.pairs) as u64;
        (per_client() - self.received) / per_invitee
    }

    fn renew(&mut self) {
        self.inviters.clear();
        self.invitees.clear();
        self.invitee_ctx.clear();
        self.invitee_ids.clear();
        let inviter_data = &*self.inviter_ctx as *const CInviterCtx as *mut c_void;
        for _ in 0..self.pairs {
            let inviter = CClient::new(&self.url);
            inviter.login(&CString::new(unique("inviter")).expect("id"));
            // SAFETY: a live client; the context outlives it.
            let code = unsafe {
                beckon_client_set_event_handler(inviter.0, Some(inviter_event), inviter_data)
            };
            assert_eq!(code, BECKON_OK);
            self.inviters.push(inviter);

            let id = CString::new(unique("invitee")).expect("id");
            let invitee = CClient::new(&self.url);
            invitee.login(&id);
            let ctx = Arc::new(CInviteeCtx {
                client: AtomicPtr::new(invitee.0),
                failures: AtomicU64::new(0),
            });
            let ctx_data = Arc::as_ptr(&ctx) as *mut c_void;
            // SAFETY: as above.
            let code = unsafe {
                beckon_client_set_event_handler(invitee.0, Some(invitee_event), ctx_data)
            };
            assert_eq!(code, BECKON_OK);
            self.invitees.push(invitee);
            self.invitee_ctx.push(ctx);
            self.invitee_ids.push(id);
        }
        self.received = 0;
    }

    fn timed(&mut self, k: u64) -> Duration {
        let config = invitation_config();
        let inviter_data = &*self.inviter_ctx as *const CInviterCtx as *mut c_void;
        let accepted = self.inviter_ctx.accepted.clone();
        let mut total = Duration::ZERO;
        for _ in 0..k {
            let target = self.expected + self.batch as u64;
            let start = Instant::now();
            for i in 0..self.batch {
                let pair = i % self.pairs;
                let invitee = self.invitee_ids[pair].as_ptr();
                // SAFETY: a live client, a one-entry array, a valid config; the
                // context outlives the client.
                let code = unsafe {
                    beckon_send_invitation(
                        self.inviters[pair].0,
                        &invitee,
                        1,
                        &config,
                        Some(inviter_send),
                        inviter_data,
                    )
                };
                assert_eq!(code, BECKON_OK, "bench: beckon_send_invitation failed");
            }
            let done = accepted.wait_for(target, WAIT);
            total += start.elapsed();
            assert!(
                done,
                "bench: {} of {target} invitations accepted before the timeout ({} failures)",
                accepted.get(),
                self.failures()
            );
            self.expected = target;
            self.received += (self.batch / self.pairs) as u64;
            self.total += self.batch as u64;
        }
        total
    }

    fn settle(&mut self) {}
}

fn complete_invitations(c: &mut Criterion) {
    let mut group = c.benchmark_group("complete_invitations");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let pipelined = format!("{IN_FLIGHT}_in_flight");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    let mut fixture = RustPairs::new(PAIRS, IN_FLIGHT);
    group.bench_function(BenchmarkId::new("memory", &pipelined), |b| {
        b.iter_custom(|iters| run_chunked(&mut fixture, iters, u64::MAX))
    });
    note(
        &format!("complete_invitations/memory/{pipelined}"),
        fixture.total,
    );
    drop(fixture);

    let mut fixture = CPairs::new(PAIRS, IN_FLIGHT);
    group.bench_function(BenchmarkId::new("memory_c_abi", &pipelined), |b| {
        b.iter_custom(|iters| run_chunked(&mut fixture, iters, u64::MAX))
    });
    note(
        &format!("complete_invitations/memory_c_abi/{pipelined}"),
        fixture.total,
    );
    drop(fixture);

    group.throughput(Throughput::Elements(1));
    let mut fixture = RustPairs::new(1, 1);
    group.bench_function(BenchmarkId::new("memory", "1_in_flight"), |b| {
        b.iter_custom(|iters| run_chunked(&mut fixture, iters, u64::MAX))
    });
    note("complete_invitations/memory/1_in_flight", fixture.total);
    drop(fixture);

    let mut fixture = CPairs::new(1, 1);
    group.bench_function(BenchmarkId::new("memory_c_abi", "1_in_flight"), |b| {
        b.iter_custom(|iters| run_chunked(&mut fixture, iters, u64::MAX))
    });
    note(
        "complete_invitations/memory_c_abi/1_in_flight",
        fixture.total,
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().nresamples(20_000);
    targets = send_call, hub_send, complete_invitations
}
criterion_main!(benches);
