//! `tollgate bench-judge`: statistical power and false-rollback benchmark of the canary judge
//! against a Kayenta-style judge and Flagger/Argo-style thresholds, on seeded simulated traffic.
//! Prints a table on stdout (or JSON with `--json`); never gates on absolute times.
//!
//! Run it in release: `cargo run --release -- bench-judge [--json] [--json-out FILE]
//! [--only CELL-SUBSTRING] [--policy POLICY.json] [--aa-runs 10000] [--power-runs 500]
//! [--history-windows 120]
//! [--threads N]`. Scenarios x {1, 10, 100} req/s per arm; 30 s looks; 60 min horizon; A/A
//! cells run `--aa-runs` times, regression cells `--power-runs` times. Per cell and judge:
//! rollback rate with its Wilson 95% interval (false rollbacks in A/A cells, power otherwise),
//! median and p90 minutes to rollback (over all runs, `-` when fewer than half/90% rolled back),
//! this judge's median over the floor `log(1/alpha_m)/KL`, median canary requests served before
//! rollback, this judge's promotion rate and microseconds per look (wall time of
//! `judge::update`, machine-dependent). A scenario with Rollout steps (`steps_windows`) is
//! promoted only at a pass at or after the steps' end; until then every look is judged, as the
//! operator does.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use rand::SeedableRng;
use serde::Serialize;

use crate::analysis::judge::{self, JudgePolicy, JudgeState, JudgeVerdict};
use crate::analysis::sim::{
    Generator, KayentaJudge, LatencyChange, Minute, Scenario, ThresholdJudge, WINDOW_SECS,
};
use crate::analysis::stats::fixed::wilson_interval;

#[derive(Debug, Args)]
pub struct BenchJudgeArgs {
    /// Runs per A/A cell: 10000, so the Wilson bound is close to the rate (at 2000 runs a true
    /// rate of 0.6% has an upper bound near 1% in half the seeds).
    #[arg(long, default_value_t = 10000)]
    pub aa_runs: usize,
    /// Runs per regression cell.
    #[arg(long, default_value_t = 500)]
    pub power_runs: usize,
    /// Horizon in minutes.
    #[arg(long, default_value_t = 60)]
    pub horizon_min: u32,
    /// Base seed.
    #[arg(long, default_value_t = 20261122)]
    pub seed: u64,
    /// Worker threads (default: up to 2).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only cells whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
    /// Windows of baseline history before each run (the operator reads an hour: 120 looks of
    /// 30 s), used by this judge to estimate dispersion; 0 judges without history.
    #[arg(long, default_value_t = 120)]
    pub history_windows: u32,
    /// Judge policy as JSON (default policy otherwise).
    #[arg(long)]
    pub policy: Option<std::path::PathBuf>,
}

/// Results of one judge in one cell.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeResult {
    pub judge: String,
    pub runs: usize,
    pub rollbacks: usize,
    pub rollback_rate: f64,
    pub wilson_low: f64,
    pub wilson_high: f64,
    /// Minutes; `None` when fewer than half (p90: 90%) of the runs rolled back.
    pub median_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    /// Median time over the information floor `log(1/alpha)/KL` (this judge only).
    pub median_over_floor: Option<f64>,
    pub floor_minutes: Option<f64>,
    pub median_canary_requests_at_rollback: Option<f64>,
    /// Promotions (this judge only) and their median time.
    pub promotions: Option<usize>,
    pub median_promotion_minutes: Option<f64>,
    /// 90th percentile of the time to promotion over all runs (`None` when fewer than 90%
    /// were promoted).
    pub p90_promotion_minutes: Option<f64>,
    /// Share of all runs promoted within 5 and within 15 minutes (this judge only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_within_5min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_within_15min: Option<f64>,
    pub micros_per_look: Option<f64>,
    /// Which metrics failed at the rollbacks (this judge only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_metrics: Vec<(String, usize)>,
    /// Promotions by the metric that passed last, and runs undecided at the horizon by the
    /// metrics not passed (this judge only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pass_gates: Vec<(String, usize)>,
    /// Metric verdicts, over every look of every run, whose reported bounds contradict them
    /// ([`judge::bounds_contradict`]; this judge only; the goal is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contradictions: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CellResult {
    pub cell: String,
    pub scenario: String,
    pub rps: f64,
    pub null: bool,
    pub judges: Vec<JudgeResult>,
}

fn scenarios() -> Vec<Scenario> {
    let base = Scenario::default();
    let mk = |name: &str, f: &dyn Fn(&mut Scenario)| {
        let mut s = base.clone();
        s.name = name.to_string();
        f(&mut s);
        s
    };
    vec![
        mk("aa-err1%", &|_| {}),
        mk("aa-err0.1%", &|s| s.base_error = 0.001),
        mk("aa-bursty", &|s| s.burst_cv = Some(0.5)),
        mk("aa-shared-shock", &|s| s.shared_shock = Some((20, 30))),
        mk("err-x1.5", &|s| s.error_mult = 1.5),
        mk("err-x2", &|s| s.error_mult = 2.0),
        mk("err-x4", &|s| s.error_mult = 4.0),
        mk("lat-s0.5-whole", &|s| s.latency = LatencyChange::Whole(1.2)),
        mk("lat-s0.5-tail", &|s| s.latency = LatencyChange::Tail(1.2)),
        mk("lat-s1.0-whole", &|s| {
            s.sigma = 1.0;
            s.latency = LatencyChange::Whole(1.2)
        }),
        mk("lat-s1.0-tail", &|s| {
            s.sigma = 1.0;
            s.latency = LatencyChange::Tail(1.2)
        }),
        // appended, so the cells above keep their seeds: a service without errors, and a
        // regression from 0.1% to 1% (above the default pass margin of half a point)
        mk("aa-err0%", &|s| s.base_error = 0.0),
        mk("err0.1%-x10", &|s| {
            s.base_error = 0.001;
            s.error_mult = 10.0
        }),
        // appended likewise: healthy canaries under a daily cycle, a stepped split and shared
        // shocks (five times the errors in both arms for three windows, at the start and in
        // the middle), the same shocks over a doubled error rate, a regression from no errors
        // to 1%, one that starts after ten healthy windows, a tail-only p99 +50% with fine and
        // with Prometheus' default buckets (and a healthy canary on the latter), and a broken
        // canary whose every request fails
        mk("aa-diurnal", &|s| s.diurnal = Some(0.5)),
        mk("aa-split-ramp", &|s| s.split_ramp = true),
        mk("aa-shock5x", &|s| {
            s.error_shocks = vec![(0, 3), (40, 43)];
            s.error_shock_mult = 5.0
        }),
        mk("err-x2-shock5x", &|s| {
            s.error_mult = 2.0;
            s.error_shocks = vec![(0, 3), (40, 43)];
            s.error_shock_mult = 5.0
        }),
        mk("err0%-to-1%", &|s| {
            s.base_error = 0.0;
            s.canary_error = Some(0.01)
        }),
        // the late regression goes through a Rollout's steps (setWeight 25, pause 5m,
        // setWeight 50, pause 10m: 30 windows), because in the operator a pass does not promote
        // by itself: the steps still run and the fail test keeps judging every look until the
        // last one. Without steps, a healthy canary at 100 req/s passes in about 4 minutes,
        // before the regression at minute 5 starts, and the bench would measure a rollout that
        // has no steps at all
        mk("err-x3-late", &|s| {
            s.error_mult = 3.0;
            s.regress_from = 10;
            s.steps_windows = 30
        }),
        mk("lat-p99x1.5-tail", &|s| {
            s.latency = LatencyChange::Tail(1.5)
        }),
        mk("lat-p99x1.5-tail-promdefault", &|s| {
            s.latency = LatencyChange::Tail(1.5);
            s.default_buckets = true
        }),
        mk("aa-promdefault", &|s| s.default_buckets = true),
        mk("broken-100%", &|s| s.canary_error = Some(1.0)),
        // appended likewise, for the absolute guard (`maxRate`, benchmarked at 0.05 with
        // `--policy`): a healthy canary at 4% in both arms (80% of it), and a canary at 6%
        // whose baseline is just as bad (the comparison cannot fail it; the guard must)
        mk("aa-err4%", &|s| s.base_error = 0.04),
        mk("err6%-both", &|s| {
            s.base_error = 0.06;
            s.canary_error = Some(0.06)
        }),
        // appended likewise: the A/A twin of err-x3-late, the same 15 minutes of steps over a
        // healthy canary, so the fail test's looks after a pass show their false rollbacks
        mk("aa-err1%-steps15m", &|s| s.steps_windows = 30),
    ]
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    // sorted ascending, infinite = never; nearest-rank
    if sorted.is_empty() {
        return None;
    }
    let idx = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    let v = sorted[idx];
    v.is_finite().then_some(v)
}

struct RunOutcome {
    ours_fail: Option<(f64, f64)>, // minutes, canary requests
    ours_pass: Option<f64>,
    thr_fail: Option<(f64, f64)>,
    kay_fail: Option<(f64, f64)>,
    looks: u64,
    nanos: u128,
    /// Metrics that failed at this judge's rollback.
    failed_metrics: Vec<String>,
    /// What held the promotion longest: the metric that passed last in a promoted run, or
    /// `undecided:` and the metrics not passed at the horizon.
    pass_gate: Option<String>,
    contradictions: usize,
}

fn run_once(
    gen: &Generator,
    policy: &JudgePolicy,
    seed: u64,
    horizon_windows: u32,
    history_windows: u32,
) -> RunOutcome {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut state = JudgeState::default();
    if history_windows > 0 {
        // a separate stream, so a run's analysis windows do not depend on the history length
        let mut hist_rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x005e_ed0f_4157_0e1e);
        let history = gen.history(&mut hist_rng, history_windows);
        if let Ok((primed, _)) = judge::prime_history(&state, policy, &history) {
            state = primed;
        }
    }
    let mut out = RunOutcome {
        ours_fail: None,
        ours_pass: None,
        thr_fail: None,
        kay_fail: None,
        looks: 0,
        nanos: 0,
        failed_metrics: Vec::new(),
        pass_gate: None,
        contradictions: 0,
    };
    let mut ours_done = false;
    // the look at which each metric first passed, and the metrics not passed at the last look
    let mut first_pass: Vec<(String, u32)> = Vec::new();
    let mut not_passed: Vec<String> = Vec::new();
    let mut thr = ThresholdJudge::default();
    let mut kay = KayentaJudge::default();
    let mut minute = Minute::default();
    let mut canary_requests = 0.0;
    for t in 0..horizon_windows {
        let w = gen.window(&mut rng, t);
        canary_requests += w.canary.requests.unwrap_or(0.0);
        let minutes = f64::from(t + 1) * WINDOW_SECS / 60.0;
        if !ours_done {
            let start = Instant::now();
            let res = judge::update(&state, policy, &w);
            out.nanos += start.elapsed().as_nanos();
            out.looks += 1;
            match res {
                Ok((s, j)) => {
                    state = s;
                    for m in &j.metrics {
                        if m.verdict == JudgeVerdict::Pass
                            && !first_pass.iter().any(|(n, _)| *n == m.metric)
                        {
                            first_pass.push((m.metric.clone(), t));
                        }
                    }
                    not_passed = j
                        .metrics
                        .iter()
                        .filter(|m| m.verdict != JudgeVerdict::Pass)
                        .map(|m| m.metric.clone())
                        .collect();
                    out.contradictions += j
                        .metrics
                        .iter()
                        .filter(|m| judge::bounds_contradict(policy, m))
                        .count();
                    match j.verdict {
                        JudgeVerdict::Fail => {
                            out.failed_metrics = j
                                .metrics
                                .iter()
                                .filter(|m| m.verdict == JudgeVerdict::Fail)
                                .map(|m| m.metric.clone())
                                .collect();
                            out.ours_fail = Some((minutes, canary_requests));
                            ours_done = true;
                        }
                        // a pass promotes only once the Rollout's steps are over; until
                        // then the looks go on, and a failure among them rolls back
                        JudgeVerdict::Pass if t + 1 >= gen.scenario.steps_windows => {
                            out.ours_pass = Some(minutes);
                            out.pass_gate = first_pass
                                .iter()
                                .max_by_key(|(_, at)| *at)
                                .map(|(m, _)| m.clone());
                            ours_done = true;
                        }
                        JudgeVerdict::Pass | JudgeVerdict::Undecided => {}
                    }
                }
                Err(_) => ours_done = true,
            }
        }
        minute.add(&w);
        if t % 2 == 1 {
            if out.thr_fail.is_none() && thr.check(&minute) {
                out.thr_fail = Some((minutes, canary_requests));
            }
            if out.kay_fail.is_none() {
                kay.add_minute(&minute);
                let m = t.div_ceil(2);
                if (m == 30 || m == 60) && kay.judge() {
                    out.kay_fail = Some((minutes, canary_requests));
                }
            }
            minute = Minute::default();
        }
        if ours_done && out.thr_fail.is_some() && out.kay_fail.is_some() {
            break;
        }
    }
    if !ours_done && !not_passed.is_empty() {
        out.pass_gate = Some(format!("undecided:{}", not_passed.join("+")));
    }
    out
}

fn summarize(
    name: &str,
    runs: usize,
    fails: &[Option<(f64, f64)>],
    floor: Option<f64>,
) -> JudgeResult {
    let mut times: Vec<f64> = fails
        .iter()
        .map(|f| f.map_or(f64::INFINITY, |x| x.0))
        .collect();
    times.sort_by(f64::total_cmp);
    let mut reqs: Vec<f64> = fails.iter().filter_map(|f| f.map(|x| x.1)).collect();
    reqs.sort_by(f64::total_cmp);
    let k = fails.iter().filter(|f| f.is_some()).count();
    let (lo, hi) = wilson_interval(k as u64, runs as u64, 1.959964);
    let median = quantile(&times, 0.5);
    JudgeResult {
        judge: name.into(),
        runs,
        rollbacks: k,
        rollback_rate: k as f64 / runs.max(1) as f64,
        wilson_low: lo,
        wilson_high: hi,
        median_minutes: median,
        p90_minutes: quantile(&times, 0.9),
        median_over_floor: match (median, floor) {
            (Some(m), Some(f)) if f > 0.0 => Some(m / f),
            _ => None,
        },
        floor_minutes: floor,
        median_canary_requests_at_rollback: quantile(&reqs, 0.5),
        promotions: None,
        median_promotion_minutes: None,
        p90_promotion_minutes: None,
        promoted_within_5min: None,
        promoted_within_15min: None,
        micros_per_look: None,
        failed_metrics: Vec::new(),
        pass_gates: Vec::new(),
        contradictions: None,
    }
}

/// Information floor (minutes) for the sequential judge on this scenario.
fn floor_minutes(gen: &Generator, policy: &JudgePolicy) -> Option<f64> {
    let s = &gen.scenario;
    let total_w = policy.error_rate.as_ref().map_or(0.0, |e| e.weight)
        + policy.latency.iter().map(|l| l.weight).sum::<f64>()
        + policy.distribution.as_ref().map_or(0.0, |d| d.weight);
    if s.error_mult != 1.0 {
        let ep = policy.error_rate.as_ref()?;
        let alpha = policy.alpha * ep.weight / total_w;
        let p1 = s.error_mult / (1.0 + s.error_mult);
        let p0 = ep.tolerance / (1.0 + ep.tolerance);
        let kl = p1 * (p1 / p0).ln() + (1.0 - p1) * ((1.0 - p1) / (1.0 - p0)).ln();
        let rate = s.rps * s.base_error * (1.0 + s.error_mult) * kl;
        return Some((1.0 / alpha).ln() / rate / 60.0);
    }
    if s.latency != LatencyChange::None {
        let w = policy
            .latency
            .iter()
            .map(|l| l.weight)
            .chain(policy.distribution.as_ref().map(|d| d.weight))
            .fold(0.0, f64::max);
        let alpha = policy.alpha * w / total_w;
        let kl = gen.latency_kl_rate();
        return (kl > 0.0).then(|| (1.0 / alpha).ln() / kl / 60.0);
    }
    None
}

fn run_cell(
    s: &Scenario,
    rps: f64,
    args: &BenchJudgeArgs,
    policy: &JudgePolicy,
    idx: u64,
) -> CellResult {
    let mut sc = s.clone();
    sc.rps = rps;
    let gen = Generator::new(&sc);
    let runs = if sc.is_null() {
        args.aa_runs
    } else {
        args.power_runs
    };
    let horizon = args.horizon_min * 2;
    let mut outs = Vec::with_capacity(runs);
    for r in 0..runs {
        let seed = args
            .seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(idx.wrapping_mul(1_000_003))
            .wrapping_add(r as u64);
        outs.push(run_once(&gen, policy, seed, horizon, args.history_windows));
    }
    let floor = floor_minutes(&gen, policy);
    let ours_f: Vec<_> = outs.iter().map(|o| o.ours_fail).collect();
    let thr_f: Vec<_> = outs.iter().map(|o| o.thr_fail).collect();
    let kay_f: Vec<_> = outs.iter().map(|o| o.kay_fail).collect();
    let mut ours = summarize("tollgate", runs, &ours_f, floor);
    let mut passes: Vec<f64> = outs.iter().filter_map(|o| o.ours_pass).collect();
    passes.sort_by(f64::total_cmp);
    ours.promotions = Some(passes.len());
    ours.median_promotion_minutes = quantile(&passes, 0.5);
    // over all runs: a run never promoted counts as never
    let mut all_passes: Vec<f64> = outs
        .iter()
        .map(|o| o.ours_pass.unwrap_or(f64::INFINITY))
        .collect();
    all_passes.sort_by(f64::total_cmp);
    ours.p90_promotion_minutes = quantile(&all_passes, 0.9);
    let within = |m: f64| passes.iter().filter(|p| **p <= m).count() as f64 / runs.max(1) as f64;
    ours.promoted_within_5min = Some(within(5.0));
    ours.promoted_within_15min = Some(within(15.0));
    let looks: u64 = outs.iter().map(|o| o.looks).sum();
    let nanos: u128 = outs.iter().map(|o| o.nanos).sum();
    ours.micros_per_look = (looks > 0).then(|| nanos as f64 / looks as f64 / 1000.0);
    let mut tally: std::collections::BTreeMap<String, usize> = Default::default();
    for o in &outs {
        for m in &o.failed_metrics {
            *tally.entry(m.clone()).or_default() += 1;
        }
    }
    ours.failed_metrics = tally.into_iter().collect();
    let mut gates: std::collections::BTreeMap<String, usize> = Default::default();
    for g in outs.iter().filter_map(|o| o.pass_gate.as_ref()) {
        *gates.entry(g.clone()).or_default() += 1;
    }
    ours.pass_gates = gates.into_iter().collect();
    ours.contradictions = Some(outs.iter().map(|o| o.contradictions).sum());
    let kay = summarize("kayenta-style", runs, &kay_f, None);
    let thr = summarize("threshold", runs, &thr_f, None);
    CellResult {
        cell: format!("{}@{}rps", sc.name, rps),
        scenario: sc.name.clone(),
        rps,
        null: sc.is_null(),
        judges: vec![ours, kay, thr],
    }
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

fn print_failed_metrics(cells: &[CellResult]) {
    let contradictions: usize = cells
        .iter()
        .filter_map(|c| c.judges.first().and_then(|j| j.contradictions))
        .sum();
    println!();
    println!("tollgate verdicts whose reported bounds contradict them, all cells and looks: {contradictions}");
    println!();
    println!("tollgate promotions by the metric that passed last, and runs undecided at the horizon by the metrics not passed:");
    for c in cells {
        if let Some(j) = c.judges.first() {
            if !j.pass_gates.is_empty() {
                let parts: Vec<String> = j
                    .pass_gates
                    .iter()
                    .map(|(m, n)| format!("{m}={n}"))
                    .collect();
                println!("  {:<26} {}", c.cell, parts.join(" "));
            }
        }
    }
    println!();
    println!("tollgate rollbacks by metric (a rollback may name several):");
    for c in cells {
        if let Some(j) = c.judges.first() {
            if !j.failed_metrics.is_empty() {
                let parts: Vec<String> = j
                    .failed_metrics
                    .iter()
                    .map(|(m, n)| format!("{m}={n}"))
                    .collect();
                println!("  {:<26} {}", c.cell, parts.join(" "));
            }
        }
    }
}

fn print_table(cells: &[CellResult]) {
    println!(
        "{:<26} {:<14} {:>6} {:>8} {:>17} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "cell",
        "judge",
        "runs",
        "rollbk%",
        "wilson95%",
        "med_min",
        "p90_min",
        "med/flr",
        "canaryReq",
        "promote%",
        "prom_med",
        "prom_p90",
        "<=5m%",
        "<=15m%",
        "med/30",
        "us/look"
    );
    for c in cells {
        for j in &c.judges {
            let promote = j
                .promotions
                .map(|p| format!("{:.1}", 100.0 * p as f64 / j.runs.max(1) as f64))
                .unwrap_or_else(|| "-".into());
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", 100.0 * v));
            println!(
                "{:<26} {:<14} {:>6} {:>8.2} {:>17} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8}",
                c.cell,
                j.judge,
                j.runs,
                100.0 * j.rollback_rate,
                format!("[{:.2},{:.2}]", 100.0 * j.wilson_low, 100.0 * j.wilson_high),
                fmt_opt(j.median_minutes, 1),
                fmt_opt(j.p90_minutes, 1),
                fmt_opt(j.median_over_floor, 2),
                fmt_opt(j.median_canary_requests_at_rollback, 0),
                promote,
                fmt_opt(j.median_promotion_minutes, 1),
                fmt_opt(j.p90_promotion_minutes, 1),
                pct(j.promoted_within_5min),
                pct(j.promoted_within_15min),
                // against the Kayenta-style judge's fixed 30-minute horizon
                fmt_opt(j.median_promotion_minutes.map(|m| m / 30.0), 2),
                fmt_opt(j.micros_per_look, 1),
            );
        }
    }
}

pub fn run(args: BenchJudgeArgs) -> ExitCode {
    let policy = match &args.policy {
        None => JudgePolicy::default(),
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<JudgePolicy>(&t).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: cannot read the policy: {e}");
                return ExitCode::from(3);
            }
        },
    };
    if let Err(e) = policy.validate() {
        eprintln!("error: invalid policy: {e}");
        return ExitCode::from(3);
    }
    let mut jobs: Vec<(Scenario, f64, u64)> = Vec::new();
    for (i, s) in scenarios().iter().enumerate() {
        for (k, rps) in [1.0, 10.0, 100.0].iter().enumerate() {
            let name = format!("{}@{}rps", s.name, rps);
            if args
                .only
                .as_ref()
                .is_some_and(|o| !name.contains(o.as_str()))
            {
                continue;
            }
            jobs.push((s.clone(), *rps, (i * 3 + k) as u64));
        }
    }
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(2)
        })
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CellResult>>> = Mutex::new(vec![None; jobs.len()]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((s, rps, idx)) = jobs.get(i) else {
                    break;
                };
                let r = run_cell(s, *rps, &args, &policy, *idx);
                eprintln!("done {} ({:.0}s)", r.cell, started.elapsed().as_secs_f64());
                if let Ok(mut g) = results.lock() {
                    g[i] = Some(r);
                }
            });
        }
    });
    let cells: Vec<CellResult> = match results.into_inner() {
        Ok(v) => v.into_iter().flatten().collect(),
        Err(_) => {
            eprintln!("error: a benchmark worker panicked");
            return ExitCode::from(3);
        }
    };
    let json = match serde_json::to_string_pretty(&cells) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: cannot serialize the results: {e}");
            return ExitCode::from(3);
        }
    };
    if let Some(path) = &args.json_out {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(3);
        }
    }
    if args.json {
        println!("{json}");
    } else {
        print_table(&cells);
        print_failed_metrics(&cells);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 12 runs per cell, 20 minutes, one thread, seed 1.
    fn small_args(history_windows: u32) -> BenchJudgeArgs {
        BenchJudgeArgs {
            aa_runs: 12,
            power_runs: 12,
            horizon_min: 20,
            seed: 1,
            threads: Some(1),
            only: None,
            json: false,
            json_out: None,
            policy: None,
            history_windows,
        }
    }

    #[test]
    fn a_small_cell_runs_and_separates_the_judges() {
        let args = small_args(120);
        let policy = JudgePolicy::default();
        let s = scenarios();
        let aa = s.iter().find(|x| x.name == "aa-err1%").expect("scenario");
        let r = run_cell(aa, 10.0, &args, &policy, 0);
        assert!(r.null);
        assert_eq!(r.judges[0].runs, 12);
        // thresholds on a 1% error rate roll back healthy canaries; the sequential judge not
        assert_eq!(r.judges[2].rollbacks, 12);
        assert!(r.judges[0].rollbacks <= 1);
        let x4 = s.iter().find(|x| x.name == "err-x4").expect("scenario");
        let r = run_cell(x4, 10.0, &args, &policy, 1);
        assert!(r.judges[0].rollbacks >= 11, "{:?}", r.judges[0]);
        assert!(r.judges[0].median_minutes.unwrap_or(99.0) < 10.0);
    }

    #[test]
    fn a_pass_promotes_only_after_the_steps_and_a_later_failure_rolls_back() {
        let args = small_args(120);
        let policy = JudgePolicy::default();
        let s = scenarios();
        // a healthy canary at 100 req/s passes within minutes, but is promoted at the end of
        // the 15 minutes of steps, not before
        let aa = s
            .iter()
            .find(|x| x.name == "aa-err1%-steps15m")
            .expect("scenario");
        let r = run_cell(aa, 100.0, &args, &policy, 0);
        let ours = &r.judges[0];
        assert!(ours.promotions.unwrap_or(0) >= 10, "{ours:?}");
        assert_eq!(ours.promoted_within_5min, Some(0.0), "{ours:?}");
        assert!(ours.median_promotion_minutes >= Some(15.0), "{ours:?}");
        // the late regression is caught during the steps; without them the early pass
        // promotes most runs before it starts
        let late = s
            .iter()
            .find(|x| x.name == "err-x3-late")
            .expect("scenario");
        let r = run_cell(late, 100.0, &args, &policy, 1);
        assert!(r.judges[0].rollbacks >= 11, "{:?}", r.judges[0]);
        assert_eq!(r.judges[0].promotions, Some(0), "{:?}", r.judges[0]);
        let no_steps = Scenario {
            steps_windows: 0,
            ..late.clone()
        };
        let r = run_cell(&no_steps, 100.0, &args, &policy, 1);
        assert!(
            r.judges[0].promotions.unwrap_or(0) >= 6,
            "{:?}",
            r.judges[0]
        );
    }

    #[test]
    fn the_max_rate_guard_fails_a_canary_as_bad_as_its_baseline_and_only_with_it() {
        let args = small_args(0);
        let errors_only = |max_rate: Option<f64>| JudgePolicy {
            error_rate: Some(judge::ErrorRatePolicy {
                max_rate,
                ..judge::ErrorRatePolicy::default()
            }),
            latency: vec![],
            distribution: None,
            ..JudgePolicy::default()
        };
        let s = scenarios();
        let both = s.iter().find(|x| x.name == "err6%-both").expect("scenario");
        let guarded = run_cell(both, 10.0, &args, &errors_only(Some(0.05)), 0);
        // 6% against 5% at 10 req/s: most within 20 minutes, and none promoted meanwhile
        assert!(guarded.judges[0].rollbacks >= 9, "{:?}", guarded.judges[0]);
        assert_eq!(guarded.judges[0].promotions, Some(0));
        let plain = run_cell(both, 10.0, &args, &errors_only(None), 0);
        assert!(plain.judges[0].rollbacks <= 1, "{:?}", plain.judges[0]);
        let healthy = s.iter().find(|x| x.name == "aa-err4%").expect("scenario");
        let r = run_cell(healthy, 10.0, &args, &errors_only(Some(0.05)), 0);
        assert!(r.null);
        assert_eq!(r.judges[0].rollbacks, 0, "{:?}", r.judges[0]);
    }
}
