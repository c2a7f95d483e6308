//! The dashboard's fleet table: every pod of a Rollout with its track, the version and
//! configuration hash it reports, and the verdict.
//!
//! Why a live read: `status.fleet` keeps the counts and only the failing pods (at most 20, so
//! the status stays small), not every pod. So the dashboard asks the pods itself, through the
//! very code the fleet gate runs ([`Observer::fleet_outcome`]: the same inventory of each
//! track, the same attestation source and the same rules), from where the dashboard runs and
//! under the user's identity. Bounded: at most [`MAX_PODS`] pods are asked (the count of all
//! is shown), and a read is reused for [`FRESH_FOR`] so a live page does not hammer the pods.
//! The operator's own record (`status.fleet`) is shown beside it and stays the one that gates.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use crate::cli::html;
use crate::crd::{FleetSource, FleetStatus, Rollout};
use crate::gates::fleet::{FleetOutcome, PodVerdict};
use crate::rollout::decide::{adoption, FleetScope};
use crate::runtime::observe::{rollout_selector, Observer};
use crate::util::text;

/// Most pods one fleet table asks and lists.
pub(super) const MAX_PODS: usize = 200;

/// How long a live read is reused (a live page re-renders on every change of the Rollout).
pub(super) const FRESH_FOR: Duration = Duration::from_secs(10);

/// One live read of a Rollout's pods.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LiveFleet {
    /// When the pods were asked.
    pub at: Option<Timestamp>,
    /// Pods carrying the Rollout's label (all of them, asked or not).
    pub pods_total: usize,
    /// pod, track, reported version, reported configuration hash, verdict; by track and name.
    pub rows: Vec<[String; 5]>,
    /// Why there is no table (the read failed, or there is nothing to ask).
    pub note: Option<String>,
}

impl LiveFleet {
    /// What a page shows before the pods were asked (its event stream brings the table).
    pub(super) fn asking() -> LiveFleet {
        LiveFleet {
            note: Some(
                "asking the pods now; the table follows on this page (with JavaScript) or on \
                 a reload"
                    .into(),
            ),
            ..LiveFleet::default()
        }
    }
}

/// Which tracks to ask, at which versions: what the gate would ask in the Rollout's present
/// state (the canary while one exists, stable always).
fn scope(rollout: &Rollout) -> Option<FleetScope> {
    let status = rollout.status.clone().unwrap_or_default();
    let canary = status.canary_version.clone();
    let stable = status.stable_version.clone();
    if canary.is_none() && stable.is_none() {
        return None;
    }
    Some(FleetScope {
        original: adoption::original_is_stable(&rollout.spec, &status, canary.is_some()),
        canary_version: canary,
        stable_version: stable,
    })
}

/// What a live read depends on besides time: the phase and the versions (a read made in
/// another phase or for other versions is not reused).
pub(super) fn basis(rollout: &Rollout) -> String {
    let status = rollout.status.clone().unwrap_or_default();
    format!(
        "{:?} {:?} {:?}",
        status.phase, status.canary_version, status.stable_version
    )
}

/// The verdict cell of a pod: `matches`, or each problem with what was expected.
fn verdict(v: &PodVerdict) -> String {
    if v.passed() {
        return "matches".into();
    }
    v.problems
        .iter()
        .map(|p| match &p.expected {
            Some(e) => format!("{} (expected {e})", p.kind),
            None => p.kind.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The table rows of an outcome (pure): every asked pod, then the pods not ready (not asked).
pub(super) fn rows(outcome: &FleetOutcome) -> Vec<[String; 5]> {
    let dash = || "-".to_string();
    let mut rows: Vec<[String; 5]> = outcome
        .verdicts
        .iter()
        .map(|v| {
            [
                v.pod.name.clone(),
                v.pod.track.to_string(),
                v.reported_version.clone().unwrap_or_else(dash),
                v.reported_config_hash.clone().unwrap_or_else(dash),
                verdict(v),
            ]
        })
        .collect();
    rows.extend(outcome.report.not_ready.iter().map(|p| {
        [
            p.name.clone(),
            p.track.to_string(),
            dash(),
            dash(),
            "not ready (not asked)".to_string(),
        ]
    }));
    rows.sort_by(|a, b| (&a[1], &a[0]).cmp(&(&b[1], &b[0])));
    rows.truncate(MAX_PODS);
    rows
}

/// Ask the Rollout's pods now (bounded by [`MAX_PODS`]).
pub(super) async fn read(client: &kube::Client, rollout: &Rollout) -> LiveFleet {
    let at = Some(Timestamp::now());
    let note = |note: String| LiveFleet {
        at,
        note: Some(note),
        ..LiveFleet::default()
    };
    if !rollout.spec.fleet_check().enabled {
        return note("the fleet check is off for this Rollout (spec.fleetCheck.enabled)".into());
    }
    if rollout.spec.fleet_check().source == FleetSource::Prometheus {
        return note(
            "source: prometheus is not asked from the dashboard (it has no Prometheus client); \
             the operator's record is above"
                .into(),
        );
    }
    let Some(scope) = scope(rollout) else {
        return note("no version to check yet".into());
    };
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pods_total = match pods
        .list_metadata(&ListParams::default().labels(&rollout_selector(&name)))
        .await
    {
        Ok(list) => list.items.len(),
        Err(e) => return note(format!("cannot list the pods: {e}")),
    };
    let observer = Observer::new(client.clone());
    let outcome = async {
        let deployments = observer.deployments(&namespace, &name).await?;
        let original = if scope.original {
            observer.workload_ref(rollout).await?
        } else {
            None
        };
        observer
            .fleet_outcome(
                rollout,
                &deployments,
                original.as_ref(),
                &scope,
                None,
                Some(MAX_PODS),
            )
            .await
    }
    .await;
    match outcome {
        Ok(outcome) => LiveFleet {
            at,
            pods_total,
            rows: rows(&outcome),
            note: None,
        },
        Err(e) => note(format!("cannot ask the pods: {e}")),
    }
}

/// The page's fleet section (pure): the operator's record from status, then the live table.
pub(super) fn section(record: Option<&FleetStatus>, live: &LiveFleet) -> String {
    let mut out = String::from("<h2 id=\"fleet\">Fleet</h2>\n");
    match record {
        None => out.push_str("<p class=\"note\">The operator has not checked the fleet yet.</p>\n"),
        Some(f) => {
            out.push_str(&format!(
                "<p>The operator's last check{}: {}: {} of {} pods match, {} failing, {} not ready</p>\n",
                f.checked_at
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default(),
                text::for_html(&format!("{:?}", f.verdict)),
                f.pods_matching,
                f.pods_checked,
                f.pods_failing,
                f.pods_not_ready
            ));
            let failing: Vec<[String; 5]> = f
                .failing_pods
                .iter()
                .map(|p| {
                    [
                        p.pod.clone(),
                        p.track.clone().unwrap_or_default(),
                        p.problem.clone(),
                        p.reported.clone().unwrap_or_default(),
                        p.expected.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            if !failing.is_empty() {
                out.push_str(&html::table(
                    ["pod", "track", "problem", "reported", "expected"],
                    &failing,
                ));
            }
        }
    }
    let at = live.at.map(|t| format!(" at {t}")).unwrap_or_default();
    match &live.note {
        Some(note) => out.push_str(&format!(
            "<p class=\"note\">Every pod, asked by this dashboard{at}: {}</p>\n",
            text::for_html(note)
        )),
        None => {
            out.push_str(&format!(
                "<p class=\"note\">Every pod, asked by this dashboard{at} as the fleet gate asks \
                 them: {} listed of {} pods of this Rollout (at most {MAX_PODS}).</p>\n",
                live.rows.len(),
                live.pods_total
            ));
            out.push_str(
                &html::table(
                    ["pod", "track", "version", "config hash", "verdict"],
                    &live.rows,
                )
                .replacen("<table>", "<table id=\"fleet-pods\">", 1),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::crd::{GateVerdict, PodFinding};
    use crate::gates::fleet::rules::report_from_verdicts;
    use crate::gates::fleet::{
        evaluate_pods, AttestError, Attestation, ConfigRule, FleetExpectation, FleetInput,
        PodObservation, PodRef, PodTarget, Track, DEFAULT_MAX_LISTED_FAILURES,
    };

    fn observed(track: Track, name: &str, answer: Result<(&str, &str), ()>) -> PodObservation {
        PodObservation {
            target: PodTarget {
                track,
                name: name.into(),
                ip: IpAddr::V4(Ipv4Addr::new(127, 0, 45, 9)),
            },
            result: answer
                .map(|(version, hash)| Attestation {
                    version: version.into(),
                    config_hash: Some(hash.into()),
                    ..Attestation::default()
                })
                .map_err(|()| AttestError::Timeout(Duration::from_secs(2))),
        }
    }

    /// An outcome from the fleet rules themselves: two matching pods, one on the wrong
    /// version, one silent, one not ready.
    fn outcome() -> FleetOutcome {
        let expect = FleetExpectation {
            canary_version: "2.0.0".into(),
            stable_version: Some("1.0.0".into()),
            config: ConfigRule::MatchStable {
                pipeline_hash: None,
            },
            max_listed_failures: DEFAULT_MAX_LISTED_FAILURES,
            required_tracks: vec![Track::Canary],
            dependencies: Vec::new(),
            flags: Default::default(),
        };
        let input = FleetInput {
            observations: vec![
                observed(Track::Stable, "demo-stable-b", Ok(("1.0.0", "h1"))),
                observed(Track::Stable, "demo-stable-a", Ok(("1.0.0", "h1"))),
                observed(Track::Canary, "demo-canary-a", Ok(("1.9.9<b>", "h1"))),
                observed(Track::Canary, "demo-canary-b", Err(())),
            ],
            not_ready: vec![PodRef {
                track: Track::Canary,
                name: "demo-canary-c".into(),
                ip: None,
            }],
            cluster_problems: Vec::new(),
        };
        let verdicts = evaluate_pods(&expect, &input);
        let report = report_from_verdicts(&expect, &input, &verdicts);
        FleetOutcome { verdicts, report }
    }

    #[test]
    fn every_pod_is_a_row_passing_ones_too_with_what_it_reported() {
        let rows = rows(&outcome());
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            names,
            [
                "demo-canary-a",
                "demo-canary-b",
                "demo-canary-c",
                "demo-stable-a",
                "demo-stable-b"
            ],
            "by track, then name; the not-ready pod is listed too"
        );
        assert_eq!(
            rows[3],
            ["demo-stable-a", "stable", "1.0.0", "h1", "matches"]
        );
        assert_eq!(rows[0][2], "1.9.9<b>");
        assert!(
            rows[0][4].starts_with("VersionMismatch (expected 2.0.0)"),
            "{rows:?}"
        );
        assert_eq!(rows[1][2], "-");
        assert!(rows[1][4].contains("Timeout"), "{rows:?}");
        assert_eq!(rows[2][4], "not ready (not asked)");
    }

    #[test]
    fn the_section_escapes_what_pods_said_and_shows_both_records() {
        let live = LiveFleet {
            at: Some(Timestamp::from_second(1_800_000_000).unwrap()),
            pods_total: 7,
            rows: rows(&outcome()),
            note: None,
        };
        let record = FleetStatus {
            verdict: GateVerdict::Blocked,
            pods_checked: 4,
            pods_matching: 2,
            pods_failing: 2,
            failing_pods: vec![PodFinding {
                pod: "demo-canary-a".into(),
                problem: "VersionMismatch".into(),
                reported: Some("<img src=x>".into()),
                ..PodFinding::default()
            }],
            ..FleetStatus::default()
        };
        let html = section(Some(&record), &live);
        assert!(html.contains("2 of 4 pods match, 2 failing"), "{html}");
        assert!(html.contains("5 listed of 7 pods"), "{html}");
        assert!(html.contains("<table id=\"fleet-pods\">"), "{html}");
        assert!(html.contains(
            "<td>demo-stable-a</td><td>stable</td><td>1.0.0</td><td>h1</td><td>matches</td>"
        ));
        assert!(!html.contains("<b>") && !html.contains("<img"), "{html}");
        assert!(html.contains("1.9.9&lt;b&gt;"), "{html}");
        let off = section(
            None,
            &LiveFleet {
                note: Some("cannot <list>".into()),
                ..LiveFleet::default()
            },
        );
        assert!(off.contains("not checked the fleet yet"), "{off}");
        let asking = section(None, &LiveFleet::asking());
        assert!(asking.contains("asking the pods now") && !asking.contains("fleet-pods"));
        assert!(
            off.contains("cannot &lt;list&gt;") && !off.contains("fleet-pods"),
            "{off}"
        );
    }

    #[test]
    fn a_read_is_not_reused_across_phases_or_versions() {
        let mut r: Rollout = serde_json::from_value(serde_json::json!({
            "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "demo", "namespace": "shop"},
            "spec": {"version": "2.0.0", "selector": {"matchLabels": {"app": "demo"}},
                     "template": {"metadata": {"labels": {"app": "demo"}},
                                  "spec": {"containers": [{"name": "app", "image": "x"}]}}},
            "status": {"phase": "Analyzing", "stableVersion": "1.0.0", "canaryVersion": "2.0.0"}
        }))
        .expect("a Rollout");
        let analyzing = basis(&r);
        assert_eq!(basis(&r), analyzing);
        let status = r.status.as_mut().unwrap();
        status.phase = crate::crd::Phase::RolledBack;
        status.canary_version = None;
        assert_ne!(basis(&r), analyzing);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut outcome = outcome();
        let one = outcome.verdicts[0].clone();
        outcome.verdicts = (0..MAX_PODS + 50)
            .map(|i| {
                let mut v = one.clone();
                v.pod.name = format!("pod-{i:04}");
                v
            })
            .collect();
        assert_eq!(rows(&outcome).len(), MAX_PODS);
    }
}
