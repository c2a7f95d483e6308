//! What Prometheus (or a server posing as it) answers to a query: success vectors, matrices and
//! scalars, errors, warnings, garbage. The parser returns an answer or a typed error, never a
//! panic, and never more series or points than its limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::analysis::providers::prometheus::response::{error_of, parse, parse_value, Limits};
use tollgate::analysis::providers::window_index;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_series: 8,
        max_points: 64,
    };
    if let Ok(answer) = parse(data, limits) {
        assert!(answer.series.len() <= limits.max_series, "{} series", answer.series.len());
        let points: usize = answer.series.iter().map(|s| s.points.len()).sum();
        assert!(points <= limits.max_points, "{points} points");
        for s in &answer.series {
            for (t, _) in &s.points {
                let _ = window_index(*t, 1_800_000_000_000, 30_000, 120);
            }
        }
    }
    let _ = error_of(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_value(text);
    }
});
