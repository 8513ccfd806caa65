//! Which complete checkpoints to keep.

use std::time::Duration;

/// Retention rules for complete checkpoints in the object store (and, with
/// `local_keep_last`, on the local tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N. Default: none (all).
    pub keep_last: Option<usize>,
    /// Also keep every step that is a multiple of K, whatever the other rules say. Default:
    /// none.
    pub keep_every: Option<u64>,
    /// Delete checkpoints committed longer ago than this. Default: none.
    pub max_age: Option<Duration>,
    /// On the local tier, keep the newest M of those already durable in the store (local
    /// checkpoints not yet drained are never deleted). Default: 2.
    pub local_keep_last: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: None,
            keep_every: None,
            max_age: None,
            local_keep_last: 2,
        }
    }
}

impl Retention {
    /// The steps to delete among complete checkpoints `(step, committed Unix ms)`, at
    /// `now_ms`. The newest complete checkpoint is never deleted.
    pub fn to_delete(&self, complete: &[(u64, i64)], now_ms: i64) -> Vec<u64> {
        let mut steps: Vec<(u64, i64)> = complete.to_vec();
        steps.sort_unstable();
        steps.dedup_by_key(|s| s.0);
        let n = steps.len();
        let mut out = Vec::new();
        for (i, &(step, at)) in steps.iter().enumerate() {
            if i + 1 == n {
                break; // the newest
            }
            if self.keep_every.is_some_and(|k| k > 0 && step % k == 0) {
                continue;
            }
            let beyond_last = self.keep_last.is_some_and(|k| n - i > k);
            let too_old = self
                .max_age
                .is_some_and(|a| now_ms.saturating_sub(at) > a.as_millis() as i64);
            if beyond_last || too_old {
                out.push(step);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_last_every_and_age() {
        let c: Vec<(u64, i64)> = (1..=10).map(|s| (s * 100, s as i64 * 1000)).collect();
        let r = Retention {
            keep_last: Some(3),
            keep_every: Some(500),
            ..Default::default()
        };
        assert_eq!(r.to_delete(&c, 0), vec![100, 200, 300, 400, 600, 700]);
        let r = Retention {
            max_age: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        // now = 12 s: older than 5 s are those committed before 7 s.
        assert_eq!(r.to_delete(&c, 12_000), vec![100, 200, 300, 400, 500, 600]);
        // The newest survives even when everything is too old.
        assert_eq!(r.to_delete(&c[..1], 1 << 40), Vec::<u64>::new());
        assert_eq!(Retention::default().to_delete(&c, 0), Vec::<u64>::new());
    }
}
