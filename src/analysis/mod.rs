//! Canary analysis: pure statistics (`stats`), the judge that turns a policy and counts into
//! verdicts, and metric providers.
pub mod providers;
