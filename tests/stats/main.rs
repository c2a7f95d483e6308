//! Statistics checked against stored reference values (`reference.json`, written by
//! `gen_reference.py` beside this file: scipy for the fixed-horizon tests, an independent
//! Python implementation for the sequential e-values). No Python is needed to run these.

use serde_json::Value;
use tollgate::analysis::stats::counts::{RatioTestConfig, RatioTestState};
use tollgate::analysis::stats::fixed;
use tollgate::analysis::stats::latency::{Histogram, ShiftTestConfig, ShiftTestState};

mod properties;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stats/reference.json");
    let text =
        std::fs::read_to_string(path).expect("reference.json is committed beside the script");
    serde_json::from_str(&text).expect("reference.json parses")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * b.abs().max(1e-12) + 1e-12;
    assert!((a - b).abs() <= tol, "{what}: got {a}, want {b}");
}

#[test]
fn fisher_chi2_and_z_match_scipy() {
    let r = reference();
    let cases = r["fixed"].as_array().expect("fixed cases");
    assert!(cases.len() >= 6);
    for c in cases {
        let t: Vec<u64> = c["table"]
            .as_array()
            .expect("table")
            .iter()
            .map(|v| v.as_u64().expect("count"))
            .collect();
        let (a, b, cc, d) = (t[0], t[1], t[2], t[3]);
        let (odds, p) = fixed::fisher_exact(a, b, cc, d);
        close(p, f(&c["fisherP"]), 1e-6, &format!("fisher p {t:?}"));
        if let Some(o) = c["fisherOdds"].as_f64() {
            close(odds, o, 1e-9, &format!("fisher odds {t:?}"));
        }
        match c.get("chi2") {
            Some(stat) => {
                let (s, p) = fixed::chi2_2x2_yates(a, b, cc, d).expect("defined");
                close(s, f(stat), 1e-9, &format!("chi2 {t:?}"));
                close(p, f(&c["chi2P"]), 1e-6, &format!("chi2 p {t:?}"));
            }
            None => assert!(fixed::chi2_2x2_yates(a, b, cc, d).is_none()),
        }
        match c.get("z") {
            Some(z) => {
                let (zz, p) = fixed::two_proportion_z(a, a + b, cc, cc + d).expect("defined");
                close(zz, f(z), 1e-9, &format!("z {t:?}"));
                close(p, f(&c["zP"]), 1e-6, &format!("z p {t:?}"));
            }
            None => assert!(fixed::two_proportion_z(a, a + b, cc, cc + d).is_none()),
        }
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    let r = reference();
    for c in r["mannWhitney"].as_array().expect("cases") {
        let x: Vec<f64> = c["x"].as_array().expect("x").iter().map(f).collect();
        let y: Vec<f64> = c["y"].as_array().expect("y").iter().map(f).collect();
        let (u, p) = fixed::mann_whitney_u(&x, &y).expect("defined");
        close(u, f(&c["u"]), 1e-12, "U");
        close(p, f(&c["p"]), 1e-6, &format!("p {}", c["name"]));
    }
}

#[test]
fn order_statistic_ranks_match_scipy_binom_ppf() {
    let r = reference();
    for c in r["orderStatistics"].as_array().expect("cases") {
        let n = c["n"].as_u64().expect("n");
        let (l, u) = fixed::order_statistic_ranks(n, f(&c["q"]), f(&c["alpha"])).expect("defined");
        assert_eq!(
            (l, u),
            (c["l"].as_u64().expect("l"), c["u"].as_u64().expect("u")),
            "{c}"
        );
    }
}

#[test]
fn sequential_rate_ratio_matches_independent_python() {
    let r = reference();
    let cases = r["ratio"].as_array().expect("cases");
    assert!(cases.len() >= 5);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let cfg = RatioTestConfig {
            fail_ratio: f(&c["failRatio"]),
            pass_ratio: f(&c["passRatio"]),
            mixture_scale: f(&c["tau"]),
            dispersion: c["dispersion"]
                .as_array()
                .map(|d| (f(&d[0]), f(&d[1]), f(&d[2]))),
            keep: c["keep"].as_f64().unwrap_or(1.0),
        };
        let alpha = f(&c["alpha"]);
        let alpha_pass = f(&c["alphaPass"]);
        let grid = cfg.grid();
        let mut st = RatioTestState::new(&cfg);
        let wins = c["windows"].as_array().expect("windows");
        let exp = c["expected"].as_array().expect("expected");
        for (i, (w, e)) in wins.iter().zip(exp).enumerate() {
            let w: Vec<f64> = w.as_array().expect("window").iter().map(f).collect();
            assert!(st.add_window(&grid, cfg.keep, w[0], w[1], w[2], w[3]));
            let s = st.summary(&cfg, &grid, alpha, alpha_pass);
            let what = format!("{name} window {i}");
            close(
                s.e_value_fail.ln(),
                f(&e["logEFail"]),
                1e-7,
                &format!("{what} logEFail"),
            );
            close(
                s.e_value_pass.ln(),
                f(&e["logEPass"]),
                1e-7,
                &format!("{what} logEPass"),
            );
            close(s.dispersion, f(&e["phi"]), 1e-9, &format!("{what} phi"));
            match e["lower"].as_f64() {
                Some(lo) => close(s.lower, lo, 1e-9, &format!("{what} lower")),
                None => assert_eq!(s.lower, 0.0, "{what} lower"),
            }
            match e["upper"].as_f64() {
                Some(hi) => close(s.upper, hi, 1e-9, &format!("{what} upper")),
                None => assert!(s.upper.is_infinite(), "{what} upper"),
            }
        }
    }
}

#[test]
fn sequential_shift_test_matches_independent_python() {
    let r = reference();
    for c in r["shift"].as_array().expect("cases") {
        let name = c["name"].as_str().unwrap_or("?");
        let cfg = ShiftTestConfig {
            fail_shift: f(&c["fail"]),
            pass_shift: f(&c["pass"]),
            mixture_scale: f(&c["tau"]),
        };
        let grid = cfg.grid();
        let mut st = ShiftTestState::new(&cfg);
        let can = c["canary"].as_array().expect("canary");
        let base = c["baseline"].as_array().expect("baseline");
        let exp = c["expected"].as_array().expect("expected");
        for (i, ((cw, bw), e)) in can.iter().zip(base).zip(exp).enumerate() {
            let to_hist = |v: &Value| {
                let counts: Vec<f64> = v.as_array().expect("counts").iter().map(f).collect();
                let mut cum = 0.0;
                Histogram {
                    bounds: (1..=counts.len()).map(|k| k as f64).collect(),
                    cumulative: counts
                        .iter()
                        .map(|x| {
                            cum += x;
                            cum
                        })
                        .collect(),
                }
            };
            st.add_window(&grid, &to_hist(cw), &to_hist(bw));
            let s = st.summary(&cfg, &grid, f(&c["alpha"]), f(&c["alphaPass"]));
            let what = format!("{name} window {i}");
            close(
                s.e_value_fail.ln(),
                f(&e["logEFail"]),
                1e-7,
                &format!("{what} logEFail"),
            );
            close(
                s.e_value_pass.ln(),
                f(&e["logEPass"]),
                1e-7,
                &format!("{what} logEPass"),
            );
            close(
                s.estimate,
                f(&e["estimate"]),
                1e-9,
                &format!("{what} estimate"),
            );
            // the tilt's bounds are on the parameter itself: no bound is -inf / +inf
            match e["lower"].as_f64() {
                Some(lo) => close(s.lower, lo, 1e-9, &format!("{what} lower")),
                None => assert_eq!(s.lower, f64::NEG_INFINITY, "{what} lower"),
            }
            match e["upper"].as_f64() {
                Some(hi) => close(s.upper, hi, 1e-9, &format!("{what} upper")),
                None => assert_eq!(s.upper, f64::INFINITY, "{what} upper"),
            }
        }
    }
}

#[test]
fn analyze_command_exit_codes() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_tollgate");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/analysis");
    let code = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let fail = code(&[
        "analyze",
        "--input",
        &format!("{dir}/error-regression.json"),
    ]);
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stdout).contains("errorRate"));
    let pass = code(&[
        "analyze",
        "--input",
        &format!("{dir}/healthy.json"),
        "--output",
        "json",
    ]);
    assert_eq!(pass.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&pass.stdout).expect("JSON output");
    assert_eq!(report["verdict"], "Pass");
    // NaN-free but empty data: every window has no numbers -> inconclusive, exit 2
    let tmp = std::env::temp_dir().join(format!("tollgate-analyze-{}.json", std::process::id()));
    std::fs::write(
        &tmp,
        r#"{"windows": [{"baseline": {}, "canary": {}}, {"baseline": {"requests": 10}, "canary": {"requests": 10, "errors": -1}}]}"#,
    )
    .expect("temp file");
    let inc = code(&["analyze", "--input", tmp.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&tmp);
    assert_eq!(inc.status.code(), Some(2));
    let missing = code(&["analyze", "--input", "/nonexistent/tollgate.json"]);
    assert_eq!(missing.status.code(), Some(3));
}

#[test]
fn poisson_rate_bounds_match_the_python_reference() {
    let r = reference();
    let cases = r["rate"].as_array().expect("rate cases");
    assert!(cases.len() >= 5);
    for c in cases {
        let (lo, hi) = tollgate::analysis::stats::rate::rate_bounds(
            f(&c["events"]),
            f(&c["exposure"]),
            f(&c["phi"]),
            f(&c["alpha"]),
        )
        .expect("bounds");
        close(lo, f(&c["lower"]), 1e-6, &format!("lower {c}"));
        close(hi, f(&c["upper"]), 1e-6, &format!("upper {c}"));
    }
}

/// `guard_reference.json`, written by `gen_guard_reference.py` beside this file.
fn guard_reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/stats/guard_reference.json"
    );
    let text =
        std::fs::read_to_string(path).expect("guard_reference.json is committed beside the script");
    serde_json::from_str(&text).expect("guard_reference.json parses")
}

#[test]
fn max_rate_guard_and_pass_rate_bounds_match_the_python_reference() {
    let r = guard_reference();
    let guard = r["guard"].as_array().expect("guard cases");
    assert!(guard.len() >= 6);
    let mut fails = 0;
    for c in guard {
        let max_rate = f(&c["maxRate"]);
        let (lo, hi) = tollgate::analysis::judge::guard_bounds(
            f(&c["events"]),
            f(&c["requests"]),
            f(&c["phi"]),
            f(&c["alpha"]),
            max_rate,
        )
        .expect("bounds");
        close(lo, f(&c["lower"]), 1e-6, &format!("guard lower {c}"));
        close(hi, f(&c["upper"]), 1e-6, &format!("guard upper {c}"));
        assert_eq!(lo > max_rate, c["fails"].as_bool().unwrap(), "{c}");
        fails += usize::from(lo > max_rate);
    }
    // the table has both outcomes
    assert!(fails > 0 && fails < guard.len());
    let pass = r["passRate"].as_array().expect("passRate cases");
    assert!(pass.len() >= 4);
    for c in pass {
        let (lo, hi) = tollgate::analysis::stats::rate::rate_bounds(
            f(&c["events"]),
            f(&c["requests"]),
            f(&c["phi"]),
            f(&c["alpha"]),
        )
        .expect("bounds");
        close(lo, f(&c["lower"]), 1e-6, &format!("passRate lower {c}"));
        close(hi, f(&c["upper"]), 1e-6, &format!("passRate upper {c}"));
        assert_eq!(
            hi < f(&c["passRate"]),
            c["passes"].as_bool().unwrap(),
            "{c}"
        );
    }
    // the independent simulation: a canary exactly at maxRate is ever failed by the guard in
    // far fewer runs than its alpha
    for c in r["guardMonteCarlo"].as_array().expect("Monte Carlo cases") {
        assert!(f(&c["everFails"]) <= f(&c["alpha"]), "{c}");
    }
}

/// `margin_reference.json`, written by `gen_margin_reference.py` beside this file.
fn margin_reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/stats/margin_reference.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("margin_reference.json is committed beside the script");
    serde_json::from_str(&text).expect("margin_reference.json parses")
}

#[test]
fn pass_margin_test_matches_the_python_reference() {
    use tollgate::analysis::stats::difference::{difference_upper, log_e_below_margin, ArmCounts};
    let r = margin_reference();
    let cases = r["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8);
    let mut passes = 0;
    for c in cases {
        let k = ArmCounts {
            canary_events: f(&c["canaryEvents"]),
            canary_requests: f(&c["canaryRequests"]),
            baseline_events: f(&c["baselineEvents"]),
            baseline_requests: f(&c["baselineRequests"]),
            history: c["history"].as_array().map(|h| (f(&h[0]), f(&h[1]))),
        };
        let (phi, alpha, margin) = (f(&c["phi"]), f(&c["alpha"]), f(&c["margin"]));
        let e = log_e_below_margin(&k, margin, phi).expect("e-value");
        close(e, f(&c["logE"]), 1e-6, &format!("log e {c}"));
        let u = difference_upper(&k, phi, alpha).expect("bound");
        close(u, f(&c["upper"]), 1e-6, &format!("upper {c}"));
        // the bound and the test agree: the rule passes exactly when the bound is below the margin
        assert_eq!(u < margin, c["passes"].as_bool().unwrap(), "{c}");
        assert_eq!(u < margin, e >= (1.0 / alpha).ln(), "{c}");
        passes += usize::from(u < margin);
    }
    assert!(passes > 0 && passes < cases.len());
    // the independent simulations: a canary at the margin, or worse, is passed in at most
    // alpha of the runs, with or without the history prior; for a healthy canary the joint test
    // is never slower than the rule's first form, and the history prior only helps
    for s in r["simulations"].as_array().expect("simulations") {
        let res = &s["results"];
        let (pb, pc, alpha) = (f(&s["baselineRate"]), f(&s["canaryRate"]), f(&s["alpha"]));
        if pc - pb >= 0.005 - 1e-12 {
            for k in ["joint", "jointWithHistory"] {
                assert!(f(&res[k]["passed"]) <= alpha, "{k}: {s}");
            }
        } else {
            let by15 = |k: &str| f(&res[k]["within15min"]);
            assert!(by15("joint") >= by15("twoBounds"), "{s}");
            assert!(by15("jointWithHistory") >= by15("joint"), "{s}");
        }
    }
}
