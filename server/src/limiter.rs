//! Messages per second per connection: a token bucket. A connection a little
//! over its rate gets RATE_LIMITED answers; one far over it (a flood) is cut off.

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the rate: requests are answered with RATE_LIMITED.
    Limited,
    /// A whole burst over the rate: the connection is closed.
    Flood,
}

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    /// Tokens left; below zero by the frames over the rate.
    tokens: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            per_sec: f64::from(per_sec.max(1)),
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Takes a token for one frame arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Verdict::Allowed
        } else if self.tokens >= -self.burst {
            Verdict::Limited
        } else {
            Verdict::Flood
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_limits_then_floods() {
        let mut limiter = RateLimiter::new(10, 5);
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..12).map(|_| limiter.check(now)).collect();
        assert!(verdicts[..5].iter().all(|v| *v == Verdict::Allowed));
        assert!(verdicts[5..10].iter().all(|v| *v == Verdict::Limited));
        assert_eq!(verdicts[11], Verdict::Flood);
    }

    #[test]
    fn tokens_come_back_with_time() {
        let mut limiter = RateLimiter::new(10, 2);
        let start = Instant::now();
        assert_eq!(limiter.check(start), Verdict::Allowed);
        assert_eq!(limiter.check(start), Verdict::Allowed);
        assert_eq!(limiter.check(start), Verdict::Limited);
        // 0.3 s at 10/s refills three tokens, capped at the burst of two.
        let later = start + Duration::from_millis(300);
        assert_eq!(limiter.check(later), Verdict::Allowed);
        assert_eq!(limiter.check(later), Verdict::Allowed);
        assert_eq!(limiter.check(later), Verdict::Limited);
    }
}
