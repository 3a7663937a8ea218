//! Results of a session's recent requests by id, kept for the grace period and
//! handed to the fresh session of a client whose session could not be resumed
//! (its outbox overflowed): a request the client re-sends there, which had
//! already run, is answered as it was the first time instead of running again
//! (a re-sent accept gets OK, not ALREADY_ANSWERED).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// At most this many results are kept...
const MAX_RESULTS: usize = 256;
/// ...and at most this many bytes of them.
const MAX_BYTES: usize = 256 * 1024;

pub struct RecentResults {
    /// (request id, its answer: `"ok":...` or `"error":...`, when).
    entries: VecDeque<(u64, String, Instant)>,
    bytes: usize,
    keep: Duration,
}

impl RecentResults {
    pub fn new(keep: Duration) -> RecentResults {
        RecentResults {
            entries: VecDeque::new(),
            bytes: 0,
            keep,
        }
    }

    pub fn remember(&mut self, id: u64, body: String, now: Instant) {
        self.bytes += body.len();
        self.entries.push_back((id, body, now));
        self.prune(now);
    }

    /// The body of request `id`'s result, once.
    pub fn take(&mut self, id: u64, now: Instant) -> Option<String> {
        self.prune(now);
        let index = self.entries.iter().position(|(i, _, _)| *i == id)?;
        let (_, body, _) = self.entries.remove(index)?;
        self.bytes -= body.len();
        Some(body)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        while let Some((_, body, at)) = self.entries.front() {
            let too_many = self.entries.len() > MAX_RESULTS || self.bytes > MAX_BYTES;
            if !too_many && now.saturating_duration_since(*at) <= self.keep {
                break;
            }
            self.bytes -= body.len();
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_handed_out_once_within_its_time() {
        let now = Instant::now();
        let mut results = RecentResults::new(Duration::from_secs(30));
        results.remember(7, r#""ok":null"#.to_owned(), now);
        results.remember(8, r#""ok":null"#.to_owned(), now);
        assert!(results.take(7, now).is_some());
        assert!(results.take(7, now).is_none());
        assert!(results.take(8, now + Duration::from_secs(31)).is_none());
    }

    #[test]
    fn the_count_is_bounded() {
        let now = Instant::now();
        let mut results = RecentResults::new(Duration::from_secs(30));
        for id in 0..1000 {
            results.remember(id, r#""ok":null"#.to_owned(), now);
        }
        assert_eq!(results.entries.len(), MAX_RESULTS);
        assert!(results.take(0, now).is_none());
        assert!(results.take(999, now).is_some());
    }
}
