//! Sessions under unlucky timing, on a multi-threaded runtime: a connection's
//! requests racing resumes on new connections (a network handover, a
//! half-open TCP connection), fresh logins of the same device (kicks) and
//! grace periods running out. With locks around a session this could
//! deadlock (an outbox lock taken inside the request-id lock on one path and
//! the other way round on the resume path) and freeze the whole server; with
//! one task per session nothing can wait in a cycle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::Hub;
use beckon::protocol::wire::{ClientFrame, Resume};
use beckon::protocol::{DeviceId, UserId};
use parking_lot::Mutex;

use super::{Outgoing, SessionHandle, Writer};
use crate::connection::{open_session, Hello};
use crate::{ServerConfig, ServerContext};

/// One client's view: its current session and the highest sequence number
/// any of its connections received.
struct Shared {
    session: Mutex<Option<(SessionHandle, u64)>>,
    seen: AtomicU64,
}

/// Opens a connection for the client (resuming when it can) and drains what
/// the server sends it, noting sequence numbers.
async fn connect(ctx: &Arc<ServerContext>, shared: &Arc<Shared>, resume: bool) -> Option<u64> {
    let user = UserId::parse("alice", "user").ok()?;
    let device = DeviceId::parse("phone", "device").ok()?;
    let resume = match (resume, shared.session.lock().clone()) {
        (true, Some((session, _))) => Some(Resume {
            session: session.secret.to_string(),
            seq: shared.seen.load(Ordering::SeqCst),
        }),
        _ => None,
    };
    let (tx, mut rx) = Writer::channel();
    let epoch = ctx.next_epoch();
    let hello = Hello {
        user,
        device,
        token: String::new(),
        resume,
    };
    let attached = open_session(ctx, hello, &tx, epoch).await.ok()?;
    let drained = shared.clone();
    tokio::spawn(async move {
        while let Some(outgoing) = rx.recv().await {
            let Outgoing::Text(text) = *outgoing else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                continue;
            };
            if frame["type"] == "welcome" && frame["resumed"] == false {
                drained.seen.store(0, Ordering::SeqCst); // a new session counts from 1
            } else if let Some(seq) = frame["seq"].as_u64() {
                drained.seen.fetch_max(seq, Ordering::SeqCst);
            }
        }
    });
    *shared.session.lock() = Some((attached.session, epoch));
    Some(epoch)
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
            grace_secs: 0, // a detached session ends at once
            ..ServerConfig::default()
        };
        let Ok(hub) = Hub::new(config.hub_config(None)) else {
            panic!("hub");
        };
        let ctx = ServerContext::new(config, hub);
        let shared = Arc::new(Shared {
            session: Mutex::new(None),
            seen: AtomicU64::new(0),
        });
        assert!(connect(&ctx, &shared, false).await.is_some());
        let progress = Arc::new(AtomicU64::new(0));

        let requests = {
            let (shared, progress) = (shared.clone(), progress.clone());
            tokio::spawn(async move {
                for id in 1..=20_000u64 {
                    let current = shared.session.lock().clone();
                    if let Some((session, epoch)) = current {
                        let frame = ClientFrame::RenewToken {
                            id,
                            token: String::new(),
                        };
                        session.frame(epoch, frame, false).await;
                        if id % 50 == 0 {
                            let seq = shared.seen.load(Ordering::SeqCst);
                            session.frame(epoch, ClientFrame::Ack { seq }, false).await;
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                    if id % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let churn = {
            let (ctx, shared, progress) = (ctx.clone(), shared.clone(), progress.clone());
            tokio::spawn(async move {
                for round in 0..2_000u64 {
                    match round % 10 {
                        // A fresh login of the same device: kicks the session out.
                        0 => {
                            connect(&ctx, &shared, false).await;
                        }
                        // The connection drops: with no grace, the session ends.
                        1 => {
                            let current = shared.session.lock().clone();
                            if let Some((session, epoch)) = current {
                                session.detach(epoch).await;
                            }
                            connect(&ctx, &shared, true).await;
                        }
                        // A new connection resumes while requests go on the old.
                        _ => {
                            if connect(&ctx, &shared, true).await.is_none() {
                                connect(&ctx, &shared, false).await;
                            }
                        }
                    }
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // A stall shows as no progress at all for ten seconds.
        let mut last = 0;
        while !(requests.is_finished() && churn.is_finished()) {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let now = progress.load(Ordering::Relaxed);
            assert_ne!(now, last, "no progress in 10 s: a session is stuck");
            last = now;
        }
        assert!(requests.await.is_ok() && churn.await.is_ok());

        // The last connection drops: everything is gone after the grace period.
        let current = shared.session.lock().clone();
        if let Some((session, epoch)) = current {
            session.detach(epoch).await;
        }
        for _ in 0..100 {
            if ctx.sessions.is_empty() {
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
        let Ok(alice) = UserId::parse("alice", "user") else {
            panic!("user id");
        };
        assert_eq!(ctx.hub.device_count(&alice), 0);
    });
}
