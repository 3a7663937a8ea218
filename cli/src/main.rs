//! `beckon`: send and answer call invitations from a terminal, against a
//! `beckon-server` (docs/CLI.md). This file holds the command line and hands
//! each command to its module; the exit codes are in `failure`.

// Arguments and the network reach every path here: never unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod failure;
mod interrupt;
mod invite;
mod listen;
mod output;
mod session;
mod token;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use beckon::log::{Level, LogSink};
use clap::{ArgAction, Parser, Subcommand};
use tokio::runtime::Runtime;

use failure::{Exit, Failure};
use output::{report_error, Output};

const AFTER_HELP: &str = "\
Exit codes:
  0  invite: at least one invitee accepted; listen, token: done
  1  a local failure (a file could not be read, a bug)
  2  bad arguments (a usage error)
  3  invite: the invitation ended and nobody accepted (refused, timed out, offline)
  4  invite: cancelled (Ctrl-C while ringing, or by another device of the
     inviter) and nobody accepted
  5  the server: unreachable, login refused, a request failed, or the session ended

Environment: BECKON_SERVER, BECKON_USER, BECKON_TOKEN, BECKON_DEVICE stand
for --server, --user, --token, --device; BECKON_SECRET for `token --secret`;
NO_COLOR turns colours off. More in docs/CLI.md.";

#[derive(Parser, Debug)]
#[command(
    name = "beckon",
    version,
    about = "Send and answer Beckon call invitations from a terminal",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Print the library's log on stderr (-v: info, -vv: debug).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Invite users; print each invitee's state until every one is final.
    #[command(after_help = AFTER_HELP)]
    Invite(invite::InviteArgs),
    /// Print the invitations that ring for a user, and answer them.
    #[command(after_help = AFTER_HELP)]
    Listen(listen::ListenArgs),
    /// Mint a login token from the server's secret (as `beckon-server token`).
    #[command(after_help = AFTER_HELP)]
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are "errors" too; they exit 0.
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    log_to_stderr(cli.verbose);
    match cli.command {
        Command::Token(args) => match token::run(args) {
            Ok(token) => {
                println!("{token}");
                Exit::Ok.into()
            }
            Err(failure) => {
                eprintln!("beckon: {}", failure.message);
                failure.exit.into()
            }
        },
        Command::Invite(args) => networked(Output::new(args.json), |rt, out| {
            rt.block_on(invite::run(args, out))
        }),
        Command::Listen(args) => networked(Output::new(args.json), |rt, out| {
            rt.block_on(listen::run(args, out))
        }),
    }
}

/// Runs a command that talks to a server on a runtime of its own, then says
/// how it ended.
fn networked(
    mut out: Output,
    command: impl FnOnce(&Runtime, &mut Output) -> Result<Exit, Failure>,
) -> ExitCode {
    let result = runtime().and_then(|rt| {
        let result = command(&rt, &mut out);
        rt.shutdown_timeout(SHUTDOWN_LIMIT);
        result
    });
    finish(&mut out, result)
}

/// How long leftover tasks may delay the exit once a command is done.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

fn runtime() -> Result<Runtime, Failure> {
    // Two threads: the command's loop, and the answers and signals beside it
    // (the library runs its own runtime for the network).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::local(format!("cannot start the async runtime: {e}")))
}

fn finish(out: &mut Output, result: Result<Exit, Failure>) -> ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(failure) => {
            report_error(out, &failure);
            failure.exit.into()
        }
    }
}

/// -v: the library's log lines on stderr, for finding out why something
/// failed.
fn log_to_stderr(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => Level::Info,
        _ => Level::Debug,
    };
    let sink: LogSink = Arc::new(|level: Level, tag: &str, sub_tag: &str, message: &str| {
        eprintln!("beckon: [{level:?}] {tag}/{sub_tag}: {message}");
    });
    beckon::log::set_sink(Some(sink), level);
}
