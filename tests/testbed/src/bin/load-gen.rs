//! load-gen: a bounded request rate spread uniformly over ready pods (label selector, via the
//! apiserver of KUBECONFIG), static URLs, or an HTTPRoute's or GRPCRoute's rules and weights
//! (with headers on a share of the requests); prints JSON totals (sent/ok/failed per pod and
//! group, and per group with and without the headers) on stdout and optionally to --output.
#![forbid(unsafe_code)]

use std::time::Duration;

use clap::Parser;
use tollgate_testbed::loadgen::{self, LoadConfig, Target, Targets};

#[derive(Debug, Parser)]
#[command(name = "load-gen")]
struct Args {
    /// Requests per second over all targets.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Stop after this many seconds (at most 3600).
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Stop after this many requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Static target URL (repeatable); when given, no pods are listed. `GROUP=URL` sets its group.
    #[arg(long = "url")]
    urls: Vec<String>,
    /// Follow this HTTPRoute's rules and backend weights (in --namespace), as a gateway would.
    #[arg(long, conflicts_with_all = ["urls", "selector", "grpc_route"])]
    http_route: Option<String>,
    /// Follow this GRPCRoute's rules and backend weights (in --namespace); the requests are
    /// still plain HTTP to the pods, only the route decides the split.
    #[arg(long, conflicts_with_all = ["urls", "selector"])]
    grpc_route: Option<String>,
    /// Rule of the route taken among the rules that match a request equally well.
    #[arg(long, default_value_t = 0)]
    rule_index: usize,
    /// A header (`NAME=VALUE`, repeatable) sent on --header-share of the requests; a route's
    /// rule that matches it (Exact header matches) takes those requests.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Share of the requests that carry the --header headers (0 to 1).
    #[arg(long, default_value_t = 1.0)]
    header_share: f64,
    /// Label selector of the pods to load (when no --url).
    #[arg(long, default_value = "")]
    selector: String,
    /// Namespace of the pods (default: all).
    #[arg(long)]
    namespace: Option<String>,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value = "/")]
    path: String,
    /// Pod label whose value groups the counts.
    #[arg(long, default_value = "track")]
    group_label: String,
    /// Re-list pods this often.
    #[arg(long, default_value_t = 1000)]
    refresh_ms: u64,
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Also write the JSON report here.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let mut headers = Vec::new();
    for h in &a.headers {
        let Some((name, value)) = h.split_once('=') else {
            eprintln!("load-gen: --header {h}: expected NAME=VALUE");
            std::process::exit(2);
        };
        headers.push((name.to_string(), value.to_string()));
    }
    let route = match (&a.http_route, &a.grpc_route) {
        (Some(r), _) => Some((r.clone(), "httproutes")),
        (None, Some(r)) => Some((r.clone(), "grpcroutes")),
        (None, None) => None,
    };
    let targets = if let Some((route, plural)) = route {
        let Some(namespace) = a.namespace.clone() else {
            eprintln!("load-gen: --http-route and --grpc-route need --namespace");
            std::process::exit(2);
        };
        let client = match tollgate_testbed::kube_client().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("load-gen: no Kubernetes client (set KUBECONFIG): {e}");
                std::process::exit(2);
            }
        };
        Targets::HttpRoute {
            client,
            namespace,
            plural: plural.to_string(),
            route,
            rule_index: a.rule_index,
            port: a.port,
            path: a.path.clone(),
            group_label: a.group_label.clone(),
            refresh: Duration::from_millis(a.refresh_ms.max(100)),
        }
    } else if a.urls.is_empty() {
        let client = match tollgate_testbed::kube_client().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("load-gen: no Kubernetes client (set KUBECONFIG or pass --url): {e}");
                std::process::exit(2);
            }
        };
        Targets::Pods {
            client,
            namespace: a.namespace.clone(),
            selector: a.selector.clone(),
            port: a.port,
            path: a.path.clone(),
            group_label: a.group_label.clone(),
            refresh: Duration::from_millis(a.refresh_ms.max(100)),
        }
    } else {
        Targets::Static(
            a.urls
                .iter()
                .map(|u| match u.split_once('=') {
                    Some((g, url)) if !g.contains(':') && !g.contains('/') => Target {
                        key: url.to_string(),
                        url: url.to_string(),
                        group: g.to_string(),
                        weight: 1.0,
                    },
                    _ => Target {
                        key: u.clone(),
                        url: u.clone(),
                        group: String::new(),
                        weight: 1.0,
                    },
                })
                .collect(),
        )
    };
    let cfg = LoadConfig {
        rate: a.rate,
        headers,
        header_share: a.header_share,
        duration: Duration::from_secs_f64(a.duration_secs.clamp(0.0, 3600.0)),
        max_requests: a.max_requests,
        timeout: Duration::from_millis(a.timeout_ms),
        concurrency: a.concurrency,
    };
    match loadgen::run(targets, cfg).await {
        Ok(report) => {
            let json = serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            println!("{json}");
            if let Some(p) = a.output {
                if let Err(e) = std::fs::write(&p, &json) {
                    eprintln!("load-gen: cannot write {}: {e}", p.display());
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("load-gen: {e}");
            std::process::exit(1);
        }
    }
}
