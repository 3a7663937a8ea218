//! `beckon-bench`: a load tool. It drives inviter/invitee pairs of
//! `beckon::Client`s against `memory://NAME`, a `ws://` server, several nodes
//! of one deployment (`--url` repeated: each invitee on the node after its
//! inviter's), or a server it starts itself (`--spawn-server`), and reports complete invitations per
//! second, latency percentiles and errors by code (see benches/README.md).
//!
//! - [`options`]: the flags and their bounds;
//! - [`run`]: the shared clock, phase, counters and errors;
//! - [`pair`]: one inviter and one invitee and their handlers;
//! - [`driver`]: closed-loop or paced sending through warm-up, measure, drain;
//! - [`nodes`]: waiting for presence to spread between nodes;
//! - [`report`], [`cpu`] (CPU time by thread group), [`server`].

mod cpu;
mod driver;
mod idle;
mod idle_clients;
mod nodes;
mod options;
mod overload;
mod pair;
mod probe;
mod raw;
mod report;
mod run;
mod server;
mod sink;
mod store;
mod storm;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::UserId;
use clap::{Parser, Subcommand};
use serde::Serialize;

use options::{Options, LOGIN_WAIT};
use pair::Pair;
use report::Report;
use run::{now_ns, Run};

/// The load tool's flags alone (as ever), or one of the server tools.
#[derive(Parser)]
#[command(
    name = "beckon-bench",
    version,
    about = "Drives inviter/invitee client pairs against a Beckon hub and reports complete invitations per second and their latency; or, with a subcommand, measures a running beckon-server (idle memory, connection storm, overload)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    tool: Option<Tool>,
    #[command(flatten)]
    load: Options,
}

#[derive(Subcommand)]
enum Tool {
    /// Log in N devices over raw WebSockets and hold them idle: the server's
    /// memory per idle device (with --server-pid).
    Idle(idle::IdleOptions),
    /// Start N connections at the same instant: connect and welcome times,
    /// clean refusals (HTTP 503) and other failures, admin latency.
    Storm(storm::StormOptions),
    /// Silent connections, an invitation spammer, a client that never reads
    /// and a resume flood, while ordinary pairs run paced: their latency.
    Overload(overload::OverloadOptions),
    /// N library clients on an in-process hub, each rung once, then held
    /// idle: the process's CPU while nothing happens.
    IdleClients(idle_clients::IdleClientsOptions),
    /// The SQLite store alone: its write rate for N invitations, and the
    /// time a start takes to recover them.
    Store(store::StoreOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.tool {
        None => load(&cli.load),
        Some(Tool::Idle(options)) => {
            watchdog(options.limit());
            finish(
                idle::run(options),
                options.json,
                idle::IdleReport::text,
                idle::IdleReport::ok,
            )
        }
        Some(Tool::Storm(options)) => {
            watchdog(options.limit());
            finish(
                storm::run(options),
                options.json,
                storm::StormReport::text,
                storm::StormReport::ok,
            )
        }
        Some(Tool::IdleClients(options)) => {
            watchdog(options.limit());
            finish(
                idle_clients::run(options),
                options.json,
                idle_clients::IdleClientsReport::text,
                idle_clients::IdleClientsReport::ok,
            )
        }
        Some(Tool::Store(options)) => {
            watchdog(options.limit());
            finish(
                store::run(options),
                options.json,
                store::StoreReport::text,
                store::StoreReport::ok,
            )
        }
        Some(Tool::Overload(options)) => {
            watchdog(options.limit());
            finish(
                overload::run(options),
                options.json,
                overload::OverloadReport::text,
                overload::OverloadReport::ok,
            )
        }
    }
}

/// Prints a server tool's report (text or one JSON object); the exit status
/// says whether the run measured anything.
fn finish<R: Serialize>(
    outcome: Result<R, String>,
    json: bool,
    text: fn(&R) -> String,
    ok: fn(&R) -> bool,
) -> ExitCode {
    let report = match outcome {
        Ok(report) => report,
        Err(message) => {
            eprintln!("beckon-bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string(&report) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("beckon-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", text(&report));
    }
    if ok(&report) {
        ExitCode::SUCCESS
    } else {
        eprintln!("beckon-bench: the run measured nothing (see the report)");
        ExitCode::FAILURE
    }
}

/// The invitation load tool (no subcommand).
fn load(options: &Options) -> ExitCode {
    match bench(options) {
        Ok(report) => {
            if options.json {
                match serde_json::to_string(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("beckon-bench: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.text());
            }
            if report.completed == 0 {
                eprintln!("beckon-bench: no invitation completed");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("beckon-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Gives each user its login token.
type TokenSource = Box<dyn Fn(&UserId) -> String>;

fn token_source(options: &Options) -> Result<TokenSource, String> {
    let Some(path) = &options.secret_file else {
        let token = options.token.clone();
        return Ok(Box::new(move |_| token.clone()));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--secret-file {}: {e}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    // Long enough for any run, short enough to be harmless if it leaks.
    let expiry = now + 3600;
    Ok(Box::new(move |user| {
        beckon::token::mint(&secret, user, expiry)
    }))
}

/// What closing the clients and a spawned server may take at most.
const TEARDOWN: Duration = Duration::from_secs(30);

/// The last guard of "the tool always stops by itself": if the run is not over
/// by `limit` from now, the process exits with a message.
fn watchdog(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name("bench-watchdog".into())
        .spawn(move || {
            std::thread::sleep(limit);
            eprintln!("beckon-bench: the run did not end within {limit:?}; giving up");
            std::process::exit(3);
        });
    if let Err(e) = spawned {
        eprintln!("beckon-bench: no watchdog thread ({e}); running without");
    }
}

fn bench(options: &Options) -> Result<Report, String> {
    options.validate()?;
    now_ns(); // starts the run's clock
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.server_threads)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let sink = if options.server_webhook {
        Some(sink::start(&runtime)?)
    } else {
        None
    };
    let (server, url) = if options.spawn_server {
        let (server, url) = server::spawn(
            &runtime,
            options.server_store,
            options.server_durability,
            sink.as_ref().map(|s| s.addr),
        )?;
        (Some(server), url)
    } else {
        (None, options.url_label())
    };
    let token = token_source(options)?;

    let run = Arc::new(Run::new(options.rate.is_some(), options.timeout_secs));
    // Users unique to this run, so that runs against one server never meet.
    let tag = format!("bench{:08x}", rand::random::<u32>());
    let mut pairs = Vec::with_capacity(options.pairs);
    let mut setup = Ok(());
    for index in 0..options.pairs {
        let urls = if options.spawn_server {
            (url.as_str(), url.as_str())
        } else {
            options.pair_urls(index)
        };
        match Pair::new(
            run.clone(),
            options.dispatch.mode(),
            urls,
            &tag,
            index,
            options.in_flight,
        ) {
            Ok(pair) => pairs.push(pair),
            Err(e) => {
                setup = Err(e);
                break;
            }
        }
    }
    if setup.is_ok() {
        // Each login is bounded, and so are all of them together.
        let all = LOGIN_WAIT + Duration::from_millis(50) * u32::try_from(pairs.len()).unwrap_or(0);
        setup = runtime.block_on(async {
            let logins = async {
                for pair in &pairs {
                    pair.login(&token, LOGIN_WAIT).await?;
                }
                Ok(())
            };
            match tokio::time::timeout(all, logins).await {
                Ok(done) => done,
                Err(_) => Err(format!("the logins took longer than {all:?}")),
            }
        });
    }
    let mut presence_wait = None;
    if setup.is_ok() && !options.admins.is_empty() {
        match runtime.block_on(nodes::wait_for_presence(
            &pairs,
            &options.admins,
            LOGIN_WAIT,
        )) {
            Ok(waited) => presence_wait = Some(waited.as_secs_f64()),
            Err(e) => setup = Err(e),
        }
    }

    let outcome = setup.and_then(|()| {
        watchdog(options.warmup() + options.duration() + options::DRAIN + TEARDOWN);
        let mut progress = driver::Progress::new(!options.json);
        driver::drive(
            &run,
            &pairs,
            options.rate,
            options.warmup(),
            options.duration(),
            &mut progress,
        )
    });
    run.finish();
    for pair in &pairs {
        pair.close();
    }
    // What the spawned server pushed, per invitation completed (all phases).
    let pushes_per_invitation = server.as_ref().map(|server| {
        let completed = run.completed.load(Ordering::Relaxed).max(1);
        server.server.ctx.metrics.pushes.get() as f64 / completed as f64
    });
    // Webhooks: received by the sink per invitation completed (all
    // phases), and those the server dropped (its queue full).
    let webhooks = sink.as_ref().map(|sink| {
        let completed = run.completed.load(Ordering::Relaxed).max(1);
        let dropped = server
            .as_ref()
            .map(|s| server::webhooks_dropped(&s.server))
            .unwrap_or(0);
        report::Webhooks {
            received_per_invitation: sink.received.load(Ordering::Relaxed) as f64
                / completed as f64,
            dropped,
        }
    });
    let store_commits = server.as_ref().and_then(|server| {
        let (commits, changes, seconds) = server::store_commits(&server.server)?;
        let completed = run.completed.load(Ordering::Relaxed).max(1) as f64;
        let each = commits.max(1.0);
        Some(report::StoreCommits {
            commits_per_invitation: commits / completed,
            changes_per_commit: changes / each,
            commit_us: seconds * 1e6 / each,
        })
    });
    if let Some(server) = server {
        server::stop(&runtime, server);
    }
    let driven = outcome?;

    let measured_ns = run.measured_ns();
    let completed = run.completed_measured.load(Ordering::Relaxed);
    let duration_secs = measured_ns as f64 / 1e9;
    Ok(Report {
        url,
        nodes: if options.spawn_server {
            1
        } else {
            options.urls.len()
        },
        presence_wait_secs: presence_wait,
        spawned_server: options.spawn_server,
        server_store: options.spawn_server.then(|| match options.server_store {
            beckon_server::StoreKind::Memory => "memory".to_owned(),
            beckon_server::StoreKind::Sqlite => {
                format!("sqlite {:?}", options.server_durability).to_lowercase()
            }
            // Refused by `Options::validate`: a spawned server has no Redis.
            beckon_server::StoreKind::Redis => "redis".to_owned(),
        }),
        pairs: options.pairs,
        dispatch: options.dispatch,
        in_flight: options.in_flight,
        rate: options.rate,
        warmup_secs: options.warmup,
        duration_secs,
        sent: run.sent.load(Ordering::Relaxed),
        completed,
        invitations_per_sec: if duration_secs > 0.0 {
            completed as f64 / duration_secs
        } else {
            0.0
        },
        unfinished: driven.unfinished,
        window_full_waits: run.window_full.load(Ordering::Relaxed),
        latency_us: report::latencies(&pairs, driven.pacer_lag.as_ref())?,
        errors: run.errors(),
        server_pushes_per_invitation: pushes_per_invitation,
        server_commits: store_commits,
        server_webhooks: webhooks,
        cpu: cpu::Usage::between(
            &driven.cpu_before,
            &driven.cpu_after,
            duration_secs,
            completed,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::{Cli, Tool};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let mut all = vec!["beckon-bench"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map_err(|e| e.to_string())
    }

    #[test]
    fn the_load_tool_keeps_its_flags() {
        let cli = parse(&["--spawn-server", "--pairs", "4", "--rate", "100"]);
        assert!(cli
            .as_ref()
            .is_ok_and(|c| c.tool.is_none() && c.load.pairs == 4));
        assert!(parse(&[]).is_ok_and(|c| c.tool.is_none()));
    }

    #[test]
    fn subcommands_parse_and_exclude_the_load_flags() {
        let idle = parse(&["idle", "--url", "ws://127.0.0.1:1", "--devices", "10"]);
        assert!(matches!(idle, Ok(Cli { tool: Some(Tool::Idle(ref o)), .. }) if o.devices == 10));
        let storm = parse(&[
            "storm",
            "--url",
            "ws://127.0.0.1:1",
            "--admin",
            "127.0.0.1:2",
        ]);
        assert!(matches!(
            storm,
            Ok(Cli {
                tool: Some(Tool::Storm(_)),
                ..
            })
        ));
        let overload = parse(&["overload", "--url", "ws://127.0.0.1:1", "--duration", "5"]);
        assert!(matches!(
            overload,
            Ok(Cli {
                tool: Some(Tool::Overload(_)),
                ..
            })
        ));
        assert!(parse(&["--pairs", "4", "idle", "--url", "ws://127.0.0.1:1"]).is_err());
        assert!(parse(&["idle"]).is_err(), "--url is required");
    }
}
