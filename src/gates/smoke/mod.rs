//! Smoke checks.
