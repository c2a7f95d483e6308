//! Pure statistics: no I/O, no clock, no unseeded randomness.
//!
//! * [`sequential`]: the anytime-valid machinery (mixture SPRT e-values and confidence
//!   sequences over a parameter grid, conditional Poisson likelihood, dispersion estimate).
//! * [`counts`]: the sequential rate-ratio test used for error rates and latency exceedances.
//! * [`latency`]: histograms, quantiles, exceedance boundaries, the whole-distribution test.
//! * [`rate`]: anytime-valid bounds on one arm's own event rate (the `passRate` and `maxRate` rules).
//! * [`difference`]: the anytime-valid test of two arms' rate difference (the non-inferiority rule).
//! * [`fixed`]: fixed-horizon tests (two-proportion z, Fisher, chi-square, Mann-Whitney,
//!   Hodges-Lehmann, order-statistic ranks, Wilson interval).

pub mod counts;
pub mod difference;
pub mod fixed;
pub mod latency;
pub mod rate;
pub mod sequential;
