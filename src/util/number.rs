//! How a measured number is written for people: in status reasons, the CLI's tree, chat
//! messages. Three decimals; scientific notation (`1.922e6`, `2.000e-4`) when the number is too
//! large (from 1e5) or too small (below 1e-3) for three decimals to say much. Not for machines:
//! JSON output carries the full value.

/// `x` for people: `0.850`, `1.922e6`, `2.000e-4`, `0.000`, and `inf`, `-inf`, `NaN` as such.
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        format!("{x:.3}")
    }
}

/// A count for people: a whole number as such (`211`, `143800`), anything else (counts from
/// Prometheus' `increase()` are estimates with fractions) as [`format_number`]. Whole numbers
/// of twelve digits or more go to [`format_number`] too: no service counts that many in a look,
/// and a long row of digits is harder to read than `1.438e12`.
pub fn format_count(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else {
        format_number(x)
    }
}

/// [`format_number`], or `-` when there is no number.
pub fn format_optional(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), format_number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_readable() {
        for (x, shown) in [
            (1.2345, "1.234"),
            (0.85, "0.850"),
            (50.0, "50.000"),
            (99_999.0, "99999.000"),
            (100_000.0, "1.000e5"),
            (1_922_000.0, "1.922e6"),
            (1.2665e20, "1.266e20"),
            (5.015e31, "5.015e31"),
            (0.001, "0.001"),
            (0.0002, "2.000e-4"),
            (-0.0002, "-2.000e-4"),
            (0.0, "0.000"),
            (-3.1, "-3.100"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_number(x), shown, "{x}");
        }
        assert_eq!(format_optional(None), "-");
        for (x, shown) in [
            (0.0, "0"),
            (143_800.0, "143800"),
            (211.0, "211"),
            (211.828, "211.828"),
            (-3.0, "-3"),
            (1e12, "1.000e12"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_count(x), shown, "{x}");
        }
        assert_eq!(format_optional(Some(1.02)), "1.020");
    }
}
