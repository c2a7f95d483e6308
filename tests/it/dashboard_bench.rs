//! How fast the dashboard's pages load with 200 Rollouts (issue 22's acceptance): a bench that
//! prints figures, never a timed assertion (the machine's load is not the code's fault).
//!
//! 200 Rollouts are created on the real API server of the kwok cluster (no operator: they need
//! not progress), each with a status written through the status subresource: a phase, versions,
//! gate answers and a look-by-look record of 120 looks (an hour at 30 s). Then `tollgate
//! dashboard` serves them and chromium loads the list page and one Rollout's page several times;
//! the figures are the browser's own Navigation Timing (`performance.getEntriesByType
//! ('navigation')` through WebDriver's execute script), plus how long the list's event stream
//! takes to deliver every row. What it checks (not timed): every Rollout is a row, the Rollout
//! page has its plots, the browser logged no error.
//!
//! `tests/cluster/run-peer-tests.sh --test it -- --include-ignored --nocapture dashboard_bench`;
//! the figures of a run are kept in `docs/benchmarks/dashboard-*.txt`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tollgate::crd::{
    AnalysisSeries, AnalysisStatus, FleetStatus, GateVerdict, MetricPoint, MetricVerdict, Phase,
    Rollout, RolloutStatus, SeriesPoint,
};

use crate::dashboard_browser::Dashboard;
use crate::support::cluster::TestEnv;
use crate::support::rollout_manifest;
use crate::support::webdriver::Driver;

const ROLLOUTS: usize = 200;
const LOOKS: i32 = 120;
const LOADS: usize = 5;

/// A record of `LOOKS` looks at 30 s, as the judge writes it.
fn series() -> AnalysisSeries {
    let mut s = AnalysisSeries::default();
    for look in 1..=LOOKS {
        let f = f64::from(look);
        let point = SeriesPoint {
            canary_requests: Some(600.0),
            canary_errors: Some(6.0 + f / 40.0),
            baseline_requests: Some(600.0),
            baseline_errors: Some(6.0),
            metrics: vec![MetricPoint {
                name: "errorRate".into(),
                estimate: Some(1.0 + f / 400.0),
                lower: Some(0.6 + f / 400.0),
                upper: Some(1.6 + f / 800.0),
                e_fail: Some(1.0 + f / 10.0),
                e_pass: Some(1.0 + f / 5.0),
                fail_threshold: Some(55.5),
                pass_threshold: Some(20.0),
                ..MetricPoint::default()
            }],
        };
        s.push(
            look,
            jiff::Timestamp::from_second(1_800_000_000 + i64::from(look) * 30).unwrap(),
            10 + (look / 30) * 10,
            Some(&point),
        );
    }
    s
}

fn status(i: usize, series: &AnalysisSeries) -> RolloutStatus {
    RolloutStatus {
        phase: if i.is_multiple_of(3) {
            Phase::Succeeded
        } else {
            Phase::Analyzing
        },
        current_step_index: Some(1),
        current_weight: 40,
        stable_version: Some("1.0.0".into()),
        canary_version: Some("2.0.0".into()),
        fleet: Some(FleetStatus {
            verdict: GateVerdict::Passed,
            pods_checked: 8,
            pods_matching: 8,
            ..FleetStatus::default()
        }),
        analysis: Some(AnalysisStatus {
            verdict: MetricVerdict::default(),
            looks: LOOKS,
            series: Some(series.clone()),
            ..AnalysisStatus::default()
        }),
        reason: Some("StepStarted".into()),
        ..RolloutStatus::default()
    }
}

/// Load `url` and return the browser's Navigation Timing entry.
async fn navigation(driver: &Driver, url: &str) -> Value {
    driver.goto(url).await;
    driver
        .execute(
            "var n=performance.getEntriesByType('navigation')[0].toJSON();\
             return {fetch:n.fetchStart-n.startTime, ttfb:n.responseStart-n.requestStart,\
             response:n.responseEnd-n.startTime, interactive:n.domInteractive-n.startTime,\
             dom:n.domContentLoadedEventEnd-n.startTime, load:n.loadEventEnd-n.startTime,\
             bytes:n.decodedBodySize};",
        )
        .await
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Print the loads of one page: every load, then the medians.
fn report(page: &str, loads: &[Value]) -> String {
    let field = |k: &str| -> Vec<f64> {
        loads
            .iter()
            .map(|l| l[k].as_f64().unwrap_or(-1.0))
            .collect()
    };
    let mut out = format!(
        "{page}: {LOADS} loads in chromium (Navigation Timing, ms; from navigation start but \
         ttfb, which is request to first byte)\n"
    );
    let keys = ["fetch", "ttfb", "response", "interactive", "dom", "load"];
    let names = [
        "fetch start (previous page unloaded)",
        "ttfb",
        "response end",
        "DOM interactive",
        "DOMContentLoaded",
        "load",
    ];
    for (i, l) in loads.iter().enumerate() {
        let figures: Vec<String> = keys
            .iter()
            .zip(names)
            .map(|(k, n)| format!("{n} {:.1}", l[*k].as_f64().unwrap_or(-1.0)))
            .collect();
        out.push_str(&format!(
            "  load {}: {}, body {} bytes\n",
            i + 1,
            figures.join(", "),
            l["bytes"]
        ));
    }
    let medians: Vec<String> = keys
        .iter()
        .zip(names)
        .map(|(k, n)| format!("{n} {:.1}", median(field(k))))
        .collect();
    out.push_str(&format!("  median: {}\n", medians.join(", ")));
    out
}

#[tokio::test]
#[ignore = "needs the local cluster and chromium: run tests/run-all.sh"]
async fn the_dashboard_with_200_rollouts_page_load_figures() {
    let env = TestEnv::load();
    env.install_crds().await;
    let ns = env.namespace("dashboard-bench").await;
    let api: Api<Rollout> = ns.api();
    let series = series();
    let created = Instant::now();
    let names: Vec<String> = (0..ROLLOUTS).map(|i| format!("svc-{i:03}")).collect();
    let results: Vec<()> = futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let api = api.clone();
            let series = &series;
            async move {
                let r = rollout_manifest::rollout(name, "http://127.0.0.1:9", false);
                api.create(&PostParams::default(), &r)
                    .await
                    .unwrap_or_else(|e| panic!("create {name}: {e}"));
                api.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status(i, series)})),
                )
                .await
                .unwrap_or_else(|e| panic!("status of {name}: {e}"));
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(results.len(), ROLLOUTS);
    let one = api.get(&names[1]).await.expect("read one back");
    let status_bytes = serde_json::to_vec(&one.status).unwrap().len();
    let looks = one
        .status
        .as_ref()
        .and_then(|s| s.analysis.as_ref())
        .and_then(|a| a.series.as_ref())
        .map_or(0, AnalysisSeries::len);
    assert_eq!(
        looks,
        usize::try_from(LOOKS).unwrap(),
        "the record was written"
    );
    let mut out = format!(
        "dashboard page load, {ROLLOUTS} Rollouts on the kwok cluster's kube-apiserver, each \
         status {status_bytes} bytes with {LOOKS} looks; created in {:.1} s\n",
        created.elapsed().as_secs_f64()
    );

    let kubeconfig = env.kubeconfig().display().to_string();
    let started = Instant::now();
    let dashboard = Dashboard::start(&kubeconfig, &ns.name, false).await;
    out.push_str(&format!(
        "tollgate dashboard: serving (first list of the watch done) {:.0} ms after start\n",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    let dir = std::env::temp_dir().join(format!("tollgate-dashboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut driver = Driver::start().await;
    driver.open_session(&dir.join("profile"), true).await;

    let list = format!("{}/", dashboard.base);
    let mut loads = Vec::new();
    let mut streamed = Vec::new();
    for _ in 0..LOADS {
        loads.push(navigation(&driver, &list).await);
        // The page's event stream delivers every row on connect: wait until all are applied.
        let t = Instant::now();
        loop {
            let live = driver
                .execute("return Number(document.body.getAttribute('data-live') || '0');")
                .await
                .as_u64()
                .unwrap_or(0);
            if live >= ROLLOUTS as u64 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the rows did not stream: {live}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        streamed.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rows = driver.elements(None, "#rollouts tr").await.len();
    assert_eq!(rows, ROLLOUTS + 1, "a row per Rollout and the head");
    let figures = driver.elements(None, "figure").await.len();
    assert_eq!(figures, 0, "the list renders no plot");
    out.push_str(&report("list page /", &loads));
    out.push_str(&format!(
        "  the event stream's {ROLLOUTS} rows applied, after the load event: median {:.0} ms (polled every 10 ms)\n",
        median(streamed)
    ));

    let page = format!("{}/rollouts/{}/{}", dashboard.base, ns.name, names[1]);
    let mut loads = Vec::new();
    for _ in 0..LOADS {
        loads.push(navigation(&driver, &page).await);
    }
    assert!(
        driver.elements(None, "#live figure").await.len() >= 4,
        "the plots"
    );
    out.push_str(&report(
        &format!("one Rollout's page ({LOOKS} looks, 4 plots)"),
        &loads,
    ));
    driver.goto("about:blank").await;
    let errors: Vec<Value> = driver
        .log("browser")
        .await
        .into_iter()
        .filter(|e| e["level"] == json!("SEVERE"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    println!("{out}");
    if let Some(path) = std::env::var_os("TOLLGATE_BENCH_OUT") {
        std::fs::write(&path, &out).expect("write the figures");
        println!(
            "figures written to {}",
            std::path::Path::new(&path).display()
        );
    }
    driver.call(reqwest::Method::DELETE, "", None).await;
    drop(driver);
    drop(dashboard);
    ns.delete().await;
    let _ = std::fs::remove_dir_all(&dir);
}
