//! A bare protocol client for the server tools (`idle`, `storm`, `overload`):
//! one TCP connection, the WebSocket handshake offering `beckon.v1`, `hello`,
//! `welcome`, and frames as the server sends them. Unlike `beckon::Client` it
//! holds nothing but the socket, retries nothing and does only what it is told
//! (stay silent, never read, resume a made-up session), so thousands of them fit
//! in one process and what they measure is the server.
//!
//! Every failure is named by a short, stable label (`tcp_refused`, `http_503`,
//! `handshake_reset`, `login_error:AUTH_FAILED`, ...) that the reports count.

use std::io::ErrorKind;
use std::time::Duration;

use beckon::protocol::wire::{ClientFrame, Resume, ServerFrame, Welcome, PROTOCOL_VERSION};
use beckon::protocol::{DeviceId, UserId};
use beckon::ErrorCode;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// The most a server frame may be for these clients (the server's own default
/// limit is 256 KiB; pushes are far smaller).
const MAX_FRAME: usize = 1 << 20;

/// Small buffers: a client here holds little, and tungstenite zero-fills its
/// whole read buffer, so the default 128 KiB would make 10,000 idle clients
/// cost over a gigabyte in this process.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Where to connect: `ws://HOST:PORT[/PATH]`, checked once.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    /// `HOST:PORT` for the TCP connection.
    pub authority: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| {
            format!("--url: '{url}' is not ws://HOST:PORT (these tools speak plain ws:// only)")
        })?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || !authority.contains(':') {
            return Err(format!("--url: '{url}' has no HOST:PORT"));
        }
        // The request is built from the URL the same way for every connection:
        // fail here, once, rather than in each of thousands of tasks.
        url.into_client_request()
            .map_err(|e| format!("--url: '{url}': {e}"))?;
        Ok(Target {
            url: url.to_owned(),
            authority: authority.to_owned(),
        })
    }
}

/// When each step of an opening finished, from its start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Opened {
    pub tcp: Duration,
    /// The WebSocket handshake done (TCP included).
    pub handshake: Duration,
}

/// Opens a TCP connection and does the WebSocket handshake, both before
/// `deadline`. The error is a failure label.
pub async fn open(target: &Target, deadline: Instant) -> Result<(Ws, Opened), String> {
    let start = Instant::now();
    let stream = match timeout_at(deadline, TcpStream::connect(&target.authority)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(io_label("tcp", &e)),
        Err(_) => return Err("tcp_timeout".to_owned()),
    };
    let tcp = start.elapsed();
    let _ = stream.set_nodelay(true);
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad_url:{e}"))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(beckon::protocol::wire::SUBPROTOCOL),
    );
    let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()));
    let ws = match timeout_at(deadline, handshake).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Err(handshake_label(&e)),
        Err(_) => return Err("handshake_timeout".to_owned()),
    };
    Ok((
        ws,
        Opened {
            tcp,
            handshake: start.elapsed(),
        },
    ))
}

/// An I/O failure of `stage` as a label. Running out of file descriptors is
/// this process's limit, not the server's doing, and is named so.
fn io_label(stage: &str, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(24) {
        return "client_out_of_fds".to_owned();
    }
    let kind = match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => "reset",
        ErrorKind::ConnectionAborted => "aborted",
        ErrorKind::UnexpectedEof => "eof",
        ErrorKind::TimedOut => "timeout",
        ErrorKind::AddrNotAvailable => "no_local_port",
        _ => "error",
    };
    format!("{stage}_{kind}")
}

/// A failed handshake as a label. `http_503` (with `_retry_after` when the
/// header came) is a clean refusal; resets, EOFs and timeouts are not.
pub fn handshake_label(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            if response.headers().contains_key("retry-after") {
                format!("http_{status}_retry_after")
            } else {
                format!("http_{status}")
            }
        }
        tungstenite::Error::Io(io) => io_label("handshake", io),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "handshake_closed".to_owned()
        }
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::HandshakeIncomplete) => {
            "handshake_eof".to_owned()
        }
        tungstenite::Error::Protocol(p) => format!("handshake_protocol:{p}"),
        tungstenite::Error::HttpFormat(_) => "handshake_bad_http".to_owned(),
        other => format!("handshake_error:{other}"),
    }
}

/// Whether a failure label is a clean refusal by the server (HTTP 503).
pub fn clean_refusal(label: &str) -> bool {
    label.starts_with("http_503")
}

/// A frame the server sent, as a label for counting.
fn error_label(code: i32) -> String {
    match ErrorCode::from_i32(code) {
        Some(code) => {
            let name = code.name();
            name.strip_prefix("ERROR_").unwrap_or(name).to_owned()
        }
        None => format!("code_{code}"),
    }
}

/// `beckon::protocol` identifiers from plain strings (the tools make them,
/// but a prefix comes from the command line).
pub fn user_id(text: &str) -> Result<UserId, String> {
    UserId::parse(text, "user").map_err(|e| e.message)
}

pub fn device_id(text: &str) -> Result<DeviceId, String> {
    DeviceId::parse(text, "device").map_err(|e| e.message)
}

pub fn text_frame(frame: &ClientFrame) -> Result<Message, String> {
    serde_json::to_string(frame)
        .map(Message::text)
        .map_err(|e| format!("encode: {e}"))
}

/// Who logs in, and with what.
pub struct Login<'a> {
    pub user: &'a UserId,
    pub device: &'a DeviceId,
    pub token: &'a str,
    /// A session secret to ask to resume (made up, or of an ended session).
    pub resume: Option<Resume>,
}

/// Sends `hello` and reads up to `welcome` (before `deadline`). The error is a
/// failure label: `login_error:CODE`, `welcome_timeout`, `closed_before_welcome`.
pub async fn hello(ws: &mut Ws, login: Login<'_>, deadline: Instant) -> Result<Welcome, String> {
    let frame = ClientFrame::Hello {
        v: PROTOCOL_VERSION,
        user: login.user.clone(),
        device: login.device.clone(),
        token: login.token.to_owned(),
        resume: login.resume,
    };
    match timeout_at(deadline, ws.send(text_frame(&frame)?)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ws_label("hello_send", &e)),
        Err(_) => return Err("hello_send_timeout".to_owned()),
    }
    loop {
        let next = match timeout_at(deadline, ws.next()).await {
            Ok(next) => next,
            Err(_) => return Err("welcome_timeout".to_owned()),
        };
        match next {
            Some(Ok(Message::Text(text))) => match ServerFrame::decode(&text) {
                Ok(ServerFrame::Welcome(welcome)) => return Ok(welcome),
                Ok(ServerFrame::Error(error)) => {
                    return Err(format!("login_error:{}", error_label(error.code)))
                }
                Ok(ServerFrame::Shutdown) => return Err("login_shutdown".to_owned()),
                Ok(_) => return Err("login_unexpected_frame".to_owned()),
                Err(_) => return Err("login_undecodable_frame".to_owned()),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("login_binary_frame".to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err("closed_before_welcome".to_owned()),
            Some(Err(e)) => return Err(ws_label("welcome", &e)),
        }
    }
}

/// A failed read or write on an open WebSocket, as a label.
pub fn ws_label(stage: &str, e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => io_label(stage, io),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            format!("{stage}_closed")
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => format!("{stage}_reset"),
        tungstenite::Error::Protocol(_) => format!("{stage}_protocol_error"),
        tungstenite::Error::Capacity(_) => format!("{stage}_frame_too_large"),
        _ => format!("{stage}_error"),
    }
}

/// Sends a frame, bounded in time. The error is a label.
pub async fn send(ws: &mut Ws, frame: &ClientFrame, wait: Duration) -> Result<(), String> {
    match tokio::time::timeout(wait, ws.send(text_frame(frame)?)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ws_label("send", &e)),
        Err(_) => Err("send_timeout".to_owned()),
    }
}

/// What the server said when it ended a connection, as a label: the code of
/// its last `error` frame when there was one, else the close code.
pub fn ending_label(last_error: Option<i32>, close: Option<u16>) -> String {
    match (last_error, close) {
        (Some(code), _) => format!("error:{}", error_label(code)),
        (None, Some(code)) => format!("close:{code}"),
        (None, None) => "closed".to_owned(),
    }
}

pub fn error_name(code: i32) -> String {
    error_label(code)
}

/// The resident set of process `pid` in bytes (VmRSS), on Linux.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// This process's soft limit on open files, when /proc says.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Refuses a run that needs `sockets` descriptors when the limit is lower
/// (with room for the runtime and the admin probe).
pub fn check_fds(sockets: usize, flag: &str) -> Result<(), String> {
    const SPARE: u64 = 64;
    if let Some(limit) = open_files_limit() {
        let needed = sockets as u64 + SPARE;
        if needed > limit {
            return Err(format!(
                "{flag}: {sockets} sockets need about {needed} open files, and this process may open {limit} (raise it with `ulimit -n`)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let target = Target::parse("ws://127.0.0.1:7600").map_err(|e| e.to_string());
        assert_eq!(target.map(|t| t.authority), Ok("127.0.0.1:7600".to_owned()));
        assert!(Target::parse("ws://127.0.0.1:7600/x").is_ok());
        for bad in [
            "wss://h:1",
            "http://h:1",
            "ws://",
            "ws://host",
            "127.0.0.1:1",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert!(clean_refusal("http_503_retry_after"));
        assert!(!clean_refusal("handshake_reset"));
        assert_eq!(ending_label(Some(13), Some(1008)), "error:RATE_LIMITED");
        assert_eq!(ending_label(None, Some(1001)), "close:1001");
        assert_eq!(error_name(9999), "code_9999");
        let refused = std::io::Error::from(ErrorKind::ConnectionRefused);
        assert_eq!(io_label("tcp", &refused), "tcp_refused");
        let emfile = std::io::Error::from_raw_os_error(24);
        assert_eq!(io_label("tcp", &emfile), "client_out_of_fds");
    }

    #[test]
    fn reads_own_rss() {
        let rss = rss_bytes(std::process::id());
        assert!(rss.is_some_and(|b| b > 0));
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener that reads each request's head, answers 503 with
    /// Retry-After and closes: what a server at its connection cap does.
    async fn refusing_server() -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn a_503_is_a_clean_refusal() {
        let addr = refusing_server().await.map_err(|e| e.to_string());
        let Ok(addr) = addr else {
            panic!("listener: {addr:?}");
        };
        let target = Target::parse(&format!("ws://{addr}")).map_err(|e| e.to_string());
        let Ok(target) = target else {
            panic!("target: {target:?}");
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let label = open(&target, deadline).await.map(|_| ()).err();
        assert_eq!(label.as_deref(), Some("http_503_retry_after"));
        assert!(label.is_some_and(|l| clean_refusal(&l)));
    }

    #[tokio::test]
    async fn a_closed_port_is_not() {
        // Bound and dropped: nothing listens there now.
        let addr = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr,
            Err(e) => panic!("bind: {e}"),
        };
        let Ok(target) = Target::parse(&format!("ws://{addr}")) else {
            panic!("target");
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let label = open(&target, deadline).await.map(|_| ()).err();
        assert_eq!(label.as_deref(), Some("tcp_refused"));
    }
}
