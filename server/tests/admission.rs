//! Connection caps on a real beckon-server process: past each cap a client is
//! refused cleanly (an HTTP 503 its WebSocket handshake reads), the admin
//! address keeps answering, and places come back when connections go.

mod common;

use std::time::Duration;

use common::{ServerProcess, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How a connection attempt ended.
#[derive(Debug)]
enum Attempt {
    Open(Box<Socket>),
    /// Refused with an HTTP status during the handshake.
    Refused(u16),
    /// Anything else: a reset, a timeout (not a clean refusal).
    Failed(String),
}

async fn attempt(url: &str) -> Attempt {
    match timeout(WAIT, connect_async(url)).await {
        Ok(Ok((ws, _))) => Attempt::Open(Box::new(ws)),
        Ok(Err(WsError::Http(response))) => Attempt::Refused(response.status().as_u16()),
        Ok(Err(e)) => Attempt::Failed(e.to_string()),
        Err(_) => Attempt::Failed("no answer in time".into()),
    }
}

async fn log_in(ws: &mut Socket, user: &str) {
    let hello = json!({"type": "hello", "v": 1, "user": user, "device": "d", "token": "t"});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    loop {
        let frame = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = frame {
            let welcome: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(welcome["type"], "welcome", "{welcome}");
            return;
        }
    }
}

fn metric(server: &ServerProcess, line_prefix: &str) -> u64 {
    let (status, body) = server.admin_get("/metrics");
    assert!(status.contains("200"), "{status}");
    body.lines()
        .find_map(|line| line.strip_prefix(line_prefix))
        .map_or(0, |value| value.trim().parse().unwrap())
}

/// Tries `count` connections at once; returns the open ones and counts the
/// refusals (all must be one or the other).
async fn storm(url: &str, count: usize) -> (Vec<Socket>, usize) {
    let attempts = futures_util::future::join_all((0..count).map(|_| attempt(url))).await;
    let (mut open, mut refused) = (Vec::new(), 0);
    for attempt in attempts {
        match attempt {
            Attempt::Open(ws) => open.push(*ws),
            Attempt::Refused(status) => {
                assert_eq!(status, 503);
                refused += 1;
            }
            Attempt::Failed(why) => panic!("not refused cleanly: {why}"),
        }
    }
    (open, refused)
}

#[tokio::test]
async fn pending_logins_and_connections_are_capped_and_refused_cleanly() {
    let server = ServerProcess::start(&["--max-connections", "50", "--max-pending-logins", "30"]);
    let url = server.url();
    // 40 at once, none logged in: 30 wait for their hello, 10 are refused.
    let (mut open, refused) = storm(&url, 40).await;
    assert_eq!((open.len(), refused), (30, 10));
    let (status, body) = server.admin_get("/healthz");
    assert!(status.contains("200"), "{status} {body}");
    assert_eq!(
        metric(
            &server,
            r#"beckon_connections_dropped_total{result="max_pending_logins"} "#
        ),
        10
    );
    assert_eq!(metric(&server, "beckon_connections_pending "), 30);

    // Logged in, they no longer count as pending: 20 more fit, then the
    // total cap refuses.
    for (i, ws) in open.iter_mut().enumerate() {
        log_in(ws, &format!("user-{i}")).await;
    }
    assert_eq!(metric(&server, "beckon_connections_pending "), 0);
    let (more, refused) = storm(&url, 25).await;
    assert_eq!((more.len(), refused), (20, 5));
    assert_eq!(
        metric(
            &server,
            r#"beckon_connections_dropped_total{result="max_connections"} "#
        ),
        5
    );

    // Places come back when connections close.
    drop(more);
    let mut again = None;
    for _ in 0..100 {
        if let Attempt::Open(ws) = attempt(&url).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "no place came back");
}

#[tokio::test]
async fn one_address_gets_at_most_its_share() {
    let server = ServerProcess::start(&["--max-connections-per-ip", "3"]);
    let (open, refused) = storm(&server.url(), 5).await;
    assert_eq!((open.len(), refused), (3, 2));
    assert_eq!(
        metric(
            &server,
            r#"beckon_connections_dropped_total{result="max_connections_per_ip"} "#
        ),
        2
    );
}

#[tokio::test]
async fn a_storm_of_connections_is_served_and_the_admin_address_answers() {
    // 1,500 clients at once (the listen backlog is 4,096): every one gets its
    // WebSocket and logs in, and /metrics answers during the storm.
    let fds = beckon_server::listener::raise_fd_limit();
    assert!(
        fds > 2000,
        "this test needs 1,500 sockets; the open-file limit is {fds}"
    );
    let server = ServerProcess::start(&[]);
    let url = server.url();
    let admin = {
        let port = server.admin_port;
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut answered = 0;
            for _ in 0..20 {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.set_read_timeout(Some(WAIT));
                    let _ = write!(
                        s,
                        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    );
                    let mut body = String::new();
                    if s.read_to_string(&mut body).is_ok() && body.contains("200") {
                        answered += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            answered
        })
    };
    let (mut open, refused) = storm(&url, 1500).await;
    assert_eq!((open.len(), refused), (1500, 0));
    let logins = open
        .iter_mut()
        .enumerate()
        .map(|(i, ws)| async move { log_in(ws, &format!("storm-{i}")).await });
    futures_util::future::join_all(logins).await;
    assert_eq!(
        admin.await.unwrap(),
        20,
        "the admin address stopped answering"
    );
    assert_eq!(metric(&server, "beckon_connections_open "), 1500);
}
