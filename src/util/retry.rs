//! Retrying transient failures: exponential backoff with jitter (on `backon`), a peer's
//! `Retry-After` honoured up to a cap, and the policy of each caller side by side.
//!
//! The wait before attempt `n + 1` (after `n` failures) starts from a base that doubles from
//! [`RetryPolicy::initial_backoff`] up to [`RetryPolicy::max_backoff`]. With jitter ("equal
//! jitter") the wait is drawn from `[base / 2, base]`, so many clients that failed together do
//! not come back together, yet no wait is ever longer than the cap or shorter than half the base.
//! A `Retry-After` from the peer replaces the backoff, cut to [`RetryPolicy::max_retry_after`], and
//! is not jittered: the peer said when.
//!
//! The callers and their bounds ([`RetryPolicy::BROKER`], [`RetryPolicy::WEBHOOK`],
//! [`RetryPolicy::RECONCILE`]) are kept here so one table test pins them all. Two ways to use a
//! policy:
//! - [`RetryPolicy::wait_before_retry`] computes one wait from a count of failures, for callers
//!   that keep the count themselves (the contract gate's pure `decide`, which stores it in
//!   status; the controller's error policy, which requeues);
//! - [`run`] drives an async operation to success, a final answer, or the last attempt.
//!
//! Jitter is [`Jitter::Random`] in production and [`Jitter::Seeded`] or [`Jitter::None`] in tests
//! that need exact or reproducible waits.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

/// How waits are spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The base itself: exact waits, for tests that pin them.
    None,
    /// Drawn from `[base / 2, base]` with a fresh random seed (production).
    Random,
    /// Drawn from `[base / 2, base]`, reproducibly: the same seed gives the same waits.
    Seeded(u64),
}

/// How often and how patiently a caller retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; at least 1. [`u32::MAX`] retries for ever.
    pub max_attempts: u32,
    /// Base wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Longest base wait (and so longest wait) backoff computes.
    pub max_backoff: Duration,
    /// Longest wait accepted from a `Retry-After`; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// How waits are spread.
    pub jitter: Jitter,
}

impl RetryPolicy {
    /// Pact Broker requests (can-i-deploy, record-deployment), from the CLI and the controller:
    /// 4 attempts, base waits 1 s, 2 s, 4 s (doubling to at most 30 s when more attempts are
    /// allowed), `Retry-After` honoured up to 60 s.
    pub const BROKER: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(60),
        jitter: Jitter::Random,
    };

    /// Pact Broker requests from inside a reconcile: one attempt. A retry there is the gate's
    /// next ask a poll interval later (counted in status), never a sleep holding a worker that
    /// other Rollouts share.
    pub const RECONCILE_BROKER: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::BROKER
    };

    /// Webhook deliveries: 4 attempts, base waits 1 s, 2 s, 4 s (at most 30 s), `Retry-After`
    /// honoured up to 30 s.
    pub const WEBHOOK: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(30),
        jitter: Jitter::Random,
    };

    /// The controller's requeue after a failed reconcile: for ever, base waits 1 s doubling to
    /// 120 s. Kubernetes answers carry no `Retry-After` the controller sees.
    pub const RECONCILE: RetryPolicy = RetryPolicy {
        max_attempts: u32::MAX,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(120),
        max_retry_after: Duration::from_secs(120),
        jitter: Jitter::Random,
    };

    /// This policy with `jitter`.
    pub fn with_jitter(mut self, jitter: Jitter) -> RetryPolicy {
        self.jitter = jitter;
        self
    }

    /// The backoff (jittered per the policy) before attempt `failed_attempts + 1`; a count of 0
    /// is taken as 1.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        // After 64 doublings every base is the cap; drawing further would only cost time.
        let n = failed_attempts.clamp(1, 64) as usize;
        self.builder()
            .without_max_times()
            .build()
            .nth(n - 1)
            .unwrap_or(self.max_backoff)
    }

    /// The wait before the next attempt: the peer's `Retry-After` when it sent one (capped),
    /// otherwise [`RetryPolicy::backoff`].
    pub fn wait_before_retry(
        &self,
        failed_attempts: u32,
        retry_after: Option<Duration>,
    ) -> Duration {
        match retry_after {
            Some(after) => after.min(self.max_retry_after),
            None => self.backoff(failed_attempts),
        }
    }

    /// The backoff sequence as `backon` builds it. Equal jitter from `backon`'s additive jitter
    /// (which adds up to 100 % of each delay): half-sized delays, each plus up to itself.
    fn builder(&self) -> ExponentialBuilder {
        let exact = ExponentialBuilder::new().with_factor(2.0);
        match self.jitter {
            Jitter::None => exact
                .with_min_delay(self.initial_backoff)
                .with_max_delay(self.max_backoff),
            Jitter::Random | Jitter::Seeded(_) => {
                let halved = exact
                    .with_min_delay(self.initial_backoff / 2)
                    .with_max_delay(self.max_backoff / 2)
                    .with_jitter();
                match self.jitter {
                    Jitter::Seeded(seed) => halved.with_jitter_seed(seed),
                    _ => halved,
                }
            }
        }
    }
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::BROKER`].
    fn default() -> Self {
        RetryPolicy::BROKER
    }
}

/// One failed attempt that is worth repeating, as an operation passed to [`run`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transient<E> {
    /// What went wrong.
    pub error: E,
    /// How long the peer asked to wait, if it did.
    pub retry_after: Option<Duration>,
}

impl<E> Transient<E> {
    /// A failure without `Retry-After`.
    pub fn new(error: E) -> Self {
        Transient {
            error,
            retry_after: None,
        }
    }
}

/// What [`run`] ends with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished<T, E> {
    /// The operation's answer, or the last transient failure when every attempt failed.
    pub result: Result<T, E>,
    /// Attempts made.
    pub attempts: u32,
}

/// Run `operation` until it answers (`Ok`: success, or a failure that retrying cannot fix,
/// which the caller keeps inside `T`) or the policy's attempts are used up, sleeping with
/// `sleep` between attempts (`tokio::time::sleep`, or a recorder in tests). `on_retry` hears
/// each failure that will be retried, with the attempt count and the wait.
pub async fn run<T, E, Op, Fut, S, SFut>(
    policy: &RetryPolicy,
    sleep: S,
    mut operation: Op,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Finished<T, E>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Transient<E>>>,
    S: Fn(Duration) -> SFut + 'static,
    SFut: Future<Output = ()>,
{
    let attempts = AtomicU32::new(0);
    let retries = policy.max_attempts.max(1).saturating_sub(1) as usize;
    let cap = policy.max_retry_after;
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        operation()
    })
    .retry(policy.builder().with_max_times(retries))
    .sleep(sleep)
    // Honour Retry-After, but only while attempts remain (`next` is None after the last).
    .adjust(|failure: &Transient<E>, next| {
        next.map(|backoff| failure.retry_after.map_or(backoff, |after| after.min(cap)))
    })
    .notify(|failure: &Transient<E>, wait| {
        on_retry(&failure.error, attempts.load(Ordering::Relaxed), wait)
    })
    .await;
    Finished {
        result: result.map_err(|failure| failure.error),
        attempts: attempts.load(Ordering::Relaxed),
    }
}

/// A `Retry-After` header's value: delay-seconds or an HTTP date (a date in the past is zero).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    /// Each caller's bounds: attempts, the base waits after 1, 2, ... failures, the cap and the
    /// `Retry-After` cap.
    #[test]
    fn every_callers_bounds() {
        let cases: [(&str, RetryPolicy, u32, Vec<Duration>, u64); 3] = [
            (
                "broker",
                RetryPolicy::BROKER,
                4,
                secs(&[1, 2, 4, 8, 16, 30, 30]),
                60,
            ),
            (
                "webhook",
                RetryPolicy::WEBHOOK,
                4,
                secs(&[1, 2, 4, 8, 16, 30, 30]),
                30,
            ),
            (
                "reconcile",
                RetryPolicy::RECONCILE,
                u32::MAX,
                secs(&[1, 2, 4, 8, 16, 32, 64, 120, 120]),
                120,
            ),
        ];
        for (name, policy, attempts, bases, retry_after_cap) in cases {
            assert_eq!(policy.max_attempts, attempts, "{name}");
            assert_eq!(
                policy.jitter,
                Jitter::Random,
                "{name}: jittered in production"
            );
            let exact = policy.clone().with_jitter(Jitter::None);
            let waits: Vec<Duration> = (1..=bases.len() as u32).map(|n| exact.backoff(n)).collect();
            assert_eq!(waits, bases, "{name}");
            assert_eq!(
                exact.backoff(0),
                bases[0],
                "{name}: 0 failures is taken as 1"
            );
            assert_eq!(
                exact.backoff(u32::MAX),
                policy.max_backoff,
                "{name}: capped for ever"
            );
            assert_eq!(
                exact.wait_before_retry(1, Some(Duration::from_secs(10_000))),
                Duration::from_secs(retry_after_cap),
                "{name}: Retry-After cap"
            );
            assert_eq!(
                exact.wait_before_retry(3, Some(Duration::from_secs(3))),
                Duration::from_secs(3),
                "{name}: Retry-After replaces backoff"
            );
        }
        assert_eq!(RetryPolicy::default(), RetryPolicy::BROKER);
    }

    #[test]
    fn jitter_stays_between_half_the_base_and_the_base() {
        for policy in [
            RetryPolicy::BROKER,
            RetryPolicy::WEBHOOK,
            RetryPolicy::RECONCILE,
        ] {
            let exact = policy.clone().with_jitter(Jitter::None);
            for seed in 0..200 {
                let jittered = policy.clone().with_jitter(Jitter::Seeded(seed));
                for n in 1..=10 {
                    let base = exact.backoff(n);
                    let wait = jittered.backoff(n);
                    assert!(
                        wait >= base / 2 && wait <= base,
                        "seed {seed}, after {n} failures: {wait:?} not in [{:?}, {base:?}]",
                        base / 2
                    );
                }
            }
            // Random waits are spread, not all equal.
            let draws: std::collections::BTreeSet<Duration> =
                (0..20).map(|_| policy.backoff(3)).collect();
            assert!(draws.len() > 1, "{draws:?}");
        }
    }

    #[test]
    fn a_seed_gives_the_same_waits_again() {
        let p = RetryPolicy::BROKER.with_jitter(Jitter::Seeded(7));
        let a: Vec<Duration> = (1..6).map(|n| p.backoff(n)).collect();
        let b: Vec<Duration> = (1..6).map(|n| p.backoff(n)).collect();
        assert_eq!(a, b);
        let other = RetryPolicy::BROKER.with_jitter(Jitter::Seeded(8));
        assert_ne!(a, (1..6).map(|n| other.backoff(n)).collect::<Vec<_>>());
    }

    type Slept = Arc<Mutex<Vec<Duration>>>;

    fn recorder() -> (Slept, impl Fn(Duration) -> std::future::Ready<()> + 'static) {
        let slept: Slept = Arc::default();
        let s = slept.clone();
        (slept, move |d| {
            s.lock().unwrap().push(d);
            std::future::ready(())
        })
    }

    /// `answers` in turn: `Err(Some(s))` is a transient failure with `Retry-After: s`,
    /// `Err(None)` one without, `Ok(x)` an answer.
    fn scripted(
        answers: Vec<Result<&'static str, Option<u64>>>,
    ) -> impl FnMut() -> std::future::Ready<Result<&'static str, Transient<String>>> {
        let mut answers = answers.into_iter();
        move || {
            let next = answers.next().expect("called more often than scripted");
            std::future::ready(next.map_err(|after| Transient {
                error: "unavailable".to_string(),
                retry_after: after.map(Duration::from_secs),
            }))
        }
    }

    #[tokio::test]
    async fn run_retries_transient_failures_and_stops_at_the_last_attempt() {
        let policy = RetryPolicy::BROKER.with_jitter(Jitter::None);
        let (slept, sleep) = recorder();
        let mut heard = Vec::new();
        let done = run(
            &policy,
            sleep,
            scripted(vec![Err(None), Err(Some(3)), Err(Some(600)), Err(None)]),
            |e, attempt, wait| heard.push((e.clone(), attempt, wait)),
        )
        .await;
        assert_eq!(done.result, Err("unavailable".to_string()));
        assert_eq!(done.attempts, 4);
        // Backoff 1 s, then Retry-After 3 s, then Retry-After 600 s cut to 60 s; no wait after
        // the last attempt.
        assert_eq!(*slept.lock().unwrap(), secs(&[1, 3, 60]));
        assert_eq!(heard.len(), 3);
        assert_eq!(
            heard[2].1, 3,
            "attempt count when the third failure is heard"
        );

        let (slept, sleep) = recorder();
        let done = run(
            &policy,
            sleep,
            scripted(vec![Err(None), Ok("yes")]),
            |_, _, _| {},
        )
        .await;
        assert_eq!(
            done,
            Finished {
                result: Ok("yes"),
                attempts: 2
            }
        );
        assert_eq!(*slept.lock().unwrap(), secs(&[1]));

        let one = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        let (slept, sleep) = recorder();
        let done = run(&one, sleep, scripted(vec![Err(Some(5))]), |_, _, _| {}).await;
        assert_eq!(done.attempts, 1);
        assert!(
            slept.lock().unwrap().is_empty(),
            "no wait after the only attempt"
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
