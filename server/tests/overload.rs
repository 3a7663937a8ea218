//! A real beckon-server under hostile load at once: 2,000 connections that
//! never log in, a user sending invitations as fast as it can (over the rate
//! and the open-invitation quota), a logged-in client that never reads while
//! it is invited again and again, and a flood of resumes of sessions that do
//! not exist. Meanwhile an ordinary pair's invitations must all complete, and
//! the server must refuse what is over its caps rather than fall over.
//! (Latency under this load is measured by `bench/overload.sh`, not asserted.)

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::{Answer, UserId};
use common::{block, unique, Peer, ServerProcess, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn hello(user: &UserId, resume: Option<&str>) -> Message {
    let mut hello = json!({"type": "hello", "v": 1, "user": user, "device": "d", "token": "t"});
    if let Some(session) = resume {
        hello["resume"] = json!({"session": session, "seq": 0});
    }
    Message::text(hello.to_string())
}

fn send(id: u64, invitee: &UserId) -> Message {
    let frame = json!({"type": "send", "id": id, "request": {
        "invitees": [invitee], "timeout_secs": 600, "extended_data": "x".repeat(4000),
        "notification": null,
    }});
    Message::text(frame.to_string())
}

#[test]
fn hostile_load_does_not_stop_ordinary_invitations() {
    let fds = beckon_server::listener::raise_fd_limit();
    assert!(
        fds > 3000,
        "this test needs 2,100 sockets; the open-file limit is {fds}"
    );
    let server = ServerProcess::start(&["--login-timeout-ms", "20000"]);
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (sink, flooder) = (unique("sink"), unique("flooder"));

    // 2,000 connections that never say hello.
    let idle = runtime.block_on(async {
        let connects = (0..2000).map(|_| timeout(WAIT, connect_async(url.clone())));
        futures_util::future::join_all(connects).await
    });
    let idle: Vec<_> = idle.into_iter().filter_map(|c| c.ok()?.ok()).collect();
    assert_eq!(idle.len(), 2000);

    // A logged-in client that never reads.
    let deaf = runtime.block_on(async {
        let (mut ws, _) = connect_async(url.clone()).await.unwrap();
        ws.send(hello(&sink, None)).await.unwrap();
        ws.send(Message::text(r#"{"type":"sync"}"#)).await.unwrap();
        ws
    });

    // A user inviting the deaf client as fast as it can, reconnecting when
    // the server cuts it off.
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (url, stop, sent, sink) = (url.clone(), stop.clone(), sent.clone(), sink.clone());
        runtime.spawn(async move {
            let mut id = 0;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok((mut ws, _))) = timeout(WAIT, connect_async(url.clone())).await else {
                    continue;
                };
                if ws.send(hello(&flooder, None)).await.is_err() {
                    continue;
                }
                let (mut write, mut read) = ws.split();
                // Read and drop what comes back, so only the deaf client lags.
                let reader = tokio::spawn(async move { while read.next().await.is_some() {} });
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    if write.send(send(id, &sink)).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                reader.abort();
            }
        })
    };

    // Resumes of sessions that do not exist, one after the other.
    let resumes = Arc::new(AtomicU64::new(0));
    let resume_flood = {
        let (url, stop, resumes) = (url.clone(), stop.clone(), resumes.clone());
        runtime.spawn(async move {
            let resumer = unique("resumer");
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok((mut ws, _))) = timeout(WAIT, connect_async(url.clone())).await else {
                    continue;
                };
                let made_up = format!("{:032x}", resumes.load(Ordering::Relaxed));
                let _ = ws.send(hello(&resumer, Some(&made_up))).await;
                let _ = timeout(WAIT, ws.next()).await;
                resumes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Meanwhile, an ordinary pair: every invitation completes. It keeps an
    // ordinary pace (each invitation costs the invitee a receipt and an
    // answer): flat out, it would be held to its own rate limit.
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online(&server.url(), &bob);
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < 30 || started.elapsed() < Duration::from_secs(3) {
        done += 1;
        let id = a.invite(&[&bob], 60).invitation_id;
        assert_eq!(b.ringing(), id);
        let answer = Answer {
            invitation_id: id,
            extended_data: "".into(),
        };
        block(b.client.accept_invitation(answer)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        let _ = timeout(WAIT, flood).await;
        let _ = timeout(WAIT, resume_flood).await;
    });
    assert!(sent.load(Ordering::Relaxed) > 100, "the flood did not run");
    assert!(
        resumes.load(Ordering::Relaxed) > 10,
        "the resume flood did not run"
    );

    let (status, metrics) = server.admin_get("/metrics");
    assert!(status.contains("200"), "{status}");
    // The flooder was held to its rate and to its quota of open invitations
    // (which also bounds what waits for the deaf client).
    for held in ["beckon_rate_limited_total", "beckon_quota_refused_total"] {
        assert!(
            !metrics.contains(&format!("\n{held} 0\n")),
            "{held}: {metrics}"
        );
    }
    drop((idle, deaf));
}
