//! `beckon` against a real `beckon-server` on 127.0.0.1: inviting, listening
//! (automatic, printing only, and interactive on a pseudo-terminal),
//! cancelling with Ctrl-C, tokens, and argument errors. Exit codes and
//! --json lines as docs/CLI.md promises them.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rexpect::process::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use serde_json::Value;

use common::*;

const USAGE: i32 = 2;
const NOT_ACCEPTED: i32 = 3;
const CANCELLED: i32 = 4;
const SERVER: i32 = 5;

fn command(verb: &str, url: &str, user: &str, token: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec![verb.to_owned()];
    args.extend(login_args(url, user, token));
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

/// `beckon listen --json` for `user`, once it said it is ready and the
/// server counts its device.
fn listening(server: &Server, user: &str, rest: &[&str]) -> Run {
    let mut args = vec!["--json"];
    args.extend_from_slice(rest);
    let mut run = Run::start(&command("listen", &server.url(), user, "t", &args));
    let ready = run.expect_json("ready", |v| v["event"] == "ready");
    assert_eq!(ready["user_id"], user, "{ready}");
    assert_eq!(ready["server"], server.url().as_str(), "{ready}");
    server.wait_devices(user, 1);
    run
}

fn of<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|v| v["event"] == name).collect()
}

/// (user_id, state) of every `state` event, in order.
fn states(events: &[Value]) -> Vec<(String, String)> {
    of(events, "state")
        .iter()
        .map(|v| {
            (
                v["user_id"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(user: &str, state: &str) -> (String, String) {
    (user.to_owned(), state.to_owned())
}

#[test]
fn an_invitation_accepted_by_an_auto_accepting_listener_exits_0() {
    let server = Server::dev();
    let listen = listening(
        &server,
        "bob",
        &["--auto-accept", "--count", "1", "--data", "on my way"],
    );
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--json", "--timeout", "10", "--data", "video"],
    ));
    assert_eq!(invite.code, Some(0), "{invite:#?}");
    let events = invite.json();
    assert_eq!(
        invite.events(),
        ["sent", "state", "state", "ended"],
        "{invite:#?}"
    );
    let id = events[0]["invitation_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{}", events[0]);
    assert!(events.iter().all(|e| e["invitation_id"] == id.as_str()));
    assert_eq!(events[0]["inviter"], "alice");
    assert_eq!(events[0]["invitees"], serde_json::json!(["bob"]));
    assert_eq!(events[0]["timeout_secs"], 10);
    assert_eq!(events[0]["extended_data"], "video");
    assert_eq!(
        states(&events),
        [pair("bob", "RECEIVED"), pair("bob", "ACCEPTED")]
    );
    // The answer's extended data reaches the inviter.
    assert_eq!(events[2]["extended_data"], "on my way");
    assert_eq!(events[3]["outcome"], "accepted");
    assert_eq!(events[3]["accepted"], serde_json::json!(["bob"]));
    assert_eq!(events[3]["exit_code"], 0);
    assert!(invite.stderr.is_empty(), "{}", invite.stderr);

    let listen = listen.finish();
    assert_eq!(listen.code, Some(0), "{listen:#?}");
    let heard = listen.json();
    let invitation = of(&heard, "invitation");
    assert_eq!(invitation.len(), 1, "{listen:#?}");
    assert_eq!(invitation[0]["invitation_id"], id.as_str());
    assert_eq!(invitation[0]["inviter"], "alice");
    assert_eq!(invitation[0]["extended_data"], "video");
    let seconds_left = invitation[0]["seconds_left"].as_u64().unwrap();
    assert!((1..=10).contains(&seconds_left), "{}", invitation[0]);
    let answered = of(&heard, "answered");
    assert_eq!(answered.len(), 1, "{listen:#?}");
    assert_eq!(answered[0]["answer"], "accepted");
    assert_eq!(answered[0]["invitation_id"], id.as_str());
    let stopped = heard.last().unwrap();
    assert_eq!(stopped["event"], "stopped", "{listen:#?}");
    assert_eq!(stopped["reason"], "count");
    assert_eq!(stopped["handled"], 1);
}

#[test]
fn a_refusal_exits_3_and_human_output_has_no_colours_off_a_terminal() {
    let server = Server::dev();
    let listen = listening(&server, "bob", &["--auto-refuse", "--count", "1"]);
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--timeout", "10"],
    ));
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    let text = invite.stdout.join("\n");
    assert!(text.contains("sent to bob, ringing for 10 s"), "{text}");
    assert!(text.contains("bob: RECEIVED"), "{text}");
    assert!(text.contains("bob: REJECTED (refused)"), "{text}");
    assert_eq!(invite.stdout.last().unwrap(), "nobody accepted", "{text}");
    // Not a terminal: no colours, no countdown line.
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(!text.contains("left"), "{text}");
    let listen = listen.finish();
    assert_eq!(listen.code, Some(0), "{listen:#?}");
    let answered = of(&listen.json(), "answered")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(answered.len(), 1, "{listen:#?}");
    assert_eq!(answered[0]["answer"], "refused");
}

#[test]
fn an_offline_invitee_is_offline_then_times_out_and_the_invite_exits_3() {
    let server = Server::dev();
    let started = Instant::now();
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["carol", "--json", "--timeout", "2"],
    ));
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    let events = invite.json();
    assert_eq!(
        states(&events),
        [pair("carol", "OFFLINE"), pair("carol", "TIMEOUT")],
        "{invite:#?}"
    );
    // Without --online-only the invitation waits for carol until the
    // deadline.
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let ended = events.last().unwrap();
    assert_eq!(ended["event"], "ended");
    assert_eq!(ended["outcome"], "not_accepted");
    assert_eq!(ended["exit_code"], NOT_ACCEPTED);
    assert_eq!(ended["accepted"], serde_json::json!([]));
}

#[test]
fn online_only_ends_at_once_when_every_invitee_is_offline() {
    let server = Server::dev();
    let started = Instant::now();
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &[
            "carol",
            "dave",
            "--json",
            "--timeout",
            "60",
            "--online-only",
        ],
    ));
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    assert!(started.elapsed() < Duration::from_secs(30), "it waited");
    let events = invite.json();
    assert_eq!(
        states(&events),
        [pair("carol", "OFFLINE"), pair("dave", "OFFLINE")],
        "{invite:#?}"
    );
    assert_eq!(events.last().unwrap()["outcome"], "not_accepted");
}

#[test]
fn a_listener_that_only_prints_lets_the_invitation_time_out() {
    let server = Server::dev();
    // Not a terminal and no --auto-*: it prints and never answers.
    let listen = listening(&server, "bob", &["--count", "1"]);
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--json", "--timeout", "2"],
    ));
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    assert_eq!(
        states(&invite.json()),
        [pair("bob", "RECEIVED"), pair("bob", "TIMEOUT")],
        "{invite:#?}"
    );
    let listen = listen.finish();
    assert_eq!(listen.code, Some(0), "{listen:#?}");
    assert_eq!(
        listen.events(),
        // Its own RECEIVED (the receipt), then the timeout; the count is
        // reached there, before the TIMEOUT state change that follows it.
        ["ready", "invitation", "state", "timeout", "stopped"],
        "{listen:#?}"
    );
    let heard = listen.json();
    assert_eq!(of(&heard, "timeout")[0]["inviter"], "alice");
    assert_eq!(states(&heard), [pair("bob", "RECEIVED")]);
    assert!(of(&heard, "answered").is_empty(), "{listen:#?}");
}

#[test]
fn ctrl_c_cancels_a_ringing_invitation_and_exits_4() {
    let server = Server::dev();
    let listen = listening(&server, "bob", &["--count", "1"]);
    let mut invite = Run::start(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--json", "--timeout", "30"],
    ));
    invite.expect_json("bob RECEIVED", |v| {
        v["event"] == "state" && v["user_id"] == "bob" && v["state"] == "RECEIVED"
    });
    let started = Instant::now();
    // SAFETY: a plain kill(2) of our own child, which is still running
    // (it exits only once the invitation ends, 30 s from now).
    let sent = unsafe { libc::kill(invite.pid() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
    let invite = invite.finish();
    assert_eq!(invite.code, Some(CANCELLED), "{invite:#?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let events = invite.json();
    assert_eq!(
        states(&events),
        [pair("bob", "RECEIVED"), pair("bob", "CANCELLED")],
        "{invite:#?}"
    );
    let ended = events.last().unwrap();
    assert_eq!(ended["outcome"], "cancelled");
    assert_eq!(ended["exit_code"], CANCELLED);

    let listen = listen.finish();
    assert_eq!(listen.code, Some(0), "{listen:#?}");
    let heard = listen.json();
    let cancelled = of(&heard, "cancelled");
    assert_eq!(cancelled.len(), 1, "{listen:#?}");
    assert_eq!(cancelled[0]["inviter"], "alice");
    assert_eq!(cancelled[0]["invitation_id"], ended["invitation_id"]);
}

/// `beckon` in a pseudo-terminal: its stdin, stdout and stderr are the
/// terminal, as for a person typing.
fn on_a_terminal(args: &[String]) -> PtySession {
    let mut pty = spawn_command(beckon_command(args, &[]), Some(WAIT.as_millis() as u64))
        .expect("start beckon on a pseudo-terminal");
    // Dropping the session kills the process: never wait for ever.
    pty.process_mut().set_kill_timeout(Some(2_000));
    pty
}

/// The exit code of a process on a pseudo-terminal, within WAIT.
fn exit_code(pty: &PtySession) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        match pty.process().status() {
            Some(WaitStatus::Exited(_, code)) => return code,
            Some(WaitStatus::StillAlive) | None => {}
            Some(other) => panic!("beckon ended by {other:?}"),
        }
        assert!(Instant::now() < deadline, "beckon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_a_terminal_listen_asks_and_a_typed_yes_accepts() {
    let server = Server::dev();
    let mut pty = on_a_terminal(&command(
        "listen",
        &server.url(),
        "bob",
        "t",
        &["--count", "1"],
    ));
    let greeting = pty.exp_string("asking for each invitation").unwrap();
    // A terminal gets colours (the user's name is bold).
    assert!(greeting.contains("\x1b["), "{greeting:?}");
    server.wait_devices("bob", 1);
    let invite = Run::start(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--json", "--timeout", "20", "--data", "video"],
    ));
    let before = pty.exp_string("accept? [y/n]").unwrap();
    assert!(before.contains("alice"), "{before:?}");
    assert!(before.contains("\"video\""), "{before:?}");
    // Anything but yes or no asks again.
    pty.send_line("maybe").unwrap();
    pty.exp_string("please answer y or n").unwrap();
    pty.send_line("y").unwrap();
    pty.exp_string("accepted invitation").unwrap();
    let invite = invite.finish();
    assert_eq!(invite.code, Some(0), "{invite:#?}");
    assert_eq!(
        states(&invite.json()),
        [pair("bob", "RECEIVED"), pair("bob", "ACCEPTED")]
    );
    assert_eq!(exit_code(&pty), 0);
}

#[test]
fn on_a_terminal_listen_takes_no_for_an_answer() {
    let server = Server::dev();
    let mut pty = on_a_terminal(&command(
        "listen",
        &server.url(),
        "bob",
        "t",
        &["--count", "1"],
    ));
    pty.exp_string("asking for each invitation").unwrap();
    server.wait_devices("bob", 1);
    let invite = Run::start(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["bob", "--json", "--timeout", "20"],
    ));
    pty.exp_string("accept? [y/n]").unwrap();
    pty.send_line("n").unwrap();
    pty.exp_string("refused invitation").unwrap();
    let invite = invite.finish();
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    assert_eq!(exit_code(&pty), 0);
}

#[test]
fn on_a_terminal_invite_counts_down() {
    let server = Server::dev();
    let mut pty = on_a_terminal(&command(
        "invite",
        &server.url(),
        "alice",
        "t",
        &["carol", "--timeout", "3"],
    ));
    pty.exp_string("carol: ").unwrap();
    // The status line, rewritten in place with a carriage return.
    let (_, countdown) = pty
        .exp_regex(r"\r\x1b\[Kwaiting for carol: \d s left")
        .unwrap();
    assert!(countdown.contains("s left"), "{countdown:?}");
    pty.exp_string("nobody accepted").unwrap();
    assert_eq!(exit_code(&pty), NOT_ACCEPTED);
}

const SECRET: &str = "a-long-random-secret-for-the-cli-tests";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The token `beckon token` printed, checked with the library's verifier.
fn minted(finished: &Finished, user: &str, ttl: u64) -> String {
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    assert_eq!(finished.stdout.len(), 1, "{finished:#?}");
    let token = finished.stdout[0].clone();
    let user = beckon::protocol::UserId::parse(user, "user").unwrap();
    let expiry = beckon::token::verify(SECRET.as_bytes(), &user, &token, now())
        .unwrap_or_else(|e| panic!("{token}: {e}"));
    let wanted = now() + ttl;
    assert!(expiry + 5 >= wanted && expiry <= wanted, "expiry {expiry}");
    token
}

#[test]
fn minted_tokens_log_in_to_a_server_with_that_secret() {
    let dir = TempDir::new("secret");
    let secret_file = dir.0.join("secret");
    // The server, like `beckon token`, ignores the file's last newline.
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let alice = minted(
        &beckon(&[
            "token",
            "--secret-file",
            secret_path,
            "--user",
            "alice",
            "--ttl",
            "300",
        ]),
        "alice",
        300,
    );
    let bob = minted(
        &beckon_with(
            &["token", "--user", "bob", "--ttl", "600"],
            &[("BECKON_SECRET", SECRET)],
        ),
        "bob",
        600,
    );
    // The same recipe as the server's own `token` command.
    let server_token = std::process::Command::new(server_bin())
        .args(["token", "--user", "alice", "--ttl", "300"])
        .args(["--secret-file", secret_path])
        .output()
        .unwrap();
    let server_token = String::from_utf8(server_token.stdout).unwrap();
    let (ours, theirs) = (
        alice.rsplit_once('.').unwrap().0,
        server_token.trim().rsplit_once('.').unwrap().0,
    );
    // Same version and (give or take the second that may have passed)
    // expiry.
    assert_eq!(&ours[..8], &theirs[..8], "{alice} vs {server_token}");

    let server = Server::with_secret_file(&secret_file);
    let listen_args = command(
        "listen",
        &server.url(),
        "bob",
        &bob,
        &["--auto-accept", "--count", "1", "--json"],
    );
    let mut listen = Run::start(&listen_args);
    listen.expect_json("ready", |v| v["event"] == "ready");
    server.wait_devices("bob", 1);
    let invite = beckon(&command(
        "invite",
        &server.url(),
        "alice",
        &alice,
        &["bob", "--json", "--timeout", "10"],
    ));
    assert_eq!(invite.code, Some(0), "{invite:#?}");
    assert_eq!(invite.events(), ["sent", "state", "state", "ended"]);
    assert_eq!(listen.finish().code, Some(0));

    // Bob's token is not alice's: the login fails, and says why.
    let url = server.url();
    let refused = beckon(&command(
        "invite",
        &url,
        "alice",
        &bob,
        &["bob", "--timeout", "10", "--json"],
    ));
    assert_eq!(refused.code, Some(SERVER), "{refused:#?}");
    assert!(
        refused
            .stderr
            .starts_with(&format!("beckon: login as alice at {url}: AUTH_FAILED: ")),
        "{}",
        refused.stderr
    );
    let error = refused.json();
    assert_eq!(error.len(), 1, "{refused:#?}");
    assert_eq!(error[0]["event"], "error");
    assert_eq!(error[0]["code"], "AUTH_FAILED");
    assert_eq!(error[0]["exit_code"], SERVER);
    let listen_refused = beckon(&command("listen", &url, "bob", "not-a-token", &[]));
    assert_eq!(listen_refused.code, Some(SERVER), "{listen_refused:#?}");
    assert!(
        listen_refused
            .stderr
            .contains(&format!("login as bob at {url}: AUTH_FAILED")),
        "{}",
        listen_refused.stderr
    );
}

#[test]
fn token_refuses_what_a_server_would_not_take() {
    let short = beckon_with(
        &["token", "--user", "bob", "--ttl", "60"],
        &[("BECKON_SECRET", "short")],
    );
    assert_eq!(short.code, Some(USAGE), "{short:#?}");
    assert!(short.stderr.contains("at least 16"), "{}", short.stderr);
    let none = beckon(&["token", "--user", "bob", "--ttl", "60"]);
    assert_eq!(none.code, Some(USAGE), "{none:#?}");
    assert!(none.stderr.contains("no secret"), "{}", none.stderr);
    let ttl = beckon_with(
        &["token", "--user", "bob", "--ttl", "0"],
        &[("BECKON_SECRET", SECRET)],
    );
    assert_eq!(ttl.code, Some(USAGE), "{ttl:#?}");
    assert!(ttl.stderr.contains("--ttl 0"), "{}", ttl.stderr);
    let missing = beckon(&[
        "token",
        "--user",
        "bob",
        "--ttl",
        "60",
        "--secret-file",
        "/nonexistent/beckon-secret",
    ]);
    assert_eq!(missing.code, Some(1), "{missing:#?}");
    assert!(
        missing
            .stderr
            .contains("--secret-file /nonexistent/beckon-secret: cannot read it"),
        "{}",
        missing.stderr
    );
}

/// `beckon invite` with bad arguments: refused before any connection (the
/// URL's port is closed), exit code 2, and the message on stderr.
fn refused_invite(rest: &[&str]) -> String {
    let url = format!("ws://127.0.0.1:{}", closed_port());
    let finished = beckon(&command("invite", &url, "alice", "t", rest));
    assert_eq!(finished.code, Some(USAGE), "{rest:?}: {finished:#?}");
    assert!(finished.stdout.is_empty(), "{finished:#?}");
    finished.stderr
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let none = refused_invite(&[]);
    assert!(
        none.contains("required arguments were not provided") && none.contains("<INVITEE>"),
        "{none}"
    );
    for timeout in ["0", "601"] {
        let message = refused_invite(&["bob", "--timeout", timeout]);
        assert_eq!(
            message.trim(),
            format!(
                "beckon: --timeout {timeout}: INVALID_ARGUMENT: config.timeout_seconds: \
                 {timeout} s is outside 1..=600 s"
            )
        );
    }
    let word = refused_invite(&["bob", "--timeout", "soon"]);
    assert!(
        word.contains("invalid value 'soon' for '--timeout <SECS>'"),
        "{word}"
    );
    let bad_user = refused_invite(&["bob", "b ob"]);
    assert_eq!(
        bad_user.trim(),
        "beckon: invitee 'b ob': byte 1 is outside [A-Za-z0-9_.@:+-]"
    );
    let myself = refused_invite(&["bob", "alice"]);
    assert!(
        myself.contains("the inviter 'alice' may not invite itself"),
        "{myself}"
    );
    let big = "x".repeat(9000);
    let data = refused_invite(&["bob", "--data", &big]);
    assert!(
        data.contains("PAYLOAD_TOO_LARGE") && data.contains("extended_data"),
        "{data}"
    );

    let memory = beckon(&command("invite", "memory://hub", "alice", "t", &["bob"]));
    assert_eq!(memory.code, Some(USAGE), "{memory:#?}");
    assert!(
        memory
            .stderr
            .starts_with("beckon: --server memory://hub: a memory:// hub lives inside one process"),
        "{}",
        memory.stderr
    );
    let http = beckon(&command(
        "invite",
        "http://127.0.0.1:1",
        "alice",
        "t",
        &["bob"],
    ));
    assert_eq!(http.code, Some(USAGE), "{http:#?}");
    assert!(http.stderr.contains("not a server URL"), "{}", http.stderr);
    let user = beckon(&command("listen", "ws://127.0.0.1:1", "al ice", "t", &[]));
    assert_eq!(user.code, Some(USAGE), "{user:#?}");
    assert!(user.stderr.contains("--user 'al ice'"), "{}", user.stderr);
    let both = beckon(&command(
        "listen",
        "ws://127.0.0.1:1",
        "bob",
        "t",
        &["--auto-accept", "--auto-refuse"],
    ));
    assert_eq!(both.code, Some(USAGE), "{both:#?}");
    assert!(
        both.stderr.contains("cannot be used with"),
        "{}",
        both.stderr
    );
    let count = beckon(&command(
        "listen",
        "ws://127.0.0.1:1",
        "bob",
        "t",
        &["--count", "0"],
    ));
    assert_eq!(count.code, Some(USAGE), "{count:#?}");
    assert!(count.stderr.contains("--count"), "{}", count.stderr);
    // Nothing says which server: neither a flag nor BECKON_SERVER.
    let no_server = beckon(&["invite", "--user", "alice", "--token", "t", "bob"]);
    assert_eq!(no_server.code, Some(USAGE), "{no_server:#?}");
    assert!(
        no_server.stderr.contains("--server"),
        "{}",
        no_server.stderr
    );
}

#[test]
fn the_environment_stands_in_for_the_login_flags() {
    let server = Server::dev();
    let url = server.url();
    let invite = beckon_with(
        &[
            "invite",
            "carol",
            "--json",
            "--timeout",
            "30",
            "--online-only",
        ],
        &[
            ("BECKON_SERVER", url.as_str()),
            ("BECKON_USER", "alice"),
            ("BECKON_TOKEN", "t"),
        ],
    );
    assert_eq!(invite.code, Some(NOT_ACCEPTED), "{invite:#?}");
    assert_eq!(invite.json()[0]["inviter"], "alice", "{invite:#?}");
}

#[test]
fn an_unreachable_server_exits_5_naming_the_login() {
    let url = format!("ws://127.0.0.1:{}", closed_port());
    for verb in ["invite", "listen"] {
        let rest: &[&str] = if verb == "invite" { &["bob"] } else { &[] };
        let finished = beckon(&command(verb, &url, "alice", "t", rest));
        assert_eq!(finished.code, Some(SERVER), "{finished:#?}");
        assert!(
            finished
                .stderr
                .starts_with(&format!("beckon: login as alice at {url}: NETWORK: ")),
            "{}",
            finished.stderr
        );
    }
}

#[test]
fn help_documents_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["invite", "--help"],
        &["listen", "--help"],
    ] {
        let help = beckon(args);
        assert_eq!(help.code, Some(0), "{help:#?}");
        let text = help.stdout.join("\n");
        for line in [
            "Exit codes:",
            "0  invite: at least one invitee accepted",
            "2  bad arguments",
            "3  invite: the invitation ended and nobody accepted",
            "4  invite: cancelled",
            "5  the server",
        ] {
            assert!(text.contains(line), "{args:?}: no {line:?} in {text}");
        }
    }
}
