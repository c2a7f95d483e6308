//! `tollgate controller`: watches Rollouts (and the Deployments and Services they own) and
//! reconciles each one, while this replica holds the leader lease.
//!
//! Leadership gates everything that writes: the controller stream runs only while leading and
//! is dropped the moment the lease is lost (every reconcile also checks before it writes). On
//! SIGTERM or SIGINT the controller stops taking new work, lets running reconciles finish, and
//! releases the lease so a standby takes over at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::events::Reporter;
use kube::runtime::{reflector, watcher, Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::admin::{self, AdminState, Readiness};
use super::apply::Applier;
use super::events::EventPublisher;
use super::leader::{LeaderConfig, Leadership};
use super::metrics::Metrics;
use super::notify::{Notifier, NotifierConfig};
use super::observe::Observer;
use super::owned::Owned;
use super::peers::broker::BrokerPeer;
use super::peers::prometheus::PrometheusJudgePeer;
use super::peers::{AnalysisPeer, ContractPeer, PeerDefaults};
use super::reconcile::{self, Context};
use crate::crd::{Rollout, LABEL_MANAGED_BY, MANAGED_BY};

/// Everything `tollgate controller` is told.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Watch only this namespace (None: all namespaces).
    pub namespace: Option<String>,
    /// Leader election (None: this replica always leads).
    pub leader: Option<LeaderConfig>,
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    /// This replica's name, for Events.
    pub instance: String,
    /// How many rollouts are reconciled at once.
    pub concurrency: u16,
    /// Broker and Prometheus addresses for Rollouts that name none.
    pub defaults: PeerDefaults,
    /// The named notification destinations (None: no notifications).
    pub notifications: Option<std::collections::BTreeMap<String, NotifierConfig>>,
}

/// Errors that stop the controller process.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The admin server could not start.
    #[error("admin server on {0}: {1}")]
    Admin(SocketAddr, std::io::Error),
    /// Leader election could not start.
    #[error("leader election: {0}")]
    Leader(String),
    /// The webhook client could not be built.
    #[error(transparent)]
    Notifier(#[from] super::notify::NotifierError),
}

/// The production peers (the Pact Broker and Prometheus with the judge), with the operator's
/// default addresses.
pub fn production_peers(
    client: Client,
    defaults: PeerDefaults,
) -> (Arc<dyn ContractPeer>, Arc<dyn AnalysisPeer>) {
    let broker = BrokerPeer::new(client.clone(), defaults.clone());
    let prometheus = PrometheusJudgePeer::new(client, defaults);
    (Arc::new(broker), Arc::new(prometheus))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Run the controller until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    contract: Arc<dyn ContractPeer>,
    analysis: Arc<dyn AnalysisPeer>,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let notifier = notifier(&config, &metrics)?;
    let admin_state = AdminState::new(metrics.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let admin_task = serve_admin(&config, admin_state.clone(), stop_rx.clone()).await?;

    let leadership = match &config.leader {
        Some(leader) => Leadership::elect(client.clone(), leader)
            .await
            .map_err(|e| RunError::Leader(e.to_string()))?,
        None => Leadership::always(),
    };
    let mut is_leader = leadership.is_leader.clone();

    let signal = tokio::spawn(shutdown_signal());
    tokio::pin!(signal);
    loop {
        // Standby until the lease is ours (or a signal comes).
        if !*is_leader.borrow() {
            admin_state.set(Readiness::Standby);
            metrics.leader.set(0);
            info!("standby: waiting for the leader lease");
            tokio::select! {
                _ = &mut signal => break,
                changed = is_leader.changed() => {
                    if changed.is_err() { warn!("leader election stopped"); break; }
                    continue;
                }
            }
        }
        info!("leading: starting the controller");
        metrics.leader.set(1);
        admin_state.set(Readiness::Starting);
        let (controller, owned) = controller(&client, &config);
        let ctx = Arc::new(Context {
            observer: Observer::new(client.clone()),
            owned,
            applier: Applier::new(client.clone(), events(&client, &config), metrics.clone()),
            contract: contract.clone(),
            analysis: analysis.clone(),
            metrics: metrics.clone(),
            is_leader: is_leader.clone(),
            defaults: config.defaults.clone(),
            notifier: notifier.clone(),
            failures: Default::default(),
        });
        let ready = report_ready(controller.store(), admin_state.clone());
        let mut stop = stop_rx.clone();
        let run = controller
            .graceful_shutdown_on(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "controller event");
                }
            });
        tokio::pin!(run);
        let lost = tokio::select! {
            _ = &mut run => false,
            _ = &mut signal => {
                let _ = stop_tx.send(true);
                admin_state.set(Readiness::Stopping);
                // Let running reconciles finish, bounded.
                let _ = tokio::time::timeout(Duration::from_secs(20), &mut run).await;
                ready.abort();
                break;
            }
            _ = is_leader.wait_for(|l| !*l) => true,
        };
        ready.abort();
        if lost {
            // Dropping `run` here cancels every reconcile in flight: a deposed leader stops
            // writing at once.
            error!("lost the leader lease: stopped the controller");
            continue;
        }
        warn!("controller stream ended");
        break;
    }

    admin_state.set(Readiness::Stopping);
    metrics.leader.set(0);
    let _ = stop_tx.send(true);
    // Dropping the receiver makes the lease task release the lease for a standby.
    drop(is_leader);
    drop(leadership.is_leader);
    if let Some(task) = leadership.task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), admin_task).await;
    // A notification decided just before the signal gets a few seconds to go out.
    if let Some(notifier) = &notifier {
        if !notifier.drain(Duration::from_secs(5)).await {
            warn!("stopping with webhook deliveries still pending: they are lost");
        }
    }
    info!("stopped");
    Ok(())
}

/// The webhook notifier, when one is configured.
fn notifier(
    config: &ControllerConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<Notifier>, RunError> {
    match config.notifications.clone() {
        Some(destinations) => {
            for (name, c) in &destinations {
                info!(destination = %name, webhook = %c.url.redacted(), format = ?c.format, default = c.default_destination, "webhook notifications on");
            }
            Ok(Some(Notifier::with_destinations(
                destinations,
                metrics.clone(),
            )?))
        }
        None => {
            info!("no webhook configured: notifications off");
            Ok(None)
        }
    }
}

/// Bind the admin server and serve it until `stop` turns true.
async fn serve_admin(
    config: &ControllerConfig,
    state: AdminState,
    mut stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, RunError> {
    let listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .map_err(|e| RunError::Admin(config.admin_addr, e))?;
    info!(addr = %config.admin_addr, "admin server listening");
    let router = admin::router(state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }))
}

/// The Event publisher, reporting as this replica.
fn events(client: &Client, config: &ControllerConfig) -> EventPublisher {
    EventPublisher::new(
        client.clone(),
        Reporter {
            controller: "tollgate".into(),
            instance: Some(config.instance.clone()),
        },
    )
}

/// The controller over Rollouts and the Deployments and Services they own, and the watch
/// caches of those children (label-selected: only objects tollgate manages are cached).
fn controller(client: &Client, config: &ControllerConfig) -> (Controller<Rollout>, Owned) {
    let (rollouts, deployments, services) = match &config.namespace {
        Some(ns) => (
            Api::<Rollout>::namespaced(client.clone(), ns),
            Api::<Deployment>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let policies = match &config.namespace {
        Some(ns) => Api::<crate::crd::RolloutPolicy>::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // The Rollouts' cache, without managedFields: as a Controller::new would keep it, its
    // managedFields were half of each cached Rollout (their field sets are trees of small
    // allocations: 14 KB a Rollout, 4 of 8 MB at 300 Rollouts) and nothing reads them. `None`,
    // not an empty list, so a status write (which sends the object back) leaves them as they are.
    let (rollout_store, rollout_writer) = reflector::store();
    let rollouts = watcher(rollouts, watcher::Config::default())
        .modify(|r| r.metadata.managed_fields = None)
        .reflect(rollout_writer)
        .applied_objects();
    let controller = Controller::for_stream(rollouts, rollout_store);
    // A policy's change (or its creation, for a Rollout held on a missing one) requeues the
    // Rollouts that name it, found in the controller's own cache of Rollouts.
    let store = controller.store();
    let namers = move |kind: crate::crd::PolicyKind, namespace: Option<String>, name: String| {
        store
            .state()
            .into_iter()
            .filter(|r| {
                r.spec
                    .policy_ref
                    .as_ref()
                    .is_some_and(|p| p.kind == kind && p.name == name)
                    && (namespace.is_none() || r.metadata.namespace == namespace)
            })
            .map(|r| kube::runtime::reflector::ObjectRef::from_obj(&*r))
            .collect::<Vec<_>>()
    };
    let cluster_namers = namers.clone();
    // The children's watches fill the caches reconciles read from (instead of a GET per track
    // per pass) and wake the owning Rollout, as `owns` would.
    let (deployment_store, deployment_writer) = reflector::store();
    let (service_store, service_writer) = reflector::store();
    // Without managedFields (often half of an object, and never read): the caches hold every
    // child of every Rollout, 30,000 Deployments at 10,000 Rollouts.
    let deployments = watcher(deployments, owned.clone())
        .default_backoff()
        .modify(|d| d.metadata.managed_fields = None)
        .reflect(deployment_writer)
        .touched_objects();
    let services = watcher(services, owned)
        .default_backoff()
        .modify(|s| s.metadata.managed_fields = None)
        .reflect(service_writer)
        .touched_objects();
    let controller = controller
        .owns_stream(deployments)
        .owns_stream(services)
        .watches(policies, watcher::Config::default(), move |p| {
            namers(
                crate::crd::PolicyKind::RolloutPolicy,
                p.metadata.namespace.clone(),
                p.name_any(),
            )
        })
        .watches(
            Api::<crate::crd::ClusterRolloutPolicy>::all(client.clone()),
            watcher::Config::default(),
            move |p| {
                cluster_namers(
                    crate::crd::PolicyKind::ClusterRolloutPolicy,
                    None,
                    p.name_any(),
                )
            },
        )
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency));
    (controller, Owned::new(deployment_store, service_store))
}

/// Mark the admin state `Leading` once the watches have synced.
fn report_ready(
    store: kube::runtime::reflector::Store<Rollout>,
    state: AdminState,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // kube-runtime's readiness latch keeps one waker, and the controller itself waits on
        // it too, so a second waiter may never be woken: ask again until the latch is set
        // (after which it answers at once).
        loop {
            match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    state.set(Readiness::Leading);
                    info!("watches synced: ready");
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    })
}
