//! `beckon-bench overload`: everything a server should survive, at once, while
//! ordinary users go on. Against one server, for `--duration` seconds:
//! - `--silent` connections that finish the WebSocket handshake and then say
//!   nothing (no `hello`); one the server closes is opened again;
//! - a spammer: one logged-in user sending invitations as fast as the server
//!   lets it: the gap between its sends doubles on each RATE_LIMITED for the
//!   rate (up to `--spam-max-gap-ms`) and shrinks by 3 % on every other answer,
//!   so it hovers at the server's rate; refusals for the rate and for the
//!   open-invitation quota are counted apart. Its invitations go to the deaf
//!   client and to a user who is offline;
//! - a deaf client: logged in, then never reads its socket while the spammer
//!   invites it;
//! - `--resume-flooders` tasks sending `hello` with a resume of a made-up
//!   session (even ones) or of one that logged out (odd ones), over and over;
//! - `--pairs` ordinary inviter/invitee pairs of `beckon::Client`s, paced at
//!   `--rate` invitations per second in all: their latency is the figure.
//!
//! The server's VmRSS (`--server-pid`) and `/healthz` + `/metrics`
//! (`--admin`) are sampled throughout.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::wire::{ClientFrame, Resume, ServerFrame, Welcome};
use beckon::protocol::{SendInvitation, Text, UserId};
use beckon::DispatchMode;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::driver::{self, Progress};
use crate::idle::labels;
use crate::options::{DRAIN, LOGIN_WAIT};
use crate::pair::{new_histogram, Pair};
use crate::probe::{self, record, AdminReport, RssReport};
use crate::raw::{self, Login, Target, Ws};
use crate::report::{self, Latencies, Summary};
use crate::run::{now_ns, Run};

/// Silent connections being opened at once.
const OPENING_AT_ONCE: usize = 256;
/// How long the abusers may take to be in place before the measurement.
const SETUP_WAIT: Duration = Duration::from_secs(20);
/// One step (connect, handshake, login) of an abuser may take this long.
const STEP: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub struct OverloadOptions {
    /// The server: ws://HOST:PORT.
    #[arg(long)]
    pub url: String,

    /// Seconds measured (at most 120), after the warm-up.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,

    /// Seconds of load before measuring (at most 30).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Connections that never log in (at most 15,000).
    #[arg(long, default_value_t = 2000)]
    pub silent: usize,

    /// Ordinary inviter/invitee pairs.
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,

    /// The ordinary pairs' invitations per second, all together, paced.
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,

    /// Tasks flooding the server with resumes.
    #[arg(long, default_value_t = 4)]
    pub resume_flooders: usize,

    /// Milliseconds a flooder waits between resumes (0: none).
    #[arg(long, default_value_t = 0)]
    pub resume_pause_ms: u64,

    /// Sends the spammer keeps unanswered at most (0: no spammer).
    #[arg(long, default_value_t = 16)]
    pub spam_window: usize,

    /// The longest gap (milliseconds) between the spammer's sends, which
    /// doubles on each RATE_LIMITED answer for the rate.
    #[arg(long, default_value_t = 100)]
    pub spam_max_gap_ms: u64,

    /// The spammer's invitation timeout: its open invitations, and so its
    /// quota, free up after this.
    #[arg(long, default_value_t = 2)]
    pub spam_timeout_secs: u32,

    /// Extended data in each spam invitation (capped at the server's limit):
    /// what fills the deaf client's outbox.
    #[arg(long, default_value_t = 8000)]
    pub spam_data_bytes: usize,

    /// The login token (a --dev server accepts any).
    #[arg(long, default_value = "bench")]
    pub token: String,

    /// The server's admin address (HOST:PORT), polled throughout.
    #[arg(long)]
    pub admin: Option<String>,

    /// The server's process id, to sample its VmRSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl OverloadOptions {
    fn validate(&self) -> Result<Target, String> {
        let checks: [(&str, f64, f64, f64); 4] = [
            ("--duration", self.duration, 0.5, 120.0),
            ("--warmup", self.warmup, 0.0, 30.0),
            ("--rate", self.rate, 1.0, 100_000.0),
            (
                "--spam-timeout-secs",
                f64::from(self.spam_timeout_secs),
                1.0,
                600.0,
            ),
        ];
        for (flag, value, low, high) in checks {
            if !(low..=high).contains(&value) {
                return Err(format!("{flag}: {value} is outside [{low}, {high}]"));
            }
        }
        let counts: [(&str, usize, usize, usize); 6] = [
            ("--silent", self.silent, 0, 15_000),
            ("--pairs", self.pairs, 1, 64),
            ("--resume-flooders", self.resume_flooders, 0, 64),
            ("--spam-window", self.spam_window, 0, 1024),
            ("--spam-data-bytes", self.spam_data_bytes, 0, 1 << 20),
            (
                "--spam-max-gap-ms",
                self.spam_max_gap_ms as usize,
                1,
                10_000,
            ),
        ];
        for (flag, value, low, high) in counts {
            if !(low..=high).contains(&value) {
                return Err(format!("{flag}: {value} is outside {low}..={high}"));
            }
        }
        if self.resume_pause_ms > 10_000 {
            return Err(format!(
                "--resume-pause-ms: {} is outside 0..=10000",
                self.resume_pause_ms
            ));
        }
        raw::check_fds(
            self.silent + 2 * self.pairs + self.resume_flooders + 8,
            "--silent",
        )?;
        Target::parse(&self.url)
    }

    fn warmup_time(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    fn duration_time(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    pub fn limit(&self) -> Duration {
        // Logins, the deaf client's login, the set-up, the run, the drain,
        // stopping the abusers, closing the pairs, and a margin.
        LOGIN_WAIT * 2
            + STEP
            + SETUP_WAIT
            + self.warmup_time()
            + self.duration_time()
            + DRAIN * 3
            + Duration::from_secs(30)
    }
}

/// Events of one abuser, by label.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, u64>>);

impl Counters {
    fn add(&self, label: impl Into<String>) {
        *self.0.lock().entry(label.into()).or_insert(0) += 1;
    }

    fn get(&self, label: &str) -> u64 {
        self.0.lock().get(label).copied().unwrap_or(0)
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// What the abusers share.
struct Abuse {
    target: Target,
    token: String,
    tag: String,
    stop: watch::Receiver<bool>,
    silent: Counters,
    /// Silent connections open now.
    silent_open: std::sync::atomic::AtomicU64,
    /// From a silent connection's handshake to the server closing it.
    silent_cut_after: Mutex<Histogram<u64>>,
    spammer: Counters,
    deaf: Counters,
    resume: Counters,
    /// From a resume's start (connect) to its `welcome`.
    resume_welcome: Mutex<Histogram<u64>>,
}

impl Abuse {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn user(&self, role: &str) -> Result<UserId, String> {
        raw::user_id(&format!("{}-{role}", self.tag))
    }

    /// Sleeps `pause` unless the run stops first.
    async fn pause(&self, pause: Duration) {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = sleep(pause) => {}
            () = crate::probe::until_true(&mut stop) => {}
        }
    }

    /// Opens a connection and logs `user` in (with `sync`).
    async fn login(&self, user: &UserId, resume: Option<Resume>) -> Result<(Ws, Welcome), String> {
        let start = Instant::now();
        let deadline = start + STEP;
        let (mut ws, _) = raw::open(&self.target, deadline).await?;
        let device = raw::device_id("d")?;
        let login = Login {
            user,
            device: &device,
            token: &self.token,
            resume,
        };
        let welcome = raw::hello(&mut ws, login, deadline).await?;
        raw::send(&mut ws, &ClientFrame::Sync { known: None }, STEP).await?;
        Ok((ws, welcome))
    }
}

#[derive(Serialize)]
pub struct OverloadReport {
    pub url: String,
    pub warmup_secs: f64,
    /// The measured window as it was.
    pub duration_secs: f64,
    pub pairs: PairFigures,
    pub silent: SilentFigures,
    /// The spammer's events: `sent`, `ok`, `rate_limited`, `quota_refused`,
    /// `logins`, `cut:...` (the server closed it), `pushes`, `acks`.
    pub spammer: BTreeMap<String, u64>,
    /// Over the whole time the abusers ran (set-up, warm-up, measurement).
    pub spammer_sends_per_sec: f64,
    /// The deaf client's events, and what it found in its socket at the end.
    pub deaf: BTreeMap<String, u64>,
    pub resume: ResumeFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss: Option<RssReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminReport>,
}

#[derive(Serialize)]
pub struct PairFigures {
    pub pairs: usize,
    pub rate: f64,
    pub sent: u64,
    /// Answers heard while measuring.
    pub completed: u64,
    pub invitations_per_sec: f64,
    pub unfinished: usize,
    pub latency_us: Latencies,
    pub errors: BTreeMap<String, u64>,
}

#[derive(Serialize)]
pub struct SilentFigures {
    pub wanted: usize,
    /// Open when the measurement ended.
    pub open_at_end: u64,
    /// `opened`, `reopened`, `cut:...` (closed by the server, by why),
    /// `open_failed:...`.
    pub events: BTreeMap<String, u64>,
    /// From the handshake to the server closing the connection.
    pub cut_after_us: Summary,
}

#[derive(Serialize)]
pub struct ResumeFigures {
    pub flooders: usize,
    /// `welcomed_fresh`, `welcomed_resumed`, failures by label.
    pub events: BTreeMap<String, u64>,
    /// Over the whole time the abusers ran.
    pub attempts_per_sec: f64,
    /// Connect to `welcome`.
    pub welcome_us: Summary,
}

impl OverloadReport {
    pub fn ok(&self) -> bool {
        self.pairs.completed > 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "beckon-bench overload: {} for {:.1} s (after {:.1} s warm-up)\n",
            self.url, self.duration_secs, self.warmup_secs
        );
        let pairs = &self.pairs;
        out.push_str(&format!(
            "ordinary pairs: {} paced at {:.0}/s: {} complete ({:.0}/s), {} sent, {} unfinished, errors: {}\n",
            pairs.pairs,
            pairs.rate,
            pairs.completed,
            pairs.invitations_per_sec,
            pairs.sent,
            pairs.unfinished,
            labels(&pairs.errors)
        ));
        out.push_str(&pairs.latency_us.send_to_received.line("  send -> received"));
        out.push('\n');
        out.push_str(&pairs.latency_us.send_to_answer.line("  send -> answer"));
        out.push('\n');
        if let Some(lag) = &pairs.latency_us.pacer_lag {
            out.push_str(&lag.line("  pacer lag"));
            out.push('\n');
        }
        out.push_str(&format!(
            "silent connections: {} wanted, {} open at the end; {}\n",
            self.silent.wanted,
            self.silent.open_at_end,
            labels(&self.silent.events)
        ));
        if self.silent.cut_after_us.count > 0 {
            out.push_str(&self.silent.cut_after_us.line("  cut after"));
            out.push('\n');
        }
        out.push_str(&format!(
            "spammer: {:.0} sends/s; {}\n",
            self.spammer_sends_per_sec,
            labels(&self.spammer)
        ));
        out.push_str(&format!("deaf client: {}\n", labels(&self.deaf)));
        out.push_str(&format!(
            "resume flood: {} flooders, {:.0} attempts/s; {}\n",
            self.resume.flooders,
            self.resume.attempts_per_sec,
            labels(&self.resume.events)
        ));
        out.push_str(&self.resume.welcome_us.line("  resume -> welcome"));
        out.push('\n');
        if let Some(rss) = &self.server_rss {
            out.push_str(&rss.line());
            out.push('\n');
        }
        if let Some(admin) = &self.admin {
            out.push_str(&admin.lines());
        }
        out
    }
}

pub fn run(options: &OverloadOptions) -> Result<OverloadReport, String> {
    let target = options.validate()?;
    now_ns(); // starts the run's clock
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-abuse")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let (stop_tx, stop) = watch::channel(false);
    let (stop_probes, probes_stop) = watch::channel(false);
    let rss = options.server_pid.map(|pid| {
        runtime.spawn(probe::sample_rss(
            pid,
            Duration::from_millis(100),
            probes_stop.clone(),
        ))
    });
    let admin = options.admin.clone().map(|addr| {
        runtime.spawn(probe::poll_admin(
            addr,
            Duration::from_millis(250),
            probes_stop.clone(),
        ))
    });

    // The ordinary pairs first, logged in on a quiet server.
    let tag = format!("ovl{:08x}", rand::random::<u32>());
    let run = Arc::new(Run::new(true, 60));
    let mut pairs = Vec::with_capacity(options.pairs);
    for index in 0..options.pairs {
        pairs.push(Pair::new(
            run.clone(),
            DispatchMode::Thread,
            (&options.url, &options.url),
            &tag,
            index,
            16,
        )?);
    }
    let token = options.token.clone();
    let logins = runtime.block_on(async {
        let all = async {
            for pair in &pairs {
                pair.login(|_: &UserId| token.clone(), LOGIN_WAIT).await?;
            }
            Ok::<_, String>(())
        };
        match tokio::time::timeout(LOGIN_WAIT * 2, all).await {
            Ok(done) => done,
            Err(_) => Err("the ordinary pairs' logins took too long".to_owned()),
        }
    });

    let abuse = Arc::new(Abuse {
        target,
        token: options.token.clone(),
        tag: tag.clone(),
        stop,
        silent: Counters::default(),
        silent_open: Default::default(),
        silent_cut_after: Mutex::new(new_histogram()?),
        spammer: Counters::default(),
        deaf: Counters::default(),
        resume: Counters::default(),
        resume_welcome: Mutex::new(new_histogram()?),
    });
    let mut tasks = Vec::new();
    let abuse_start = Instant::now();
    let outcome = logins.and_then(|()| {
        let permits = Arc::new(Semaphore::new(OPENING_AT_ONCE));
        for _ in 0..options.silent {
            tasks.push(runtime.spawn(silent(abuse.clone(), permits.clone())));
        }
        tasks.push(runtime.spawn(deaf(abuse.clone())));
        // The deaf client is online before the spammer calls it.
        let deaf_in = Instant::now() + STEP;
        while abuse.deaf.get("logged_in") == 0 && Instant::now() < deaf_in {
            std::thread::sleep(Duration::from_millis(10));
        }
        if options.spam_window > 0 {
            tasks.push(runtime.spawn(spammer(abuse.clone(), options.spam())));
        }
        for index in 0..options.resume_flooders {
            let pause = Duration::from_millis(options.resume_pause_ms);
            tasks.push(runtime.spawn(resume_flooder(abuse.clone(), index, pause)));
        }
        let in_place = Instant::now() + SETUP_WAIT;
        while abuse.silent_open.load(Ordering::Acquire) < options.silent as u64
            && Instant::now() < in_place
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        driver::drive(
            &run,
            &pairs,
            Some(options.rate),
            options.warmup_time(),
            options.duration_time(),
            &mut Progress::new(false),
        )
    });
    let spam_sent_during = abuse.spammer.get("sent");
    let resumes_during: u64 = abuse.resume.0.lock().values().sum();
    let silent_open = abuse.silent_open.load(Ordering::Acquire);
    let abused_secs = abuse_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    run.finish();
    runtime.block_on(async {
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ = tokio::time::timeout(DRAIN, all).await;
    });
    for pair in &pairs {
        pair.close();
    }
    let _ = stop_probes.send(true);
    let (server_rss, admin) = runtime.block_on(async {
        let rss = match rss {
            Some(task) => Some(task.await.map_err(|e| format!("rss probe: {e}"))??),
            None => None,
        };
        let admin = match admin {
            Some(task) => Some(task.await.map_err(|e| format!("admin probe: {e}"))??),
            None => None,
        };
        Ok::<_, String>((rss, admin))
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    let driven = outcome?;

    let measured = run.measured_ns() as f64 / 1e9;
    let completed = run.completed_measured.load(Ordering::Relaxed);
    let per_sec = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let silent_cut_after = Summary::of(&abuse.silent_cut_after.lock());
    let resume_welcome = Summary::of(&abuse.resume_welcome.lock());
    Ok(OverloadReport {
        url: options.url.clone(),
        warmup_secs: options.warmup,
        duration_secs: measured,
        pairs: PairFigures {
            pairs: options.pairs,
            rate: options.rate,
            sent: run.sent.load(Ordering::Relaxed),
            completed,
            invitations_per_sec: per_sec(completed, measured),
            unfinished: driven.unfinished,
            latency_us: report::latencies(&pairs, driven.pacer_lag.as_ref())?,
            errors: run.errors(),
        },
        silent: SilentFigures {
            wanted: options.silent,
            open_at_end: silent_open,
            events: abuse.silent.take(),
            cut_after_us: silent_cut_after,
        },
        spammer: abuse.spammer.take(),
        spammer_sends_per_sec: per_sec(spam_sent_during, abused_secs),
        deaf: abuse.deaf.take(),
        resume: ResumeFigures {
            flooders: options.resume_flooders,
            events: abuse.resume.take(),
            attempts_per_sec: per_sec(resumes_during, abused_secs),
            welcome_us: resume_welcome,
        },
        server_rss,
        admin,
    })
}

/// One connection that never logs in; opened again when the server closes it.
async fn silent(abuse: Arc<Abuse>, permits: Arc<Semaphore>) {
    let mut first = true;
    let mut stop = abuse.stop.clone();
    while !abuse.stopped() {
        let opened = {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            if abuse.stopped() {
                return;
            }
            raw::open(&abuse.target, Instant::now() + STEP).await
        };
        let mut ws = match opened {
            Ok((ws, _)) => ws,
            Err(label) => {
                abuse.silent.add(format!("open_failed:{label}"));
                abuse.pause(Duration::from_millis(200)).await;
                continue;
            }
        };
        abuse.silent.add(if first { "opened" } else { "reopened" });
        first = false;
        abuse.silent_open.fetch_add(1, Ordering::AcqRel);
        let opened_at = Instant::now();
        let mut last_error = None;
        // Read only, to notice the close; never send.
        let cut = loop {
            tokio::select! {
                () = crate::probe::until_true(&mut stop) => break None,
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Ok(ServerFrame::Error(error)) = ServerFrame::decode(&text) {
                            last_error = Some(error.code);
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        break Some(raw::ending_label(last_error, frame.map(|f| u16::from(f.code))))
                    }
                    Some(Ok(_)) => {}
                    None => break Some(raw::ending_label(last_error, None)),
                    Some(Err(e)) => break Some(raw::ws_label("silent", &e)),
                }
            }
        };
        abuse.silent_open.fetch_sub(1, Ordering::AcqRel);
        let Some(label) = cut else { return };
        abuse.silent.add(format!("cut:{label}"));
        record(&mut abuse.silent_cut_after.lock(), opened_at.elapsed());
    }
}

/// The spammer's settings.
#[derive(Clone, Copy)]
struct Spam {
    window: usize,
    max_gap: Duration,
    timeout_secs: u32,
    data_bytes: usize,
}

impl OverloadOptions {
    fn spam(&self) -> Spam {
        Spam {
            window: self.spam_window,
            max_gap: Duration::from_millis(self.spam_max_gap_ms),
            timeout_secs: self.spam_timeout_secs,
            data_bytes: self.spam_data_bytes,
        }
    }
}

/// The spammer's gap between sends after an answer: doubled (at least 1 ms,
/// at most `max`) when it was over the rate, else 3 % shorter (none below
/// 10 us).
fn next_gap(gap: Duration, over_rate: bool, max: Duration) -> Duration {
    if over_rate {
        (gap * 2).max(Duration::from_millis(1)).min(max)
    } else {
        let shorter = gap.mul_f64(0.97);
        if shorter < Duration::from_micros(10) {
            Duration::ZERO
        } else {
            shorter
        }
    }
}

/// Acknowledge every this many frames (acks count against the rate too).
const ACK_EVERY: u64 = 256;

/// Logs in and sends invitations to the deaf client and an offline user as
/// fast as the server's rate allows (the gap between sends follows its
/// RATE_LIMITED answers); logs in again when the server closes it.
async fn spammer(abuse: Arc<Abuse>, spam: Spam) {
    let (me, deaf, ghost) = match (abuse.user("spam"), abuse.user("deaf"), abuse.user("ghost")) {
        (Ok(me), Ok(deaf), Ok(ghost)) => (me, deaf, ghost),
        _ => {
            abuse.spammer.add("bad_user_id");
            return;
        }
    };
    let mut stop = abuse.stop.clone();
    let mut next_id = 1u64;
    while !abuse.stopped() {
        let (ws, welcome_data) = match abuse.login(&me, None).await {
            Ok((ws, welcome)) => (ws, spam.data_bytes.min(welcome.limits.max_extended_data)),
            Err(label) => {
                abuse.spammer.add(format!("login_failed:{label}"));
                abuse.pause(Duration::from_millis(500)).await;
                continue;
            }
        };
        abuse.spammer.add("logins");
        let mut request = SendInvitation::new(vec![deaf.clone(), ghost.clone()], spam.timeout_secs);
        request.extended_data = Text::from("x".repeat(welcome_data));
        let (mut sink, mut frames) = ws.split();
        let mut in_flight = 0usize;
        let mut gap = Duration::ZERO;
        let mut next_at = Instant::now();
        let (mut highest_seq, mut acked) = (0u64, 0u64);
        let mut last_error = None;
        let ended = loop {
            let free = in_flight < spam.window;
            tokio::select! {
                () = crate::probe::until_true(&mut stop) => break None,
                () = sleep_until(next_at), if free => {
                    let frame = ClientFrame::Send { id: next_id, request: request.clone() };
                    next_id += 1;
                    let message = match raw::text_frame(&frame) {
                        Ok(message) => message,
                        Err(_) => break Some("encode_failed".to_owned()),
                    };
                    match tokio::time::timeout(STEP, sink.send(message)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break Some(raw::ws_label("send", &e)),
                        Err(_) => break Some("send_timeout".to_owned()),
                    }
                    in_flight += 1;
                    next_at = Instant::now() + gap;
                    abuse.spammer.add("sent");
                }
                frame = frames.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(frame))) => {
                            break Some(raw::ending_label(last_error, frame.map(|f| u16::from(f.code))))
                        }
                        Some(Ok(_)) => continue,
                        None => break Some(raw::ending_label(last_error, None)),
                        Some(Err(e)) => break Some(raw::ws_label("read", &e)),
                    };
                    match ServerFrame::decode(&text) {
                        Ok(ServerFrame::Result { seq, error, .. }) => {
                            highest_seq = highest_seq.max(seq);
                            in_flight = in_flight.saturating_sub(1);
                            let label = match error {
                                None => "ok".to_owned(),
                                // The quota and the rate share the code; the
                                // message tells them apart.
                                Some(error) if error.code == beckon::ErrorCode::RateLimited as i32
                                    && !error.message.contains("invitations open") => "rate_limited".to_owned(),
                                Some(error) if error.code == beckon::ErrorCode::RateLimited as i32 => "quota_refused".to_owned(),
                                Some(error) => format!("error:{}", raw::error_name(error.code)),
                            };
                            gap = next_gap(gap, label == "rate_limited", spam.max_gap);
                            abuse.spammer.add(label);
                        }
                        Ok(ServerFrame::Push { seq, .. } | ServerFrame::Snapshot { seq, .. }) => {
                            highest_seq = highest_seq.max(seq);
                            abuse.spammer.add("pushes");
                        }
                        Ok(ServerFrame::Error(error)) => last_error = Some(error.code),
                        Ok(_) => {}
                        Err(_) => abuse.spammer.add("undecodable_frame"),
                    }
                    if highest_seq >= acked + ACK_EVERY {
                        let ack = ClientFrame::Ack { seq: highest_seq };
                        if let Ok(message) = raw::text_frame(&ack) {
                            if sink.send(message).await.is_ok() {
                                acked = highest_seq;
                                abuse.spammer.add("acks");
                            }
                        }
                    }
                }
            }
        };
        let Some(label) = ended else { return };
        abuse.spammer.add(format!("cut:{label}"));
        abuse.pause(Duration::from_millis(200)).await;
    }
}

/// Logs in, then never reads until the run stops; then reads what is left in
/// its socket (at most 3 s) to see whether the server dropped it.
async fn deaf(abuse: Arc<Abuse>) {
    let Ok(me) = abuse.user("deaf") else {
        abuse.deaf.add("bad_user_id");
        return;
    };
    let mut ws = match abuse.login(&me, None).await {
        Ok((ws, _)) => ws,
        Err(label) => {
            abuse.deaf.add(format!("login_failed:{label}"));
            return;
        }
    };
    abuse.deaf.add("logged_in");
    let mut stop = abuse.stop.clone();
    let () = crate::probe::until_true(&mut stop).await;
    // What piled up: count it, and see how the connection ended.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last_error = None;
    let ending = loop {
        let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(frame) => frame,
            Err(_) => break "still_open".to_owned(),
        };
        match frame {
            Some(Ok(Message::Text(text))) => match ServerFrame::decode(&text) {
                Ok(ServerFrame::Push { .. }) => abuse.deaf.add("pushes_found_after"),
                Ok(ServerFrame::Error(error)) => {
                    last_error = Some(error.code);
                    abuse.deaf.add("error_frames_found_after");
                }
                _ => abuse.deaf.add("other_frames_found_after"),
            },
            Some(Ok(Message::Close(frame))) => {
                break raw::ending_label(last_error, frame.map(|f| u16::from(f.code)))
            }
            Some(Ok(_)) => {}
            None => break raw::ending_label(last_error, None),
            Some(Err(e)) => break raw::ws_label("read", &e),
        }
    };
    abuse.deaf.add(format!("ended:{ending}"));
}

/// Sends `hello` with a resume of a session it cannot have, over and over:
/// even flooders make a session secret up each time; odd ones log in once,
/// log out, and keep resuming that ended session. Each welcome is dropped at
/// once (no logout).
async fn resume_flooder(abuse: Arc<Abuse>, index: usize, pause: Duration) {
    let Ok(me) = abuse.user(&format!("resume{index}")) else {
        abuse.resume.add("bad_user_id");
        return;
    };
    let made_up = index % 2 == 0;
    let old_session = if made_up {
        None
    } else {
        match ended_session(&abuse, &me).await {
            Ok(session) => Some(session),
            Err(label) => {
                abuse.resume.add(format!("setup_failed:{label}"));
                return;
            }
        }
    };
    while !abuse.stopped() {
        let session = match &old_session {
            Some(session) => session.clone(),
            None => format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
        };
        let resume = Resume { session, seq: 1 };
        let start = Instant::now();
        let attempt = async {
            let deadline = start + STEP;
            let (mut ws, _) = raw::open(&abuse.target, deadline).await?;
            let device = raw::device_id("d")?;
            let login = Login {
                user: &me,
                device: &device,
                token: &abuse.token,
                resume: Some(resume),
            };
            raw::hello(&mut ws, login, deadline).await
        };
        match attempt.await {
            Ok(welcome) => {
                record(&mut abuse.resume_welcome.lock(), start.elapsed());
                abuse.resume.add(if welcome.resumed {
                    "welcomed_resumed"
                } else {
                    "welcomed_fresh"
                });
            }
            Err(label) => {
                abuse.resume.add(label);
                abuse.pause(Duration::from_millis(50)).await;
            }
        }
        if !pause.is_zero() {
            abuse.pause(pause).await;
        }
    }
}

/// Logs in and out, returning the session secret of the ended session.
async fn ended_session(abuse: &Abuse, me: &UserId) -> Result<String, String> {
    let start = Instant::now();
    let deadline = start + STEP;
    let (mut ws, _) = raw::open(&abuse.target, deadline).await?;
    let device = raw::device_id("d")?;
    let login = Login {
        user: me,
        device: &device,
        token: &abuse.token,
        resume: None,
    };
    let welcome = raw::hello(&mut ws, login, deadline).await?;
    raw::send(&mut ws, &ClientFrame::Logout { id: 1 }, STEP).await?;
    // The result, then the server closes.
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Ok(ServerFrame::Result { error, .. }) = ServerFrame::decode(&text) {
                    if let Some(error) = error {
                        return Err(format!("logout:{}", raw::error_name(error.code)));
                    }
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break,
            Err(_) => return Err("logout_timeout".to_owned()),
        }
    }
    Ok(welcome.session)
}

#[cfg(test)]
mod tests {
    use super::next_gap;
    use std::time::Duration;

    #[test]
    fn the_spam_gap_follows_the_rate() {
        let max = Duration::from_millis(100);
        let mut gap = next_gap(Duration::ZERO, true, max);
        assert_eq!(gap, Duration::from_millis(1));
        for _ in 0..20 {
            gap = next_gap(gap, true, max);
        }
        assert_eq!(gap, max);
        for _ in 0..1000 {
            gap = next_gap(gap, false, max);
        }
        assert_eq!(gap, Duration::ZERO);
    }
}
