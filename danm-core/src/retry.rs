//! Bounded, jittered retries, and the [`Sleeper`] seam that keeps this crate free of an async runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, `Send` future, as [`Sleeper`] returns it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Waits for a while. The caller's runtime provides it: a tokio sleep in async binaries,
/// [`ThreadSleeper`] for code that runs one operation per thread.
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Sleeps by blocking the current thread. Only for callers that drive each operation on its own thread
/// (the CNI binary's single request, thread-per-allocator tests); never inside a shared async executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        std::thread::sleep(duration);
        Box::pin(std::future::ready(()))
    }
}

/// Does not wait at all: retries happen at once. For tests and in-memory embedders.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSleep;

impl Sleeper for NoSleep {
    fn sleep(&self, _duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// How often and how long to retry an operation that lost a compare-and-swap race.
///
/// The delay before retry `n` (counting from 0) is drawn uniformly from `0..=min(max_delay,
/// base_delay * 2^n)` ("full jitter"), so that racing writers spread out instead of colliding again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many conflicts one operation tolerates before it gives up.
    pub max_conflicts: u32,
    /// The first retry's delay ceiling.
    pub base_delay: Duration,
    /// The ceiling of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 64 conflicts, delays from up to 1 ms growing to at most 100 ms: a few seconds at worst.
    fn default() -> Self {
        Self { max_conflicts: 64, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(100) }
    }
}

impl RetryPolicy {
    /// The jittered delay before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let ceiling = ceiling.min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_ceiling() {
        let p = RetryPolicy {
            max_conflicts: 5,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(10),
        };
        for retry in 0..40 {
            let ceiling = Duration::from_millis(2 * (1u64 << retry.min(20))).min(Duration::from_millis(10));
            for _ in 0..50 {
                assert!(p.delay(retry) <= ceiling);
            }
        }
        // Full jitter really spreads: 200 draws of a 10 ms ceiling are not all equal.
        let draws: std::collections::HashSet<_> = (0..200).map(|_| p.delay(10)).collect();
        assert!(draws.len() > 100);
    }
}
