//! A bounded load generator: a fixed request rate, spread over the ready pods of a label selector
//! (re-listed every `refresh`; uniform, so the replica ratio is the traffic share), over a static
//! list of URLs, or over the backends of a Gateway API HTTPRoute or GRPCRoute by their weights
//! (standing in for a gateway's data plane, which cannot run here: the route object is real,
//! only the proxy is not; requests are plain HTTP to the pods either way). Requests may carry
//! headers (a share of them): the route's rule is then chosen as a gateway would among the rules
//! whose header matches the request meets (the most header matches wins; `Exact` matches only,
//! paths and gRPC methods are not looked at). Picks are smooth weighted round-robin, exact and
//! deterministic. Stops at `duration` or `max_requests`, whichever comes first, then waits for
//! the requests in flight (each bounded by `timeout`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Api;
use serde::Serialize;

/// One place to send requests to.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// `namespace/pod` or the URL itself.
    pub key: String,
    pub url: String,
    /// Aggregation group, e.g. the pod's `track` label ("" when none).
    pub group: String,
    /// Share of the traffic relative to the other targets (1 for pods and static URLs).
    pub weight: f64,
}

pub enum Targets {
    Static(Vec<Target>),
    Pods {
        client: kube::Client,
        namespace: Option<String>,
        selector: String,
        port: u16,
        path: String,
        /// Pod label whose value is the group ("track" by default).
        group_label: String,
        refresh: Duration,
    },
    /// The rules of a Gateway API route (`plural`: `httproutes` or `grpcroutes`): each rule's
    /// backend Services' ready pods share that backend's weight; `rule_index` is the rule taken
    /// among rules that match a request equally well.
    HttpRoute {
        client: kube::Client,
        namespace: String,
        plural: String,
        route: String,
        rule_index: usize,
        port: u16,
        path: String,
        group_label: String,
        refresh: Duration,
    },
}

#[derive(Debug, Clone, Default)]
pub struct LoadConfig {
    /// Requests per second, over all targets.
    pub rate: f64,
    /// Headers some requests carry (name, value).
    pub headers: Vec<(String, String)>,
    /// Share of the requests that carry `headers` (0..=1), spread evenly.
    pub header_share: f64,
    pub duration: Duration,
    pub max_requests: Option<u64>,
    pub timeout: Duration,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub sent: u64,
    pub ok: u64,
    /// Non-2xx answers plus transport errors.
    pub failed: u64,
    /// Transport errors (connect, timeout): no status code.
    pub errors: u64,
    pub codes: BTreeMap<String, u64>,
}

impl Counts {
    fn record(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Status(code) => {
                *self.codes.entry(code.to_string()).or_default() += 1;
                if (200..300).contains(code) {
                    self.ok += 1;
                } else {
                    self.failed += 1;
                }
            }
            Outcome::Error => {
                self.errors += 1;
                self.failed += 1;
            }
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCounts {
    pub url: String,
    pub group: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(flatten)]
    pub total: Counts,
    /// Ticks at which no target was ready (nothing sent).
    pub skipped_no_target: u64,
    pub duration_seconds: f64,
    /// By target key (`namespace/pod` or URL).
    pub targets: BTreeMap<String, TargetCounts>,
    /// By group (e.g. track).
    pub groups: BTreeMap<String, Counts>,
    /// By group, the requests that carried the headers.
    pub header_groups: BTreeMap<String, Counts>,
    /// By group, the requests that did not.
    pub plain_groups: BTreeMap<String, Counts>,
}

/// One header condition of a route match (`Exact`; other types never match here).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderCond {
    /// Lowercase header name.
    pub name: String,
    /// The exact value, or None for a type this load generator does not evaluate.
    pub exact: Option<String>,
}

/// One rule of a route (or the one implicit rule of pods and URLs): its matches' header
/// conditions (one list per match; an empty list matches every request) and its targets.
#[derive(Debug, Clone, Default)]
pub struct RuleTargets {
    pub matches: Vec<Vec<HeaderCond>>,
    pub targets: Vec<Target>,
}

impl RuleTargets {
    fn everything(targets: Vec<Target>) -> Vec<RuleTargets> {
        vec![RuleTargets {
            matches: vec![Vec::new()],
            targets,
        }]
    }

    /// The most header conditions of one of its matches that `headers` meets, if any does.
    fn score(&self, headers: &[(String, String)]) -> Option<usize> {
        self.matches
            .iter()
            .filter(|conds| {
                conds.iter().all(|c| {
                    headers.iter().any(|(n, v)| {
                        n.eq_ignore_ascii_case(&c.name) && c.exact.as_deref() == Some(v.as_str())
                    })
                })
            })
            .map(Vec::len)
            .max()
    }
}

/// The rule a gateway would take for a request with `headers`: among the rules that match it,
/// the one with the most header matches; on a tie `preferred`, else the first.
pub fn choose_rule(
    rules: &[RuleTargets],
    headers: &[(String, String)],
    preferred: usize,
) -> Option<usize> {
    let scores: Vec<Option<usize>> = rules.iter().map(|r| r.score(headers)).collect();
    let best = scores.iter().flatten().max()?;
    if scores.get(preferred) == Some(&Some(*best)) {
        return Some(preferred);
    }
    scores.iter().position(|s| *s == Some(*best))
}

/// Header conditions of each match of a route rule (`spec.rules[].matches[].headers`); a rule
/// without matches matches everything.
pub fn rule_matches(rule: &serde_json::Value) -> Vec<Vec<HeaderCond>> {
    let matches = rule
        .get("matches")
        .and_then(|m| m.as_array())
        .filter(|m| !m.is_empty());
    let Some(matches) = matches else {
        return vec![Vec::new()];
    };
    matches
        .iter()
        .map(|m| {
            m.get("headers")
                .and_then(|h| h.as_array())
                .map(|hs| {
                    hs.iter()
                        .map(|h| HeaderCond {
                            name: h
                                .get("name")
                                .and_then(|n| n.as_str())
                                .unwrap_or_default()
                                .to_ascii_lowercase(),
                            exact: match h.get("type").and_then(|t| t.as_str()) {
                                None | Some("Exact") => {
                                    h.get("value").and_then(|v| v.as_str()).map(str::to_string)
                                }
                                Some(_) => None,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

enum Outcome {
    Status(u16),
    Error,
}

fn pod_target(p: &Pod, port: u16, path: &str, group_label: &str) -> Option<Target> {
    if !crate::pods::is_ready(p) {
        return None;
    }
    let ip = p.status.as_ref()?.pod_ip.clone()?;
    let group = p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(group_label).cloned())
        .unwrap_or_default();
    Some(Target {
        key: crate::pods::key(p),
        url: format!("http://{ip}:{port}{path}"),
        group,
        weight: 1.0,
    })
}

async fn ready_pods(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: &str,
    port: u16,
    path: &str,
    group_label: &str,
) -> Result<Vec<Target>, kube::Error> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut lp = ListParams::default();
    if !selector.is_empty() {
        lp = lp.labels(selector);
    }
    let pods = api.list(&lp).await?;
    let mut t: Vec<Target> = pods
        .items
        .iter()
        .filter_map(|p| pod_target(p, port, path, group_label))
        .collect();
    t.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(answering(t).await)
}

/// Pods (by key and URL) whose process was seen listening.
static LISTENING: Mutex<std::collections::BTreeSet<(String, String)>> =
    Mutex::new(std::collections::BTreeSet::new());

/// The targets whose process accepts a connection, each pod checked once (a TCP connect, no
/// request): kwok marks a pod Ready the moment it runs, before the pod runner's process listens,
/// where a kubelet would wait for the readiness probe; without this a request could go to a pod
/// that is Ready only on paper.
async fn answering(targets: Vec<Target>) -> Vec<Target> {
    let seen = |t: &Target| {
        LISTENING
            .lock()
            .map(|s| s.contains(&(t.key.clone(), t.url.clone())))
            .unwrap_or(false)
    };
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        if seen(&t) {
            out.push(t);
            continue;
        }
        let Some(addr) = t
            .url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
        else {
            continue;
        };
        let connected = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await;
        if matches!(connected, Ok(Ok(_))) {
            if let Ok(mut s) = LISTENING.lock() {
                s.insert((t.key.clone(), t.url.clone()));
            }
            out.push(t);
        }
    }
    out
}

/// `(service name, weight)` of the backends of `spec.rules[rule].backendRefs` (weight defaults
/// to 1, as in the Gateway API).
pub fn route_backends(route: &serde_json::Value, rule: usize) -> Vec<(String, f64)> {
    route
        .pointer(&format!("/spec/rules/{rule}/backendRefs"))
        .and_then(|b| b.as_array())
        .map(|refs| {
            refs.iter()
                .filter_map(|b| {
                    let name = b.get("name")?.as_str()?.to_string();
                    let weight = b.get("weight").and_then(|w| w.as_f64()).unwrap_or(1.0);
                    Some((name, weight.max(0.0)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Smooth weighted round-robin (as in nginx): every pick adds each weight to its credit, takes
/// the largest credit and charges it the total. Equal weights give plain round-robin; a weight of
/// 0 is never picked.
#[derive(Debug, Default)]
pub struct WeightedPicker {
    credit: Vec<f64>,
}

impl WeightedPicker {
    /// Index of the next target, or None when no target has weight.
    pub fn pick(&mut self, targets: &[Target]) -> Option<usize> {
        if self.credit.len() != targets.len() {
            self.credit = vec![0.0; targets.len()];
        }
        let total: f64 = targets.iter().map(|t| t.weight.max(0.0)).sum();
        if total <= 0.0 {
            return None;
        }
        let mut best: Option<usize> = None;
        for (i, t) in targets.iter().enumerate() {
            if t.weight <= 0.0 {
                continue;
            }
            self.credit[i] += t.weight;
            if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            self.credit[b] -= total;
        }
        best
    }
}

/// The ready pods of rule `rule`'s backend Services, each backend's weight shared by its pods.
async fn route_targets(
    client: &kube::Client,
    namespace: &str,
    route: &serde_json::Value,
    rule: usize,
    port: u16,
    path: &str,
    group_label: &str,
) -> Result<Vec<Target>, kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let mut targets = Vec::new();
    for (service, weight) in route_backends(route, rule) {
        let Some(found) = services.get_opt(&service).await? else {
            continue; // a backend that does not exist gets nothing, as at a gateway
        };
        let selector = found
            .spec
            .and_then(|s| s.selector)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        if selector.is_empty() {
            continue; // a Service without selector has no pods of ours
        }
        let mut pods =
            ready_pods(client, Some(namespace), &selector, port, path, group_label).await?;
        let share = weight / pods.len().max(1) as f64;
        for p in &mut pods {
            p.weight = share;
        }
        targets.extend(pods);
    }
    Ok(targets)
}

impl Targets {
    async fn current(&self) -> Result<Vec<RuleTargets>, kube::Error> {
        match self {
            Targets::Static(t) => Ok(RuleTargets::everything(t.clone())),
            Targets::Pods {
                client,
                namespace,
                selector,
                port,
                path,
                group_label,
                ..
            } => Ok(RuleTargets::everything(
                ready_pods(
                    client,
                    namespace.as_deref(),
                    selector,
                    *port,
                    path,
                    group_label,
                )
                .await?,
            )),
            Targets::HttpRoute {
                client,
                namespace,
                plural,
                route,
                port,
                path,
                group_label,
                ..
            } => {
                let kind = if plural == "grpcroutes" {
                    "GRPCRoute"
                } else {
                    "HTTPRoute"
                };
                let resource = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind),
                    plural,
                );
                let routes: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let object = routes.get(route).await?;
                let object = serde_json::to_value(&object).unwrap_or_default();
                let rules = object
                    .pointer("/spec/rules")
                    .and_then(|r| r.as_array())
                    .cloned()
                    .unwrap_or_default();
                let mut out = Vec::new();
                for (index, rule) in rules.iter().enumerate() {
                    out.push(RuleTargets {
                        matches: rule_matches(rule),
                        targets: route_targets(
                            client,
                            namespace,
                            &object,
                            index,
                            *port,
                            path,
                            group_label,
                        )
                        .await?,
                    });
                }
                Ok(out)
            }
        }
    }
    fn refresh(&self) -> Option<Duration> {
        match self {
            Targets::Static(_) => None,
            Targets::Pods { refresh, .. } | Targets::HttpRoute { refresh, .. } => Some(*refresh),
        }
    }
}

/// Runs the load; errors only when the target list cannot be obtained at the start.
pub async fn run(targets: Targets, cfg: LoadConfig) -> Result<Report, String> {
    if !(cfg.rate > 0.0 && cfg.rate.is_finite()) {
        return Err(format!("rate must be > 0, got {}", cfg.rate));
    }
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .pool_max_idle_per_host(4)
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let mut current = targets
        .current()
        .await
        .map_err(|e| format!("listing targets: {e}"))?;
    let preferred = match &targets {
        Targets::HttpRoute { rule_index, .. } => *rule_index,
        _ => 0,
    };
    let share = cfg.header_share.clamp(0.0, 1.0);
    let mut listed_at = Instant::now();
    let report = Arc::new(Mutex::new(Report::default()));
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.concurrency.max(1)));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pickers: Vec<WeightedPicker> = Vec::new();
    let mut sent = 0u64;
    let mut ticks = 0u64;
    loop {
        tick.tick().await;
        if started.elapsed() >= cfg.duration || cfg.max_requests.is_some_and(|m| sent >= m) {
            break;
        }
        if let Some(every) = targets.refresh() {
            if listed_at.elapsed() >= every {
                match targets.current().await {
                    Ok(t) => current = t,
                    Err(e) => {
                        eprintln!("load-gen: listing targets failed, keeping the old list: {e}")
                    }
                }
                listed_at = Instant::now();
            }
        }
        // Every tick is one request: the headers go on an even share of them.
        let carry = !cfg.headers.is_empty()
            && ((ticks + 1) as f64 * share).floor() > (ticks as f64 * share).floor();
        ticks += 1;
        let headers: &[(String, String)] = if carry { &cfg.headers } else { &[] };
        pickers.resize_with(current.len(), WeightedPicker::default);
        let picked = choose_rule(&current, headers, preferred).and_then(|rule| {
            let index = pickers[rule].pick(&current[rule].targets)?;
            Some(current[rule].targets[index].clone())
        });
        let Some(target) = picked else {
            if let Ok(mut r) = report.lock() {
                r.skipped_no_target += 1;
            }
            continue;
        };
        sent += 1;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let http = http.clone();
        let report = report.clone();
        let headers = headers.to_vec();
        tokio::spawn(async move {
            let mut request = http.get(&target.url);
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str());
            }
            let outcome = match request.send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    Outcome::Status(code)
                }
                Err(_) => Outcome::Error,
            };
            if let Ok(mut r) = report.lock() {
                r.total.sent += 1;
                r.total.record(&outcome);
                let t = r
                    .targets
                    .entry(target.key.clone())
                    .or_insert_with(|| TargetCounts {
                        url: target.url.clone(),
                        group: target.group.clone(),
                        ..Default::default()
                    });
                t.counts.sent += 1;
                t.counts.record(&outcome);
                let g = r.groups.entry(target.group.clone()).or_default();
                g.sent += 1;
                g.record(&outcome);
                let split = if carry {
                    &mut r.header_groups
                } else {
                    &mut r.plain_groups
                };
                let g = split.entry(target.group.clone()).or_default();
                g.sent += 1;
                g.record(&outcome);
            }
            drop(permit);
        });
    }
    // Wait for everything in flight: all permits back.
    let _all = permits
        .acquire_many(cfg.concurrency.max(1) as u32)
        .await
        .map_err(|e| format!("semaphore: {e}"))?;
    let mut out = report
        .lock()
        .map_err(|_| "report lock poisoned".to_string())?
        .clone();
    out.duration_seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_against_a_local_server() {
        // A tiny server: /ok answers 200, /bad 503.
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "ok" }))
            .route(
                "/bad",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no")
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let t = |k: &str, p: &str, g: &str| Target {
            key: k.into(),
            url: format!("http://{addr}{p}"),
            group: g.into(),
            weight: 1.0,
        };
        // A closed port on loopback for transport errors.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let targets = Targets::Static(vec![
            t("a", "/ok", "stable"),
            t("b", "/ok", "stable"),
            t("c", "/bad", "canary"),
            Target {
                key: "d".into(),
                url: format!("http://{closed}/"),
                group: "canary".into(),
                weight: 1.0,
            },
        ]);
        let cfg = LoadConfig {
            rate: 400.0,
            duration: Duration::from_secs(10),
            max_requests: Some(40),
            timeout: Duration::from_secs(2),
            concurrency: 8,
            ..Default::default()
        };
        let r = run(targets, cfg).await.unwrap();
        assert_eq!(r.total.sent, 40);
        assert_eq!(r.total.ok, 20);
        assert_eq!(r.total.failed, 20);
        assert_eq!(r.total.errors, 10);
        for k in ["a", "b", "c", "d"] {
            assert_eq!(r.targets[k].counts.sent, 10, "{k}");
        }
        assert_eq!(r.groups["stable"].ok, 20);
        assert_eq!(r.groups["canary"].codes.get("503"), Some(&10));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["sent"], 40);
        assert_eq!(json["targets"]["c"]["codes"]["503"], 10);
    }

    fn target(key: &str, weight: f64) -> Target {
        Target {
            key: key.into(),
            url: String::new(),
            group: String::new(),
            weight,
        }
    }

    #[test]
    fn weighted_picks_follow_the_weights_exactly() {
        // 30/70 between two backends, the second with two pods of 35 each.
        let targets = [target("s", 30.0), target("c1", 35.0), target("c2", 35.0)];
        let mut picker = WeightedPicker::default();
        let mut counts = [0u32; 3];
        for _ in 0..1000 {
            counts[picker.pick(&targets).unwrap()] += 1;
        }
        assert_eq!(counts, [300, 350, 350]);
        // Weight 0 is never picked; equal weights are round-robin.
        let targets = [target("a", 0.0), target("b", 1.0), target("c", 1.0)];
        let picks: Vec<usize> = (0..4).map(|_| picker.pick(&targets).unwrap()).collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        assert_eq!(picker.pick(&[target("z", 0.0)]), None);
        assert_eq!(picker.pick(&[]), None);
    }

    #[test]
    fn route_backends_read_names_and_default_weights() {
        let route = serde_json::json!({"spec": {"rules": [
            {"backendRefs": [{"name": "demo-stable", "port": 8080, "weight": 80},
                             {"name": "demo-canary", "port": 8080}]}]}});
        assert_eq!(
            route_backends(&route, 0),
            vec![("demo-stable".into(), 80.0), ("demo-canary".into(), 1.0)]
        );
        assert!(route_backends(&route, 1).is_empty());
    }

    fn cond(name: &str, value: &str) -> HeaderCond {
        HeaderCond {
            name: name.into(),
            exact: Some(value.into()),
        }
    }

    #[test]
    fn the_rule_with_the_most_header_matches_the_request_meets_wins() {
        let route = serde_json::json!({"spec": {"rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]},
            {"name": "tollgate-header-testers-0", "matches": [{"path": {"value": "/"},
                "headers": [{"type": "Exact", "name": "X-Canary", "value": "yes"}]}]},
            {"matches": [{"headers": [{"type": "RegularExpression", "name": "x-team", "value": ".*"}]}]}
        ]}});
        let rules: Vec<RuleTargets> = route["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| RuleTargets {
                matches: rule_matches(r),
                targets: Vec::new(),
            })
            .collect();
        assert_eq!(rules[0].matches, vec![Vec::<HeaderCond>::new()]);
        assert_eq!(rules[1].matches, vec![vec![cond("x-canary", "yes")]]);
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        // No header: the plain rule; with it (any case of the name): the header rule.
        assert_eq!(choose_rule(&rules, &[], 0), Some(0));
        assert_eq!(choose_rule(&rules, &h("x-canary", "yes"), 0), Some(1));
        assert_eq!(choose_rule(&rules, &h("X-Canary", "no"), 0), Some(0));
        // A regular expression is never evaluated here: that rule never matches.
        assert_eq!(choose_rule(&rules, &h("x-team", "qa"), 0), Some(0));
        // Ties go to the preferred rule.
        let two = [rules[0].clone(), rules[0].clone()];
        assert_eq!(choose_rule(&two, &[], 1), Some(1));
        assert_eq!(choose_rule(&[], &[], 0), None);
    }

    #[tokio::test]
    async fn a_share_of_the_requests_carries_the_headers() {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let targets = Targets::Static(vec![Target {
            key: "a".into(),
            url: format!("http://{addr}/"),
            group: "g".into(),
            weight: 1.0,
        }]);
        let cfg = LoadConfig {
            rate: 400.0,
            duration: Duration::from_secs(10),
            max_requests: Some(40),
            timeout: Duration::from_secs(2),
            concurrency: 8,
            headers: vec![("X-Canary".into(), "yes".into())],
            header_share: 0.25,
        };
        let r = run(targets, cfg).await.unwrap();
        assert_eq!(r.header_groups["g"].sent, 10);
        assert_eq!(r.plain_groups["g"].sent, 30);
    }
}
