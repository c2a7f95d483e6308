//! Canary analysis: pure statistics (`stats`), the judge that turns a policy and counts into
//! verdicts, metric providers (`providers`: the only I/O here), and a seeded simulation for the
//! benchmark. Everything here is pure: no I/O, no
//! clock (time is the sequence of windows), no randomness without a caller-provided seed.
//!
//! # API for the controller
//!
//! ```no_run
//! use tollgate::analysis::judge::{self, ArmCounts, JudgePolicy, JudgeState, JudgeVerdict, JudgeWindow};
//!
//! let policy = JudgePolicy::default(); // map the Rollout's analysis fields onto this
//! // status.analysis.judgeState (JSON) -> JudgeState; a fresh step starts from default()
//! let state: JudgeState = serde_json::from_str("{}").unwrap_or_default();
//! let window = JudgeWindow {
//!     baseline: ArmCounts { requests: Some(300.0), errors: Some(3.0), latency: None },
//!     canary: ArmCounts { requests: Some(298.0), errors: Some(2.0), latency: None },
//!     canary_share: Some(0.5),
//! };
//! match judge::update(&state, &policy, &window) {
//!     Ok((next_state, judgement)) => {
//!         // store serde_json::to_value(&next_state) in status; act on judgement.verdict:
//!         // Fail -> roll back, Pass -> next step / promote, Undecided -> look again later.
//!         // judgement.metrics carries per-metric verdict, test, estimate, bounds, e-value,
//!         // sample counts and a human reason for Events and status.
//!         let _ = (next_state, judgement.verdict == JudgeVerdict::Fail);
//!     }
//!     Err(policy_error) => { /* permanent: invalid policy, wait for a spec change */ let _ = policy_error; }
//! }
//! ```
//!
//! * [`judge::JudgePolicy`]: alpha (family-wise, rollback), alpha_pass (family-wise, promotion),
//!   per-metric tolerances/pass tolerances/critical flags/weights, latency quantiles, minimum
//!   data, dispersion settings. Deserializes from camelCase JSON with defaults for every field.
//! * [`judge::JudgeWindow`]: per arm ([`judge::ArmCounts`]) `requests`, `errors`, `latency` (histogram bounds + cumulative
//!   counts), all increments over one look interval, plus the nominal `canary_share`.
//! * [`judge::JudgeState`]: small (a few KB as JSON), `Serialize`/`Deserialize`; resuming from
//!   a deserialized state gives exactly the same verdicts as never having stopped.
//! * [`judge::update`]`(state, policy, window) -> Result<(JudgeState, Judgement), PolicyError>`
//!   and [`judge::evaluate`] (verdicts of a state without new data).
//! * [`judge::JudgeVerdict`]: `Pass`, `Fail`, `Undecided` (look again; the Rollout's
//!   `Running`, not the CRD's `Inconclusive`, which is an analysis that ended undecided).
//!
//! # Methods (see each module for details)
//!
//! * Error rate: errors in each arm are Poisson with rate (requests x per-request rate);
//!   conditioning on a window's total errors leaves a binomial share that depends only on the
//!   rate ratio `theta` and the window's request split (Lindon & Malek 2022). The running
//!   log-likelihood of `log theta` on a grid gives a mixture SPRT e-value against
//!   `theta <= tolerance` (fail at `1/alpha_m`), the mirror e-value against
//!   `theta >= passTolerance` (pass at `1/alpha_pass_m`), and bounds dual to the two tests
//!   (the lower one from the fail test's family of nulls, the upper one from the pass test's:
//!   [`stats::sequential::dual_bounds`]), so the bounds a reason prints agree with its verdict.
//! * Latency quantile q: the same test on the counts of requests slower than the histogram
//!   bound nearest the baseline's q-quantile (frozen once chosen from the first baseline data,
//!   whose windows are then not reused); plus descriptive quantile estimates and a fixed-horizon
//!   order-statistic interval for the quantile difference.
//! * Whole distribution: a sequential rank-score tilt test over histogram buckets.
//! * Overdispersion: `phi` is estimated online from prequential Pearson residuals of the
//!   canary's share of each window's events against the share predicted from earlier windows
//!   (one conditional term, one degree of freedom, per window). Only the share tempers the
//!   share test: a shock shared by both arms (a dependency's hiccup, or Prometheus scraping the
//!   two arms a little apart so their counts jitter together) scales both counts alike and
//!   leaves the share binomial, so it neither holds nor tempers the test; a burst in one arm
//!   moves the share and does both. Each arm's count against its own earlier rate (marginal
//!   terms, which shared shocks do move) is kept apart and widens only the bounds on an arm's
//!   own rate (the non-inferiority and fail-fast rules). Every sum forgets: before a window it
//!   is multiplied by `1 - 1/memoryWindows` (60 windows, 30 minutes at 30-s looks), so a burst
//!   that has ended, or history that no longer fits, stops taxing the analysis; the degrees of
//!   freedom decay alike. The estimate is shrunk toward a prior built from a
//!   burst model: each arm's rate is multiplied, per window, by an independent factor of mean 1
//!   and coefficient of variation `priorBurstCv` (0.2), which makes the variance of a count of
//!   mean `mu` equal to `mu (1 + cv^2 mu)`; so the prior dispersion grows with the events per
//!   window and is negligible at a few errors per window. The estimate's excess over 1 is
//!   inflated by `1 + upperZ * sqrt(2/df)`, because an estimate that is low by a fraction `f`
//!   raises the false-alarm rate from `alpha` toward `alpha^(1-f)`. The log-likelihood is
//!   divided by the result (quasi-likelihood tempering), which keeps the error rate on Poisson
//!   data within `alpha / (1 - alpha)`. While the residuals themselves show overdispersion
//!   (factor above `overdispersedAbove` with a Poisson prior), a count metric may not fail
//!   before `overdispersedMinWindows` windows.
//!
//!
//!   **Baseline history.** Before an analysis's first look the controller reads the stable
//!   track's last hour (120 look windows) from Prometheus, and [`judge::prime_history`] adds
//!   each of those windows' error counts to the estimate as one more marginal term (one degree
//!   of freedom), against the history's own earlier rate; a baseline's history has no canary
//!   to condition on, so it serves as a cautious prior that the forgetting hands over to the
//!   analysis's own shares (after 60 windows it weighs about a third). History touches nothing but the
//!   dispersion estimate: the rate-ratio evidence, counts and windows are the analysis's own.
//!   Why: at a few errors per window, a dozen windows cannot tell a bursty service from a steady
//!   one (one bursty run in twelve looks Poisson after 12 windows at 3 errors per window and
//!   arm), and 12 windows is when a doubled error rate must be caught. A hundred more windows
//!   can: a bursty service is tempered from the first look, and a steady one is no longer
//!   taxed for the noise of its own estimate (the inflation shrinks with the degrees of
//!   freedom). History windows usually carry all the traffic, so under the burst model they
//!   show more dispersion than a split arm will: the error is on the cautious side.
//!   `tollgate analyze` takes the same history as `baselineHistory`.
//!
//!   Limits, measured by the benchmark's bursty A/A cells (Gamma rate multipliers, CV 0.5,
//!   independent per arm and 30-s window): this is an approximation calibrated by simulation,
//!   not a proof. Without history (a new service, a Prometheus that keeps less than an hour,
//!   or a failed read, which the look's reason says) the inflation acts on the excess only, so
//!   a run whose residuals happen to look Poisson is judged as Poisson: at about 3 errors per
//!   window and arm the bursty false-rollback rate is then about twice the Poisson one (0.7-0.9%
//!   against 0.4% at `alpha = 2%`), since tempering Poisson-looking runs would slow every real
//!   detection. History assumes the past hour is like the analysis: an hour with an incident
//!   in it makes the judge more cautious (slower) for that analysis, and a service whose
//!   bursts start with the new version is judged on the analysis's own windows. A constant
//!   factor also fits a mixture of window sizes only on average (bursty windows have more
//!   events and more dispersion). A shock shared by both arms costs the share test nothing but
//!   widens the arms' own rate bounds while it is remembered, which can delay a pass by the
//!   absolute margin; bursts longer than a window look like a sustained effect, which, as far
//!   as the data can tell, they are. The margin rule's bounds cover each arm's
//!   exposure-weighted mean rate: under a shared change of rate while the split also changes,
//!   the two means weigh the change differently.
//! * Family-wise error: weighted Bonferroni over metrics, separately for rollback and promotion.

pub mod judge;
pub mod providers;
pub mod sim;
pub mod stats;
