//! The WebSocket port's first request. tungstenite closes the socket without
//! a word on a request that is not a WebSocket upgrade, so a browser, `curl`
//! or a load balancer's health check pointed at the port sees only a reset.
//! The request head is read here first: an upgrade goes on to tungstenite
//! with its bytes handed back unchanged ([`Replayed`]); anything else gets a
//! short HTTP answer saying what the port speaks, and the connection ends.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest request head read (a browser's, with its cookies, is far
/// shorter); a longer one is answered 431.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Headers a request may have (tungstenite's own limit is 124).
const MAX_HEADERS: usize = 128;

/// How long, and how much of, an answered peer's further bytes are read
/// before closing.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
const DRAIN_BYTES: usize = 1024 * 1024;

/// What came first on a connection.
pub enum Head {
    /// A WebSocket upgrade (tungstenite checks the rest of it): its bytes,
    /// to be read again.
    Upgrade(Vec<u8>),
    /// Not an upgrade: answered, with this `connections_dropped_total`
    /// result; the stream is only to be drained ([`drain`]).
    Answered(&'static str),
    /// The peer closed before a whole request head.
    Closed,
}

/// Reads the request head from `stream`; answers one that is not a WebSocket
/// upgrade. The caller bounds the time it may take.
pub async fn read_head<S>(stream: &mut S) -> io::Result<Head>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        let first = head.is_empty();
        // Where the terminator may start, counting the bytes it may share
        // with the previous read.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        let ended = head[from..].windows(4).any(|w| w == b"\r\n\r\n");
        // Parsed once the head is whole (and once at the first read, to turn
        // away what is not HTTP at once): a peer sending a byte at a time
        // must not make every read parse the whole head again.
        if !(first || ended || head.len() >= MAX_HEAD_BYTES) {
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let status = match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) if is_upgrade(&request) => {
                return Ok(Head::Upgrade(head))
            }
            Ok(httparse::Status::Complete(_)) => Status::UPGRADE_REQUIRED,
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD_BYTES => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                Status::TOO_LARGE
            }
            Err(_) => Status::BAD_REQUEST,
        };
        let with_body = request.method != Some("HEAD");
        stream
            .write_all(status.response(with_body).as_bytes())
            .await?;
        stream.shutdown().await?;
        return Ok(Head::Answered(status.metric));
    }
}

/// After an answer: reads what the peer still sends (a body) for at most
/// [`DRAIN`] and [`DRAIN_BYTES`], then lets the stream go. Closing a socket with unread data
/// resets it, and the reset can destroy the answer before the peer reads it.
pub async fn drain<S: AsyncRead + Unpin>(mut stream: S) {
    let mut chunk = [0u8; 2048];
    let drain = async {
        let mut left = DRAIN_BYTES;
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN, drain).await;
}

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
fn is_upgrade(request: &httparse::Request<'_, '_>) -> bool {
    request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(h.value).is_ok_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
            })
    })
}

/// An answer, and its `connections_dropped_total` result.
struct Status {
    line: &'static str,
    metric: &'static str,
}

impl Status {
    const UPGRADE_REQUIRED: Status = Status {
        line: "426 Upgrade Required",
        metric: "not_websocket",
    };
    const BAD_REQUEST: Status = Status {
        line: "400 Bad Request",
        metric: "not_http",
    };
    const TOO_LARGE: Status = Status {
        line: "431 Request Header Fields Too Large",
        metric: "request_too_large",
    };

    fn response(&self, with_body: bool) -> String {
        let body = "This is a Beckon server's WebSocket port: connect with a Beckon client \
                    (WebSocket, subprotocol beckon.v1).\n";
        format!(
            "HTTP/1.1 {}\r\nUpgrade: websocket\r\nConnection: close\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{}",
            self.line,
            body.len(),
            if with_body { body } else { "" },
        )
    }
}

/// A stream that hands up `head` before what it reads from `inner`.
pub struct Replayed<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replayed<S> {
    pub fn new(head: Vec<u8>, inner: S) -> Replayed<S> {
        Replayed { head, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replayed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.head.len() {
            let n = (this.head.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                // Read whole: its memory goes back for the connection's life.
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replayed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    /// Sends `request` in pieces of `piece` bytes; returns what the reader
    /// decided and what it wrote back.
    async fn answer(request: &[u8], piece: usize) -> (Head, String) {
        let (mut client, mut server) = duplex(64 * 1024);
        let request = request.to_vec();
        let writer = tokio::spawn(async move {
            for part in request.chunks(piece.max(1)) {
                client.write_all(part).await.ok();
                tokio::task::yield_now().await;
            }
            client.shutdown().await.ok();
            let mut back = String::new();
            client.read_to_string(&mut back).await.ok();
            back
        });
        let head = read_head(&mut server).await.expect("read_head");
        drop(server);
        (head, writer.await.expect("writer"))
    }

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
        Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[tokio::test]
    async fn an_upgrade_goes_on_whole_even_in_small_pieces() {
        let (head, back) = answer(UPGRADE, 7).await;
        match head {
            Head::Upgrade(bytes) => assert_eq!(bytes, UPGRADE),
            _ => panic!("an upgrade was not recognised"),
        }
        assert_eq!(back, "", "nothing is written for an upgrade");
    }

    #[tokio::test]
    async fn a_plain_get_is_answered_426() {
        let (head, back) = answer(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000).await;
        assert!(matches!(head, Head::Answered("not_websocket")));
        assert!(
            back.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{back}"
        );
        assert!(back.ends_with("subprotocol beckon.v1).\n"), "{back}");
    }

    #[tokio::test]
    async fn a_head_request_gets_no_body() {
        let (_, back) = answer(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 1000).await;
        assert!(back.starts_with("HTTP/1.1 426"), "{back}");
        assert!(back.ends_with("\r\n\r\n"), "{back}");
    }

    #[tokio::test]
    async fn bytes_that_are_not_http_are_answered_400() {
        let (head, back) = answer(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1000).await;
        assert!(matches!(head, Head::Answered("not_http")));
        assert!(back.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{back}");
    }

    #[tokio::test]
    async fn a_head_without_end_is_cut_at_the_limit() {
        let mut long = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
        long.resize(MAX_HEAD_BYTES + 10, b'a');
        let (head, back) = answer(&long, 4096).await;
        assert!(matches!(head, Head::Answered("request_too_large")));
        assert!(back.starts_with("HTTP/1.1 431"), "{back}");
    }

    #[tokio::test]
    async fn too_many_headers_are_answered_431() {
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (head, back) = answer(&many, 4096).await;
        assert!(matches!(head, Head::Answered("request_too_large")));
        assert!(back.starts_with("HTTP/1.1 431"), "{back}");
    }

    #[tokio::test]
    async fn a_peer_that_closes_early_is_let_go() {
        let (head, _) = answer(b"GET / HT", 1000).await;
        assert!(matches!(head, Head::Closed));
    }

    #[tokio::test]
    async fn replayed_hands_up_the_head_then_the_stream() {
        let (mut client, server) = duplex(1024);
        client.write_all(b" and the rest").await.expect("write");
        drop(client);
        let mut replayed = Replayed::new(b"the head".to_vec(), server);
        let mut all = String::new();
        replayed.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "the head and the rest");
    }
}
