//! The frames a session has sent and its client has not acknowledged, kept for
//! a resume. Bounded in frames and in bytes: past either bound the oldest frame
//! goes and the session can no longer be resumed (a gap), so a client that does
//! not read can never make the server hold more than the bounds.

use std::collections::VecDeque;

use tokio_tungstenite::tungstenite::Utf8Bytes;

pub struct Outbox {
    next_seq: u64,
    unacked: VecDeque<Entry>,
    /// Bytes of the frames in `unacked`.
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// Frames were dropped unacknowledged: a resume would miss them.
    gap: bool,
}

struct Entry {
    seq: u64,
    text: Utf8Bytes,
    /// For a `result` frame: its request id, and where its answer starts.
    result: Option<(u64, usize)>,
}

impl Entry {
    /// (request id, answer) of a `result` frame.
    fn answer(&self) -> Option<(u64, String)> {
        let (id, start) = self.result?;
        let body = self
            .text
            .as_str()
            .get(start..self.text.len().saturating_sub(1))?;
        Some((id, body.to_owned()))
    }
}

/// What appending a frame did.
pub struct Appended {
    pub text: Utf8Bytes,
    /// This append made the first gap: the client must be dropped.
    pub overflowed: bool,
    /// Results dropped unacknowledged, as (request id, answer).
    pub lost_results: Vec<(u64, String)>,
}

impl Outbox {
    pub fn new(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox {
            next_seq: 1,
            unacked: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            gap: false,
        }
    }

    /// Appends the frame `frame(seq)` makes with the next sequence number.
    pub fn append(&mut self, frame: impl FnOnce(u64) -> String) -> Appended {
        self.push(frame, None)
    }

    /// Appends the `result` frame of request `id` with `answer` (`"ok":...`
    /// or `"error":...`).
    pub fn append_result(&mut self, id: u64, answer: &str) -> Appended {
        let frame = |seq| format!(r#"{{"type":"result","id":{id},"seq":{seq},{answer}}}"#);
        self.push(frame, Some((id, answer.len())))
    }

    fn push(
        &mut self,
        frame: impl FnOnce(u64) -> String,
        result: Option<(u64, usize)>,
    ) -> Appended {
        let seq = self.next_seq;
        self.next_seq += 1;
        let text = Utf8Bytes::from(frame(seq));
        // The answer ends just before the closing brace.
        let result = result.map(|(id, len)| (id, text.len().saturating_sub(len + 1)));
        self.bytes += text.len();
        self.unacked.push_back(Entry {
            seq,
            text: text.clone(),
            result,
        });
        let mut appended = Appended {
            text,
            overflowed: false,
            lost_results: Vec::new(),
        };
        while self.unacked.len() > self.max_frames || self.bytes > self.max_bytes {
            let Some(dropped) = self.unacked.pop_front() else {
                break;
            };
            self.bytes -= dropped.text.len();
            appended.lost_results.extend(dropped.answer());
            appended.overflowed |= !self.gap;
            self.gap = true;
        }
        appended
    }

    /// Forgets everything up to and including `seq`.
    pub fn ack(&mut self, seq: u64) {
        while let Some(entry) = self.unacked.front().filter(|e| e.seq <= seq) {
            self.bytes -= entry.text.len();
            self.unacked.pop_front();
        }
    }

    /// The answers of the results still unacknowledged, as (request id,
    /// answer), for a fresh session that takes over from this one.
    pub fn unacked_results(&self) -> impl Iterator<Item = (u64, String)> + '_ {
        self.unacked.iter().filter_map(Entry::answer)
    }

    /// The frames after `seen`, for a client resuming from there; fails when
    /// some of them are gone or `seen` is in the future.
    pub fn replay_after(
        &self,
        seen: u64,
    ) -> Result<impl Iterator<Item = &Utf8Bytes>, &'static str> {
        if self.gap || seen >= self.next_seq {
            return Err("the session cannot be resumed from there");
        }
        let first_kept = self.unacked.front().map_or(self.next_seq, |e| e.seq);
        if seen + 1 < first_kept {
            return Err("frames the client has not seen are gone");
        }
        Ok(self
            .unacked
            .iter()
            .filter(move |e| e.seq > seen)
            .map(|e| &e.text))
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn has_gap(&self) -> bool {
        self.gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> String {
        format!("frame {seq:04}")
    }

    #[test]
    fn replays_what_the_client_missed() {
        let mut outbox = Outbox::new(16, 1 << 20);
        for _ in 0..5 {
            outbox.append(frame);
        }
        outbox.ack(2);
        let replayed: Vec<String> = outbox
            .replay_after(3)
            .unwrap()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(replayed, ["frame 0004", "frame 0005"]);
        assert!(
            outbox.replay_after(1).is_err(),
            "frame 2 was acknowledged and dropped"
        );
        assert!(outbox.replay_after(6).is_err(), "seq 6 was never sent");
        assert_eq!(outbox.replay_after(5).unwrap().count(), 0);
    }

    #[test]
    fn the_frame_bound_makes_a_gap_once() {
        let mut outbox = Outbox::new(3, 1 << 20);
        let overflows: Vec<bool> = (0..6).map(|_| outbox.append(frame).overflowed).collect();
        assert_eq!(overflows, [false, false, false, true, false, false]);
        assert!(outbox.has_gap());
        assert!(outbox.replay_after(5).is_err());
    }

    #[test]
    fn results_dropped_unacknowledged_are_given_back() {
        let mut outbox = Outbox::new(2, 1 << 20);
        outbox.append_result(7, r#""ok":{"error_invitees":[]}"#);
        outbox.append(frame);
        let appended = outbox.append_result(8, r#""error":{"code":9,"message":"m"}"#);
        assert!(appended.overflowed);
        assert_eq!(
            appended.lost_results,
            [(7, r#""ok":{"error_invitees":[]}"#.to_owned())]
        );
        let kept: Vec<(u64, String)> = outbox.unacked_results().collect();
        assert_eq!(
            kept,
            [(8, r#""error":{"code":9,"message":"m"}"#.to_owned())]
        );
    }

    #[test]
    fn the_byte_bound_holds_and_acks_give_bytes_back() {
        // Each frame is 10 bytes; 35 bytes hold three.
        let mut outbox = Outbox::new(1000, 35);
        for _ in 0..3 {
            assert!(!outbox.append(frame).overflowed);
        }
        assert_eq!(outbox.bytes(), 30);
        outbox.ack(3);
        assert_eq!(outbox.bytes(), 0);
        for _ in 0..3 {
            assert!(!outbox.append(frame).overflowed);
        }
        assert!(outbox.append(frame).overflowed);
        assert!(outbox.bytes() <= 35);
    }
}
