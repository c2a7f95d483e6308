//! pod-runner: gives every Running kwok pod a real process. For each pod (matching --selector,
//! in --namespace or all namespaces) that is Running with an IP inside --pod-cidr (which must be
//! loopback), it starts `demo-app` bound to `<podIP>:<port>` with the `DEMO_*` env of the pod's
//! app container, restarts it when that spec changes or it exits, and stops it when the pod goes
//! away: after --termination-grace-ms, as a real kubelet's SIGTERM leaves a pod's app serving
//! while the endpoints converge (at once when a new pod takes the same IP). Polls the apiserver
//! every --interval-ms. Serves /healthz and /pods on --status-listen.
//! On SIGTERM/SIGINT it kills its children and exits.
//!
//! With --inline it starts no processes: it serves every pod from this one process (one demo-app
//! router and listener per pod IP, a task each), so thousands of pods cost one process and a
//! socket each (the scale bench; mind `ulimit -n`). /pods then lists this process' pid for every
//! pod.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;
use serde::Serialize;
use tollgate_testbed::cidr::Cidr;
use tollgate_testbed::pods::{self, ProcSpec};

#[derive(Debug, Parser)]
#[command(name = "pod-runner")]
struct Args {
    /// Path of the demo-app binary (not needed with --inline).
    #[arg(long, env = "DEMO_APP_BIN")]
    demo_app: Option<PathBuf>,
    /// Serve every pod from this process (demo-app's router on a listener per pod IP) instead of
    /// a demo-app process per pod.
    #[arg(long)]
    inline: bool,
    /// Only pods whose IP is in this CIDR get a process; it must be inside 127.0.0.0/8.
    #[arg(long, default_value = "127.0.10.0/24")]
    pod_cidr: Cidr,
    /// Label selector of the pods to run (empty: all pods).
    #[arg(long, default_value = "")]
    selector: String,
    /// Namespace to watch (default: all).
    #[arg(long)]
    namespace: Option<String>,
    /// Port the demo-app listens on at the pod IP.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Poll interval.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Status server (/healthz, /pods).
    #[arg(long, default_value = "127.0.0.1:0")]
    status_listen: String,
    /// Per-pod logs and pid files (`<namespace>_<pod>.log|.pid`).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Write Prometheus file_sd targets (one per running process, labelled from the pod) here.
    #[arg(long)]
    file_sd: Option<PathBuf>,
    /// How long the process of a pod that went away keeps serving (out of /pods and file_sd)
    /// before it is killed: clients that listed the pod a moment before it went away (load-gen
    /// re-lists every 200 ms to 1 s) finish their requests, as behind a real Service. 0 kills at
    /// once.
    #[arg(long, default_value_t = 1500)]
    termination_grace_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunningPod {
    ip: String,
    pid: u32,
    version: String,
    env: BTreeMap<String, String>,
}

struct Proc {
    spec: ProcSpec,
    handle: Handle,
    started: Instant,
}

/// What serves a pod: a demo-app child process, or (--inline) a server task in this process.
enum Handle {
    Child(Child),
    Task {
        /// Graceful shutdown: stop accepting, close idle keep-alive connections (a scraper
        /// must not keep reading the old version's server), finish in-flight requests.
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        join: tokio::task::JoinHandle<std::io::Result<()>>,
    },
}

impl Handle {
    /// Some(description) when the server ended on its own.
    fn exited(&mut self) -> Option<String> {
        match self {
            Handle::Child(c) => match c.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
            Handle::Task { join, .. } => join.is_finished().then(|| "server task ended".into()),
        }
    }
}

fn kill(key: &str, mut p: Proc, why: &str) {
    match &mut p.handle {
        Handle::Child(child) => {
            let _ = child.kill();
            let _ = child.wait();
        }
        Handle::Task { shutdown, join } => {
            if let Some(tx) = shutdown.take() {
                let _ = tx.send(());
            }
            // The listener closes at once; connections still open after a grace are cut.
            let join = std::mem::replace(join, tokio::spawn(async { Ok(()) }));
            tokio::spawn(async move {
                let abort = join.abort_handle();
                if tokio::time::timeout(Duration::from_secs(2), join)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            });
        }
    }
    eprintln!(
        "pod-runner: stopped {key} ({why}, ran {:.1}s)",
        p.started.elapsed().as_secs_f64()
    );
}

struct Runner {
    args: Args,
    /// Target labels per pod key (for file_sd), refreshed at every reconcile.
    labels: BTreeMap<String, BTreeMap<String, String>>,
    last_file_sd: Option<String>,
    procs: BTreeMap<String, Proc>,
    /// Processes of pods that went away, serving until their deadline.
    draining: Vec<(String, Proc, Instant)>,
    /// Last start per pod key, to back off restarts of a crashing process.
    last_start: BTreeMap<String, Instant>,
    status: Arc<Mutex<BTreeMap<String, RunningPod>>>,
}

impl Runner {
    fn file(&self, key: &str, ext: &str) -> Option<PathBuf> {
        self.args
            .log_dir
            .as_ref()
            .map(|d| d.join(format!("{}.{ext}", key.replace('/', "_"))))
    }

    fn start(&mut self, key: &str, spec: ProcSpec) {
        if self
            .last_start
            .get(key)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_start.insert(key.to_string(), Instant::now());
        if self.args.inline {
            return self.start_inline(key, spec);
        }
        let Some(demo_app) = &self.args.demo_app else {
            return;
        };
        let mut cmd = Command::new(demo_app);
        cmd.env_clear()
            .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .envs(&spec.env)
            .stdin(Stdio::null());
        match self.file(key, "log").map(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
        }) {
            Some(Ok(f)) => {
                let f2 = f.try_clone();
                cmd.stdout(Stdio::from(f));
                match f2 {
                    Ok(f2) => cmd.stderr(Stdio::from(f2)),
                    Err(_) => cmd.stderr(Stdio::null()),
                };
            }
            _ => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id();
                if let Some(p) = self.file(key, "pid") {
                    let _ = std::fs::write(p, pid.to_string());
                }
                eprintln!(
                    "pod-runner: started {key} on {} (pid {pid}, version {})",
                    spec.ip,
                    spec.env
                        .get("DEMO_VERSION")
                        .map(String::as_str)
                        .unwrap_or("?")
                );
                if let Ok(mut s) = self.status.lock() {
                    s.insert(
                        key.to_string(),
                        RunningPod {
                            ip: spec.ip.to_string(),
                            pid,
                            version: spec.env.get("DEMO_VERSION").cloned().unwrap_or_default(),
                            env: spec.env.clone(),
                        },
                    );
                }
                self.procs.insert(
                    key.to_string(),
                    Proc {
                        spec,
                        handle: Handle::Child(child),
                        started: Instant::now(),
                    },
                );
            }
            Err(e) => eprintln!("pod-runner: cannot start demo-app for {key}: {e}"),
        }
    }

    /// --inline: demo-app's router on `<podIP>:<port>` as a task of this process. A bind that
    /// fails (the IP's previous server still closing) is retried at a later reconcile.
    fn start_inline(&mut self, key: &str, spec: ProcSpec) {
        let argv = pods::demo_app_argv(&spec.env);
        let args = match <demo_app::Args as clap::Parser>::try_parse_from(&argv) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("pod-runner: pod {key}: demo-app arguments {argv:?}: {e}");
                return;
            }
        };
        let listener = match std::net::TcpListener::bind(&args.listen)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .and_then(tokio::net::TcpListener::from_std)
        {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "pod-runner: pod {key}: cannot listen on {}: {e}",
                    args.listen
                );
                return;
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = demo_app::router(&args);
        let join = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        if let Ok(mut s) = self.status.lock() {
            s.insert(
                key.to_string(),
                RunningPod {
                    ip: spec.ip.to_string(),
                    pid: std::process::id(),
                    version: spec.env.get("DEMO_VERSION").cloned().unwrap_or_default(),
                    env: spec.env.clone(),
                },
            );
        }
        self.procs.insert(
            key.to_string(),
            Proc {
                spec,
                handle: Handle::Task {
                    shutdown: Some(tx),
                    join,
                },
                started: Instant::now(),
            },
        );
    }

    fn stop(&mut self, key: &str, why: &str) {
        if let Some(p) = self.procs.remove(key) {
            kill(key, p, why);
        }
        self.remove_pid_file(key);
        self.unlist(key);
    }

    /// A pod that went away: out of /pods and file_sd now, its process killed after the grace.
    fn retire(&mut self, key: &str) {
        let grace = Duration::from_millis(self.args.termination_grace_ms);
        match self.procs.remove(key) {
            Some(p) if !grace.is_zero() => {
                self.draining
                    .push((key.to_string(), p, Instant::now() + grace));
            }
            Some(p) => {
                kill(key, p, "pod gone or not running");
                self.remove_pid_file(key);
            }
            None => self.remove_pid_file(key),
        }
        // The pid file stays until the process is killed, so stop.sh still finds it.
        self.unlist(key);
    }

    /// Kill the draining processes past their deadline, or on an IP in `taken`.
    fn reap(&mut self, taken: &[std::net::Ipv4Addr]) {
        let now = Instant::now();
        let (done, keep): (Vec<_>, Vec<_>) = self
            .draining
            .drain(..)
            .partition(|(_, p, until)| *until <= now || taken.contains(&p.spec.ip));
        self.draining = keep;
        for (key, p, _) in done {
            kill(&key, p, "pod gone or not running");
            self.remove_pid_file(&key);
        }
    }

    fn remove_pid_file(&self, key: &str) {
        if let Some(f) = self.file(key, "pid") {
            let _ = std::fs::remove_file(f);
        }
    }

    fn unlist(&mut self, key: &str) {
        if let Ok(mut s) = self.status.lock() {
            s.remove(key);
        }
    }

    /// Rewrites the file_sd file (atomically, only when it changes).
    fn write_file_sd(&mut self) {
        let Some(path) = self.args.file_sd.clone() else {
            return;
        };
        let groups: Vec<serde_json::Value> = self
            .procs
            .iter()
            .map(|(key, p)| {
                serde_json::json!({
                    "targets": [format!("{}:{}", p.spec.ip, self.args.port)],
                    "labels": self.labels.get(key).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let text = serde_json::Value::Array(groups).to_string();
        if self.last_file_sd.as_deref() == Some(text.as_str()) {
            return;
        }
        let tmp = path.with_extension("tmp");
        match std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &path)) {
            Ok(()) => self.last_file_sd = Some(text),
            Err(e) => eprintln!("pod-runner: writing {}: {e}", path.display()),
        }
    }

    fn reconcile(&mut self, pods: &[Pod]) {
        self.labels = pods
            .iter()
            .map(|p| (pods::key(p), pods::target_labels(p)))
            .collect();
        let desired: BTreeMap<String, ProcSpec> = pods
            .iter()
            .filter_map(|p| {
                Some((
                    pods::key(p),
                    pods::desired(p, &self.args.pod_cidr, self.args.port)?,
                ))
            })
            .collect();
        let keys: Vec<String> = self.procs.keys().cloned().collect();
        for key in keys {
            let exited = self.procs.get_mut(&key).and_then(|p| p.handle.exited());
            match (desired.get(&key), exited) {
                (None, None) => self.retire(&key),
                (None, Some(_)) => self.stop(&key, "pod gone or not running"),
                (Some(_), Some(status)) => self.stop(&key, &format!("process exited: {status}")),
                (Some(d), None) if self.procs.get(&key).is_some_and(|p| &p.spec != d) => {
                    self.stop(&key, "pod spec changed")
                }
                _ => {}
            }
        }
        // A new pod on the IP of one that went away gets that IP at once.
        let taken: Vec<std::net::Ipv4Addr> = desired.values().map(|d| d.ip).collect();
        self.reap(&taken);
        for (key, spec) in desired {
            if !self.procs.contains_key(&key) {
                self.start(&key, spec);
            }
        }
        self.write_file_sd();
    }

    fn stop_all(&mut self) {
        let keys: Vec<String> = self.procs.keys().cloned().collect();
        for k in keys {
            self.stop(&k, "shutting down");
        }
        for (key, p, _) in std::mem::take(&mut self.draining) {
            kill(&key, p, "shutting down");
            self.remove_pid_file(&key);
        }
        self.write_file_sd();
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if !args.pod_cidr.is_loopback() {
        eprintln!(
            "pod-runner: --pod-cidr {:?} is not inside 127.0.0.0/8; refusing",
            args.pod_cidr
        );
        std::process::exit(2);
    }
    if !args.inline && args.demo_app.is_none() {
        eprintln!("pod-runner: --demo-app (or DEMO_APP_BIN) is required without --inline");
        std::process::exit(2);
    }
    if let Some(d) = &args.log_dir {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("pod-runner: cannot create {}: {e}", d.display());
            std::process::exit(2);
        }
    }
    let client = match tollgate_testbed::kube_client().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pod-runner: no Kubernetes client: {e}");
            std::process::exit(2);
        }
    };
    let api: Api<Pod> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let status = Arc::new(Mutex::new(BTreeMap::new()));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = match tokio::net::TcpListener::bind(&args.status_listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pod-runner: cannot listen on {}: {e}", args.status_listen);
            std::process::exit(2);
        }
    };
    if let Ok(a) = listener.local_addr() {
        eprintln!("pod-runner: status on http://{a}");
    }
    {
        let status = status.clone();
        let healthy = healthy.clone();
        let app = axum::Router::new()
            .route(
                "/healthz",
                axum::routing::get(move || {
                    let ok = healthy.load(std::sync::atomic::Ordering::Relaxed);
                    async move {
                        if ok {
                            (axum::http::StatusCode::OK, "ok\n")
                        } else {
                            (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                "not listed yet\n",
                            )
                        }
                    }
                }),
            )
            .route(
                "/pods",
                axum::routing::get(move || {
                    let snapshot = status.lock().map(|s| s.clone()).unwrap_or_default();
                    async move { axum::Json(snapshot) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let mut runner = Runner {
        args,
        labels: BTreeMap::new(),
        last_file_sd: None,
        procs: BTreeMap::new(),
        draining: Vec::new(),
        last_start: BTreeMap::new(),
        status,
    };
    let mut lp = ListParams::default();
    if !runner.args.selector.is_empty() {
        lp = lp.labels(&runner.args.selector);
    }
    // A pod change wakes the runner at once, besides the periodic poll. kwok makes a new pod
    // Running (and Ready) the moment it is created, sometimes on the IP of a pod deleted a moment
    // before; until the runner reconciles, that IP still answers with the deleted pod's process,
    // and an operator asking within the poll interval would read the old version.
    let (kick_tx, mut kick_rx) = tokio::sync::mpsc::channel::<()>(1);
    {
        let mut config = kube::runtime::watcher::Config::default();
        if !runner.args.selector.is_empty() {
            config = config.labels(&runner.args.selector);
        }
        // backoff: a watch that keeps failing must not spin (the poll still runs)
        let events = kube::runtime::WatchStreamExt::default_backoff(kube::runtime::watcher(
            api.clone(),
            config,
        ));
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                if event.is_ok() {
                    // a full channel already holds a wake-up: the next list sees this change too
                    let _ = kick_tx.try_send(());
                }
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_millis(runner.args.interval_ms.max(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pod-runner: cannot handle SIGTERM: {e}");
            std::process::exit(2);
        }
    };
    loop {
        tokio::select! {
            _ = async {
                tokio::select! {
                    _ = tick.tick() => {}
                    Some(()) = kick_rx.recv() => {}
                }
            } => {
                match api.list(&lp).await {
                    Ok(list) => {
                        runner.reconcile(&list.items);
                        healthy.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => eprintln!("pod-runner: listing pods failed: {e}"),
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    runner.stop_all();
    eprintln!("pod-runner: stopped");
}
