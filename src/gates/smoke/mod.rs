//! Smoke checks: a few HTTP requests against canary pods with expected answers.
