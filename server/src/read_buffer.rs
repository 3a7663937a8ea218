//! Giving back what a large frame made the read buffer grow to.
//!
//! tungstenite reads each connection's frames into one buffer, grows it to
//! hold a large frame whole, and keeps that size for the life of the
//! connection: one 200 KiB request would pin 200 KiB for as long as the device
//! stays idle. It has no call to shrink the buffer, so the connection swaps in
//! a fresh WebSocket (with a fresh small buffer) over the same stream. That is
//! lossless only when tungstenite holds no byte it has read but not yet
//! returned, and only the stream under it can tell: [`Tracked`] follows the
//! frame boundaries in what it hands up (headers parsed with tungstenite's own
//! parser) and whether tungstenite's last read found nothing more to read.
//! [`Tracked::take`] moves the stream out from under the old WebSocket (left
//! with a stream that fails every call, and dropped) into the fresh one: the
//! WebSocket is swapped in place, so the connection's task keeps one.
//!
//! A conforming client sends no frame before the server's handshake response,
//! so tracking starts at a frame boundary once the handshake is done. A stream
//! the tracker cannot follow (a frame header it cannot parse) is never
//! swapped: its buffer keeps its size, as without this module.

use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// A stream that knows where the WebSocket frames it hands up begin and end.
pub struct Tracked<S> {
    /// `None` once taken.
    inner: Option<S>,
    frames: Boundaries,
}

impl<S> Tracked<S> {
    pub fn new(inner: S) -> Tracked<S> {
        Tracked {
            inner: Some(inner),
            frames: Boundaries::default(),
        }
    }

    /// The stream and where its frames stand, for a fresh WebSocket; this
    /// one fails every call from here on.
    pub fn take(&mut self) -> Option<Tracked<S>> {
        let inner = self.inner.take()?;
        Some(Tracked {
            inner: Some(inner),
            frames: std::mem::take(&mut self.frames),
        })
    }

    /// The handshake is done: what is read from here on is frames.
    pub fn handshake_done(&mut self) {
        self.frames.tracking = true;
    }

    /// Whether the reader above holds nothing unread: everything handed up
    /// ended a whole frame, no fragmented message is open, and the reader's
    /// last read found the stream empty (so it had taken every whole frame).
    pub fn at_rest(&self) -> bool {
        self.frames.at_rest()
    }
}

/// Where the frames handed up stand.
#[derive(Default)]
struct Boundaries {
    /// Off during the handshake, and for good after a header that does not
    /// parse.
    tracking: bool,
    /// The start of a frame header handed up so far.
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// A data frame without FIN was handed up, and not yet its last fragment.
    in_message: bool,
    /// The last read found nothing to read.
    drained: bool,
}

impl Boundaries {
    fn at_rest(&self) -> bool {
        self.tracking
            && self.drained
            && self.header_len == 0
            && self.payload_left == 0
            && !self.in_message
    }

    /// Follows `bytes`, just handed up.
    fn saw(&mut self, mut bytes: &[u8]) {
        while self.tracking && !bytes.is_empty() {
            if self.payload_left > 0 {
                let skipped = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[skipped..];
                // `skipped` fits in a u64: it is at most `payload_left`.
                self.payload_left -= skipped as u64;
                continue;
            }
            let had = usize::from(self.header_len);
            let taken = (MAX_HEADER - had).min(bytes.len());
            self.header[had..had + taken].copy_from_slice(&bytes[..taken]);
            let known = had + taken;
            let mut cursor = Cursor::new(&self.header[..known]);
            match FrameHeader::parse(&mut cursor) {
                Ok(Some((header, payload))) => {
                    // Of the bytes just copied, those past the header are the
                    // payload's (or the next frame's).
                    let used = usize::try_from(cursor.position()).unwrap_or(known) - had;
                    bytes = &bytes[used..];
                    self.header_len = 0;
                    self.payload_left = payload;
                    self.message(&header);
                }
                Ok(None) => {
                    // `known` is under MAX_HEADER here: a whole header parses.
                    self.header_len = u8::try_from(known).unwrap_or(u8::MAX);
                    bytes = &bytes[taken..];
                }
                Err(_) => self.tracking = false,
            }
        }
    }

    /// Whether a fragmented message opens or ends with this frame (control
    /// frames may come between its fragments).
    fn message(&mut self, header: &FrameHeader) {
        match header.opcode {
            OpCode::Data(Data::Continue) => self.in_message = !header.is_final,
            OpCode::Data(_) => self.in_message = !header.is_final,
            OpCode::Control(_) => {}
        }
    }
}

fn taken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the stream went to a fresh WebSocket",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(taken()));
        };
        let before = buf.filled().len();
        match Pin::new(inner).poll_read(cx, buf) {
            Poll::Pending => {
                this.frames.drained = true;
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                this.frames.drained = false;
                this.frames.saw(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.frames.drained = false;
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_write(cx, buf),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(S::is_write_vectored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::Control;

    fn frame(opcode: OpCode, is_final: bool, payload: usize, masked: bool) -> Vec<u8> {
        let header = FrameHeader {
            is_final,
            opcode,
            mask: masked.then_some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(payload as u64, &mut out).unwrap();
        out.extend(std::iter::repeat_n(b'x', payload));
        out
    }

    fn text(payload: usize) -> Vec<u8> {
        frame(OpCode::Data(Data::Text), true, payload, true)
    }

    /// `bytes` handed up in pieces of `step`, each followed by an empty read.
    fn follow(bytes: &[u8], step: usize) -> Boundaries {
        let mut frames = Boundaries {
            tracking: true,
            ..Boundaries::default()
        };
        for piece in bytes.chunks(step) {
            frames.drained = false;
            frames.saw(piece);
            frames.drained = true;
        }
        frames
    }

    #[test]
    fn whole_frames_in_any_pieces_end_at_rest() {
        // Short, 16-bit and 64-bit lengths, masked and not.
        let mut stream = text(3);
        stream.extend(text(200));
        stream.extend(text(70_000));
        stream.extend(frame(OpCode::Control(Control::Ping), true, 4, false));
        for step in [1, 2, 3, 7, 13, 14, 15, 1024, stream.len()] {
            assert!(follow(&stream, step).at_rest(), "pieces of {step}");
        }
    }

    #[test]
    fn a_part_of_a_frame_is_not_at_rest() {
        let stream = [text(10), text(70_000)].concat();
        // Every cut inside the second frame: its header or its payload.
        for cut in [13, 17, 18, 20, 100, stream.len() - 1] {
            assert!(!follow(&stream[..cut], 5).at_rest(), "cut at {cut}");
        }
        assert!(
            follow(&stream[..16], 5).at_rest(),
            "the first frame ends at 16"
        );
    }

    #[test]
    fn an_open_fragmented_message_is_not_at_rest() {
        let first = frame(OpCode::Data(Data::Text), false, 5, true);
        let ping = frame(OpCode::Control(Control::Ping), true, 0, true);
        let last = frame(OpCode::Data(Data::Continue), true, 5, true);
        assert!(!follow(&first, 4).at_rest());
        assert!(!follow(&[first.clone(), ping.clone()].concat(), 4).at_rest());
        assert!(follow(&[first, ping, last].concat(), 4).at_rest());
    }

    #[test]
    fn a_read_not_yet_drained_is_not_at_rest() {
        let mut frames = follow(&text(10), 100);
        frames.drained = false;
        assert!(!frames.at_rest());
    }

    #[test]
    fn a_header_it_cannot_parse_stops_tracking_for_good() {
        // Opcode 3 is reserved: tungstenite's parser refuses it.
        let mut stream = frame(OpCode::Data(Data::Reserved(3)), true, 2, true);
        stream.extend(text(3));
        for step in [1, 4, 100] {
            let frames = follow(&stream, step);
            assert!(!frames.tracking, "pieces of {step}");
            assert!(!frames.at_rest(), "pieces of {step}");
        }
    }
}
