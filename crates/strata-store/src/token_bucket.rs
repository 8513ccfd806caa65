//! An asynchronous token bucket, used for request-rate and byte-rate limits here and for the
//! link emulator's bandwidth caps in `strata-testkit`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket with a refill rate in tokens per second and a burst size in tokens.
///
/// `acquire(n)` reserves `n` tokens at once, even beyond the burst, and sleeps until the
/// bucket has paid the debt back. Reservations are served in arrival order, so concurrent
/// takers share the rate fairly. The rate can be changed at run time.
#[derive(Debug)]
pub struct TokenBucket {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket refilling at `rate` tokens per second that holds at most `burst` tokens. It
    /// starts full.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            state: Mutex::new(State {
                rate: rate.max(f64::MIN_POSITIVE),
                burst: burst.max(1.0),
                tokens: burst.max(1.0),
                last: Instant::now(),
            }),
        }
    }

    /// Changes the rate (tokens per second) and burst; reservations already made keep their
    /// wake-up time.
    pub fn set_rate(&self, rate: f64, burst: f64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.refill();
        s.rate = rate.max(f64::MIN_POSITIVE);
        s.burst = burst.max(1.0);
        s.tokens = s.tokens.min(s.burst);
    }

    /// The current rate in tokens per second.
    pub fn rate(&self) -> f64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).rate
    }

    /// Reserves `n` tokens and returns how long the caller must wait before using them.
    pub fn reserve(&self, n: u64) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.refill();
        s.tokens -= n as f64;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / s.rate)
        }
    }

    /// Reserves `n` tokens and sleeps until they are paid for.
    ///
    /// Cancel safety: if the future is dropped while sleeping, the tokens stay spent, which
    /// errs on the side of staying under the limit.
    pub async fn acquire(&self, n: u64) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl State {
    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_is_enforced() {
        let b = TokenBucket::new(1000.0, 100.0);
        let start = Instant::now();
        // 100 burst + 400 at 1000/s = at least 0.4 s.
        for _ in 0..5 {
            b.acquire(100).await;
        }
        let t = start.elapsed().as_secs_f64();
        assert!(t >= 0.38, "took {t}");
        assert!(t < 1.0, "took {t}");
    }

    #[test]
    fn debt_makes_later_takers_wait() {
        let b = TokenBucket::new(100.0, 10.0);
        assert_eq!(b.reserve(10), Duration::ZERO);
        let w = b.reserve(50);
        assert!(w >= Duration::from_millis(490), "{w:?}");
    }
}
