//! Sessions under unlucky timing, on a multi-threaded runtime, through the
//! real connection code (WebSocket over in-memory pipes): a client's requests
//! on one connection race resumes on new connections (a network handover, a
//! half-open TCP connection), fresh logins of the same device (kicks) and
//! connections dropped with a grace period of 0. With locks around a session
//! this could deadlock (an outbox lock taken inside the request-id lock on one
//! path and the other way round on the resume path) and freeze the whole
//! server; with one owner per session nothing can wait in a cycle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::Hub;
use beckon::protocol::wire::{ClientFrame, Resume, ServerFrame, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, UserId};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{connection, ServerConfig, ServerContext};

type Sink = SplitSink<WebSocketStream<DuplexStream>, Message>;

/// One connection of the client: where it writes, the session it is on, the
/// highest sequence number it received, and the task that reads.
struct Conn {
    sink: tokio::sync::Mutex<Sink>,
    session: String,
    seen: Arc<AtomicU64>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    /// The connection drops, as a network would drop it.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The client's current connection.
type Current = Arc<Mutex<Option<Arc<Conn>>>>;

fn alice() -> (UserId, DeviceId) {
    let (Ok(user), Ok(device)) = (
        UserId::parse("alice", "user"),
        DeviceId::parse("phone", "device"),
    ) else {
        panic!("ids");
    };
    (user, device)
}

/// A resume of `conn`'s session from what it received.
fn resume_of(conn: Option<&Arc<Conn>>) -> Option<Resume> {
    conn.map(|conn| Resume {
        session: conn.session.clone(),
        seq: conn.seen.load(Ordering::SeqCst),
    })
}

/// Opens a connection to the real connection code, resuming with `resume`
/// or logging in afresh; it becomes the current connection.
async fn connect(ctx: &Arc<ServerContext>, current: &Current, resume: Option<Resume>) {
    let (user, device) = alice();
    let (near, far) = tokio::io::duplex(64 * 1024);
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    let Ok(ticket) = ctx.admission.admit(peer.ip()) else {
        panic!("admission refused a stress client");
    };
    tokio::spawn(connection::serve(ctx.clone(), far, peer, ticket));
    let Ok(request) = "ws://stress/".into_client_request() else {
        panic!("request");
    };
    let Ok((ws, _)) = tokio_tungstenite::client_async(request, near).await else {
        panic!("the WebSocket handshake failed");
    };
    let (mut sink, mut stream) = ws.split();
    let hello = ClientFrame::Hello {
        v: PROTOCOL_VERSION,
        user,
        device,
        token: String::new(),
        resume: resume.clone(),
    };
    let hello = serde_json::to_string(&hello).unwrap_or_default();
    assert!(sink.send(Message::text(hello)).await.is_ok(), "hello");
    let welcome = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => match ServerFrame::decode(text.as_str()) {
                Ok(ServerFrame::Welcome(welcome)) => break welcome,
                other => panic!("the first frame was not welcome: {other:?}"),
            },
            Some(Ok(_)) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    };
    // A resumed session goes on from the client's last seen frame; a new
    // one counts from 1.
    let seen = match (welcome.resumed, &resume) {
        (true, Some(resume)) => resume.seq,
        _ => 0,
    };
    let seen = Arc::new(AtomicU64::new(seen));
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    continue;
                };
                if let Some(seq) = frame["seq"].as_u64() {
                    seen.fetch_max(seq, Ordering::SeqCst);
                }
            }
        })
    };
    let conn = Conn {
        sink: tokio::sync::Mutex::new(sink),
        session: welcome.session,
        seen,
        reader,
    };
    *current.lock() = Some(Arc::new(conn));
}

async fn send(conn: &Conn, frame: &ClientFrame) {
    let text = serde_json::to_string(frame).unwrap_or_default();
    // A connection the server let go refuses: the request is lost with it.
    let _ = conn.sink.lock().await.send(Message::text(text)).await;
}

#[test]
fn requests_resumes_kicks_and_grace_race_without_stalling() {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    else {
        panic!("no runtime");
    };
    runtime.block_on(async {
        let config = ServerConfig {
            grace_secs: 0, // a dropped connection's session ends at once
            // Requests come as fast as the runtime goes.
            messages_per_sec: 1_000_000,
            messages_burst: 1_000_000,
            ..ServerConfig::default()
        };
        let Ok(hub) = Hub::new(config.hub_config(None), runtime.handle()) else {
            panic!("hub");
        };
        let ctx = ServerContext::new(config, hub);
        let current: Current = Arc::default();
        connect(&ctx, &current, None).await;
        let progress = Arc::new(AtomicU64::new(0));

        let requests = {
            let (current, progress) = (current.clone(), progress.clone());
            tokio::spawn(async move {
                for id in 1..=20_000u64 {
                    let conn = current.lock().clone();
                    if let Some(conn) = conn {
                        let renew = ClientFrame::RenewToken {
                            id,
                            token: String::new(),
                        };
                        send(&conn, &renew).await;
                        if id % 50 == 0 {
                            let seq = conn.seen.load(Ordering::SeqCst);
                            send(&conn, &ClientFrame::Ack { seq }).await;
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let churn = {
            let (ctx, current, progress) = (ctx.clone(), current.clone(), progress.clone());
            tokio::spawn(async move {
                for round in 0..2_000u64 {
                    match round % 10 {
                        // A fresh login of the same device: kicks the session out.
                        0 => connect(&ctx, &current, None).await,
                        // The connection drops: with no grace, the session
                        // ends, racing the resume that follows.
                        1 => {
                            let dropped = current.lock().take();
                            let resume = resume_of(dropped.as_ref());
                            drop(dropped);
                            connect(&ctx, &current, resume).await;
                        }
                        // A new connection resumes while requests go on the old.
                        _ => {
                            let resume = resume_of(current.lock().as_ref());
                            connect(&ctx, &current, resume).await;
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // A stall shows as no progress at all for ten seconds.
        let (mut last, mut since) = (0, tokio::time::Instant::now());
        while !(requests.is_finished() && churn.is_finished()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = progress.load(Ordering::Relaxed);
            if now != last {
                (last, since) = (now, tokio::time::Instant::now());
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "no progress in 10 s: a session is stuck"
            );
        }
        assert!(requests.await.is_ok() && churn.await.is_ok());
        // The races above happened: most new connections resumed.
        let resumed = ctx
            .metrics
            .logins
            .get_or_create(&crate::metrics::ResultLabel { result: "resumed" })
            .get();
        assert!(resumed >= 1_000, "only {resumed} resumes of 1,800 tried");

        // The last connection still works: a request is answered.
        let Some(conn) = current.lock().clone() else {
            panic!("no connection");
        };
        let before = conn.seen.load(Ordering::SeqCst);
        let renew = ClientFrame::RenewToken {
            id: 1_000_000,
            token: String::new(),
        };
        send(&conn, &renew).await;
        for _ in 0..100 {
            if conn.seen.load(Ordering::SeqCst) > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            conn.seen.load(Ordering::SeqCst) > before,
            "the last session does not answer"
        );

        // The last connection drops: everything is gone at once (no grace).
        drop(conn);
        current.lock().take();
        for _ in 0..100 {
            if ctx.sessions.is_empty() && ctx.metrics.sessions_live.get() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            ctx.sessions.is_empty(),
            "{} sessions left",
            ctx.sessions.len()
        );
        assert_eq!(ctx.metrics.sessions_live.get(), 0);
        assert_eq!(ctx.hub.device_count(&alice().0), 0);
    });
}
