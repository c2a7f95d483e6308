//! The HTML report of a real rolled-back Rollout (`tollgate report -o html`), opened in a real
//! browser: Debian's chromium, headless, with JavaScript switched off, driven through
//! chromedriver ([`crate::support::webdriver`]). It checks what a reader
//! gets: every plot has one ● per look with data (the weight plot one per look), the browser
//! logged no console error (a style the Content Security Policy refused would be one), and the
//! browser asked for nothing but the page itself.
//!
//! Needs the cluster and the browser (`tests/cluster/browser.sh` installs it; tests/run-all.sh
//! calls it): `tests/cluster/run-peer-tests.sh --test it -- --include-ignored report_browser`.

use std::time::Instant;

use serde_json::{json, Value};
use tollgate::crd::Phase;

use crate::support::cli::tollgate;
use crate::support::scenario::Scenario;
use crate::support::webdriver::Driver;

#[tokio::test]
#[ignore = "needs the local cluster and chromium: run tests/run-all.sh"]
async fn the_report_of_a_rolled_back_rollout_reads_in_a_browser_without_scripts() {
    let world = Scenario::with_stable_v1("report-browser").await;
    world.roll_to("2.0.0", 0.15, None).await;
    let status = world.finished("2.0.0").await;
    let ns = world.ns.name.clone();
    let kubeconfig = world.env.kubeconfig().display().to_string();
    let report = tollgate(
        &[
            "report",
            "demo",
            "-n",
            &ns,
            "-o",
            "html",
            "--kubeconfig",
            &kubeconfig,
        ],
        &[],
    );
    world.end().await;
    assert_eq!(status.phase, Phase::RolledBack, "{status:#?}");
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let analysis = status.analysis.expect("analysis evidence");
    let series = analysis.series.expect("the look-by-look record");
    let looks = usize::try_from(analysis.looks).unwrap();
    let with_data = looks - usize::try_from(analysis.failed_looks).unwrap();
    assert_eq!(series.len(), looks);

    let dir = std::env::temp_dir().join(format!("tollgate-report-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, &report.stdout).unwrap();
    let profile = dir.join("profile");

    let mut driver = Driver::start().await;
    driver.open_session(&profile, false).await;
    let url = format!("file://{}", page.display());
    let loaded = Instant::now();
    driver
        .call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
        .await;
    println!(
        "report page ({} bytes) loaded in {:?}",
        report.stdout.len(),
        loaded.elapsed()
    );

    let figures = driver.elements(None, "figure").await;
    assert!(
        figures.len() >= 4,
        "weight, error rate, estimate, e-values: {}",
        figures.len()
    );
    for (i, figure) in figures.iter().enumerate() {
        let points = driver
            .call(
                reqwest::Method::GET,
                &format!("/element/{figure}/attribute/data-points"),
                None,
            )
            .await;
        let points: usize = points.as_str().expect("data-points").parse().unwrap();
        let circles = driver.elements(Some(figure), "svg circle").await;
        assert_eq!(circles.len(), points, "figure {i}: one ● per point");
        let want = if i == 0 { looks } else { with_data };
        assert_eq!(points, want, "figure {i}: one point per look (with data)");
        let svg = driver.elements(Some(figure), "svg").await;
        let rect = driver
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/rect", svg[0]),
                None,
            )
            .await;
        assert!(
            rect["width"].as_f64().unwrap_or(0.0) > 100.0,
            "figure {i} is drawn: {rect}"
        );
    }
    let scripts = driver.elements(None, "script").await;
    assert!(scripts.is_empty(), "the page has no script");

    let console = driver.log("browser").await;
    let errors: Vec<&Value> = console
        .iter()
        .filter(|e| e["level"] == json!("SEVERE"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // Every request the browser made: (URL, the document that made it). The browser's own
    // pages (chrome://, e.g. the new-tab page a fresh profile opens) never leave the machine;
    // anything over the network must go to 127.0.0.1, and the report itself may ask for
    // nothing but itself.
    let requests = driver.requests().await;
    let outside: Vec<&(String, String)> = requests
        .iter()
        .filter(|(u, _)| {
            !(u.starts_with("file://")
                || u.starts_with("data:")
                || u.starts_with("chrome://")
                || u.starts_with("http://127.0.0.1"))
        })
        .collect();
    assert!(outside.is_empty(), "requests left 127.0.0.1: {outside:?}");
    let by_page: Vec<&String> = requests
        .iter()
        .filter(|(u, document)| *document == url && *u != url)
        .map(|(u, _)| u)
        .collect();
    assert!(
        by_page.is_empty(),
        "the report asked for more than itself: {by_page:?}"
    );
    println!(
        "browser requests: {} (the report's own: {:?})",
        requests.len(),
        requests
            .iter()
            .filter(|(_, d)| *d == url)
            .map(|(u, _)| u)
            .collect::<Vec<_>>()
    );
    driver.call(reqwest::Method::DELETE, "", None).await;
    drop(driver);
    let _ = std::fs::remove_dir_all(&dir);
}
