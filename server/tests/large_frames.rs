//! After a large frame a connection gives back the read buffer it grew, by
//! swapping in a fresh WebSocket at a heartbeat; the swap must lose nothing:
//! not a frame that arrives around it, not a frame cut in two by the network,
//! not an open fragmented message. (What it saves is measured by
//! `LARGE_FRAME=... bash bench/idle-memory.sh`.)

mod common;

use std::time::Duration;

use common::{unique, ServerProcess, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A heartbeat every second: the swap is tried at each one.
fn server() -> ServerProcess {
    ServerProcess::start(&["--heartbeat-secs", "1"])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Logged in and synced, welcome read.
async fn log_in(url: &str) -> Ws {
    let (mut ws, _) = connect_async(url).await.unwrap();
    let user = unique("large");
    let hello = json!({"type": "hello", "v": 1, "user": user, "device": "d", "token": "t"});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws.send(Message::text(r#"{"type":"sync"}"#)).await.unwrap();
    ws
}

/// A valid request the server answers at once (INVITATION_NOT_FOUND): a
/// cancel of an invitation that does not exist, with `padding` characters of
/// data that JSON escapes to six bytes each (at most 8,000: the data limit).
fn cancel(id: u64, padding: usize) -> String {
    json!({"type": "cancel", "id": id, "request": {
        "invitation_id": "00000000000000000000000000000000",
        "extended_data": "\u{1}".repeat(padding),
    }})
    .to_string()
}

const NOT_FOUND: u64 = 7;

/// The next text frame, as JSON (pings are answered while reading).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = timeout(WAIT, ws.next()).await.expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

/// The answer to request `id`, skipping pushes and snapshots.
async fn answer(ws: &mut Ws, id: u64) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["type"] == "result" {
            assert_eq!(frame["id"], id, "answers come in request order: {frame}");
            return frame;
        }
    }
}

/// The value of the counter `beckon_{name}_total`.
fn counter(server: &ServerProcess, name: &str) -> u64 {
    let (status, metrics) = server.admin_get("/metrics");
    assert!(status.contains("200"), "{status}");
    let prefix = format!("beckon_{name}_total ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

fn released(server: &ServerProcess) -> u64 {
    counter(server, "read_buffers_released")
}

/// Waits past two heartbeats, reading (and so answering pings) meanwhile.
async fn idle_through_heartbeats(ws: &mut Ws) {
    let _ = timeout(Duration::from_millis(2500), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

#[test]
fn the_buffer_is_given_back_and_requests_around_it_all_answered() {
    let server = server();
    runtime().block_on(async {
        let mut ws = log_in(&server.url()).await;
        ws.send(Message::text(cancel(1, 8000))).await.unwrap();
        assert_eq!(answer(&mut ws, 1).await["error"]["code"], NOT_FOUND);
        idle_through_heartbeats(&mut ws).await;
        assert!(released(&server) >= 1, "the idle connection's buffer");

        // Large frames among small ones, for several heartbeats: whenever the
        // swap comes, every request is answered once, in order.
        let (mut sent, mut answered) = (1, 1);
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < until {
            sent += 1;
            let padding = if sent % 10 == 0 { 8000 } else { 10 };
            ws.send(Message::text(cancel(sent, padding))).await.unwrap();
            // Under the server's 200 messages per second.
            sleep(Duration::from_millis(8)).await;
            if sent % 4 == 0 {
                while answered < sent {
                    answered += 1;
                    answer(&mut ws, answered).await;
                }
            }
        }
        while answered < sent {
            answered += 1;
            answer(&mut ws, answered).await;
        }
        assert!(released(&server) >= 2, "swapped under traffic too");
        // The heap was trimmed at a heartbeat after the first release.
        assert!(
            counter(&server, "heap_trims") >= 1,
            "the freed buffers given back"
        );
    });
}

#[test]
fn a_frame_cut_in_two_survives_the_heartbeats_between_its_halves() {
    let server = server();
    runtime().block_on(async {
        let mut ws = log_in(&server.url()).await;
        ws.send(Message::text(cancel(1, 8000))).await.unwrap();
        answer(&mut ws, 1).await;

        // Request 2 written raw, its header and half its payload first: the
        // server must not swap while it holds that half.
        let payload = cancel(2, 5000).into_bytes();
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Text),
            // A zero mask leaves the payload as it is.
            mask: Some([0; 4]),
            ..FrameHeader::default()
        };
        let mut raw = Vec::new();
        header.format(payload.len() as u64, &mut raw).unwrap();
        raw.extend_from_slice(&payload);
        let (first, rest) = raw.split_at(raw.len() / 2);
        let socket = match ws.get_mut() {
            MaybeTlsStream::Plain(socket) => socket,
            _ => panic!("a plain connection"),
        };
        socket.write_all(first).await.unwrap();
        sleep(Duration::from_millis(2500)).await;
        let socket = match ws.get_mut() {
            MaybeTlsStream::Plain(socket) => socket,
            _ => panic!("a plain connection"),
        };
        socket.write_all(rest).await.unwrap();
        assert_eq!(answer(&mut ws, 2).await["error"]["code"], NOT_FOUND);
        ws.send(Message::text(cancel(3, 10))).await.unwrap();
        answer(&mut ws, 3).await;
    });
}

#[test]
fn an_open_fragmented_message_survives_the_heartbeats_between_its_fragments() {
    let server = server();
    runtime().block_on(async {
        let mut ws = log_in(&server.url()).await;
        ws.send(Message::text(cancel(1, 8000))).await.unwrap();
        answer(&mut ws, 1).await;

        let payload = cancel(2, 20).into_bytes();
        let (first, rest) = payload.split_at(payload.len() / 2);
        let fragment = |data: &[u8], opcode, is_final| {
            Message::Frame(Frame::message(
                data.to_vec(),
                OpCode::Data(opcode),
                is_final,
            ))
        };
        ws.send(fragment(first, Data::Text, false)).await.unwrap();
        idle_through_heartbeats(&mut ws).await;
        ws.send(fragment(rest, Data::Continue, true)).await.unwrap();
        let answer = answer(&mut ws, 2).await;
        assert_eq!(answer["error"]["code"], NOT_FOUND, "{answer}");
    });
}
