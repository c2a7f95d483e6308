//! The watch caches of the objects tollgate owns (its track Deployments and its Services,
//! label-selected by `app.kubernetes.io/managed-by: tollgate`: nothing else is cached), and
//! the record of what this process last applied to each of them.
//!
//! Why: a reconcile used to GET its three track Deployments and server-side apply every child
//! on every pass, so a fleet of Rollouts at rest still cost three GETs and several patches per
//! pass (issue 20's scale bench: 20,484 GETs and 6,821 patches of each kind to start 1,000
//! Rollouts). Reads now come from the watch cache the controller keeps anyway, and an apply is
//! skipped when the object still carries what this process applied to it last.
//!
//! Two rules keep the cache from deciding on stale data:
//! - a read waits (bounded) until the cache holds at least the `resourceVersion` this process
//!   wrote last (after an apply, the watch event may not have arrived yet), and asks the API
//!   server directly when it does not catch up in time or a version cannot be compared;
//! - an apply is skipped only when the desired object is the one applied last (same hash), the
//!   live object is still the one that apply left (the same `metadata.generation` for a
//!   Deployment: someone else's edit of its spec bumps it; the same `resourceVersion` for a
//!   Service) and it carries every label and annotation asked for. Anything else applies, so
//!   drift is corrected, and a restarted operator (which remembers nothing) applies once.
//!
//! The Rollouts themselves come from the controller's own cache; a pass that starts before that
//! cache has seen this process's last status write (a child's watch event can wake it first)
//! would decide from the older status and conflict on its write. So the stored Rollout a status
//! write returns is kept until the cache has it, and a pass runs on the newer of the two.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};

use crate::crd::{Rollout, Track};
use crate::rollout::children::deployment_name;

/// Longest a read waits for the cache to reach what this process wrote before it asks the API
/// server instead (the watch event normally follows a write within milliseconds).
const CATCH_UP: Duration = Duration::from_millis(200);
/// How often a waiting read looks at the cache again.
const CATCH_UP_POLL: Duration = Duration::from_millis(10);
/// Longest a stored Rollout is kept for a cache that has not caught up (a Rollout deleted
/// meanwhile is never reconciled again: its entry goes after this).
const ROLLOUT_KEPT: Duration = Duration::from_secs(60);
/// Entries kept before the expired ones are swept.
const ROLLOUTS_SWEPT_AT: usize = 1024;
/// Longest a reconcile waits for the caches' first list before it fails (and retries).
const SYNC_DEADLINE: Duration = Duration::from_secs(30);

/// What this process last applied to one object, and what the API server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    /// Hash of the applied object (what tollgate asked for).
    hash: u64,
    /// The answer's `resourceVersion`.
    resource_version: u64,
    /// The answer's `metadata.generation` (Deployments; Services have none).
    generation: Option<i64>,
}

/// Which kind an entry of the written record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Deployment,
    Service,
}

type Key = (Kind, String, String);

/// Rollouts a status write stored, by namespace and name, with when they were kept.
type KeptRollouts = HashMap<(String, String), (Instant, Arc<Rollout>)>;

/// The caches and the written record. One per leadership term (the controller builds it with
/// its watches).
#[derive(Clone)]
pub struct Owned {
    deployments: Store<Deployment>,
    services: Store<Service>,
    written: Arc<Mutex<HashMap<Key, Written>>>,
    rollouts: Arc<Mutex<KeptRollouts>>,
    synced: Arc<AtomicBool>,
}

/// Why a cached read failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The watches did not list their objects in time (transient: the reconcile retries).
    #[error("the watch caches of tollgate's Deployments and Services did not sync within {0:?}")]
    NotSynced(Duration),
    /// The direct read that replaced a lagging cache failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The hash of the object tollgate applies (its JSON: every field tollgate sets).
pub fn applied_hash<T: serde::Serialize>(object: &T) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(object)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

fn version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// Whether `live` carries every label and annotation `desired` asks for.
fn carries_metadata(
    desired: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    live: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    let subset = |want: &Option<BTreeMap<String, String>>,
                  have: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    subset(&desired.labels, &live.labels) && subset(&desired.annotations, &live.annotations)
}

impl Owned {
    /// Caches over these stores (filled by the controller's watches).
    pub fn new(deployments: Store<Deployment>, services: Store<Service>) -> Self {
        Owned {
            deployments,
            services,
            written: Default::default(),
            rollouts: Default::default(),
            synced: Default::default(),
        }
    }

    /// Wait (bounded) until both watches have listed their objects once.
    pub async fn synced(&self) -> Result<(), CacheError> {
        if self.synced.load(Ordering::Acquire) {
            return Ok(());
        }
        let start = Instant::now();
        // kube-runtime's readiness latch wakes one waiter only (see controller::report_ready):
        // ask again in short rounds instead of waiting once.
        while start.elapsed() < SYNC_DEADLINE {
            let both = async {
                self.deployments.wait_until_ready().await?;
                self.services.wait_until_ready().await
            };
            match tokio::time::timeout(Duration::from_millis(100), both).await {
                Ok(Ok(())) => {
                    self.synced.store(true, Ordering::Release);
                    return Ok(());
                }
                Ok(Err(_)) => break,
                Err(_) => continue,
            }
        }
        Err(CacheError::NotSynced(SYNC_DEADLINE))
    }

    fn written(&self, key: &Key) -> Option<Written> {
        self.written.lock().ok()?.get(key).cloned()
    }

    fn forget(&self, key: &Key) {
        if let Ok(mut w) = self.written.lock() {
            w.remove(key);
        }
    }

    /// The three track Deployments of `rollout` (absent ones are missing), as fresh as this
    /// process's own last writes.
    pub async fn deployments(
        &self,
        client: &Client,
        namespace: &str,
        rollout: &str,
    ) -> Result<BTreeMap<Track, Deployment>, CacheError> {
        self.synced().await?;
        let mut found = BTreeMap::new();
        for track in Track::ALL {
            let name = deployment_name(rollout, track);
            if let Some(d) = self.deployment(client, namespace, &name).await? {
                found.insert(track, d);
            }
        }
        Ok(found)
    }

    async fn deployment(
        &self,
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Deployment>, CacheError> {
        let key = (Kind::Deployment, namespace.to_string(), name.to_string());
        let reference = ObjectRef::<Deployment>::new(name).within(namespace);
        let Some(wrote) = self.written(&key) else {
            return Ok(self.deployments.get(&reference).map(|d| (*d).clone()));
        };
        if let Some(d) = caught_up(&self.deployments, &reference, wrote.resource_version).await {
            return Ok(Some(d));
        }
        // The cache lags (or the object is gone): the API server answers.
        let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let now = api.get_opt(name).await?;
        if now.is_none() {
            self.forget(&key);
        }
        Ok(now)
    }

    /// Whether a Deployment apply of `desired` can be skipped: see the module doc.
    pub fn deployment_unchanged(&self, desired: &Deployment, live: Option<&Deployment>) -> bool {
        let Some(live) = live else { return false };
        let key = key_of(Kind::Deployment, desired);
        let Some(wrote) = self.written(&key) else {
            return false;
        };
        wrote.hash == applied_hash(desired)
            && wrote.generation.is_some()
            && live.metadata.generation == wrote.generation
            && carries_metadata(&desired.metadata, &live.metadata)
    }

    /// Whether a Service apply of `desired` can be skipped: see the module doc. The Service is
    /// read from the cache (the same freshness rule as the Deployments').
    pub async fn service_unchanged(&self, desired: &Service) -> Result<bool, CacheError> {
        self.synced().await?;
        let key = key_of(Kind::Service, desired);
        let Some(wrote) = self.written(&key) else {
            return Ok(false);
        };
        if wrote.hash != applied_hash(desired) {
            return Ok(false);
        }
        let reference = ObjectRef::<Service>::new(&key.2).within(&key.1);
        // A cache behind the last write, or an object changed since, applies again.
        let Some(live) = caught_up(&self.services, &reference, wrote.resource_version).await else {
            return Ok(false);
        };
        Ok(version(&live.metadata) == Some(wrote.resource_version)
            && carries_metadata(&desired.metadata, &live.metadata))
    }

    /// Remember what an apply of `desired` stored (`stored`, the API server's answer).
    pub fn record_deployment(&self, desired: &Deployment, stored: &Deployment) {
        self.record(Kind::Deployment, desired, stored)
    }

    /// Remember what an apply of `desired` stored (`stored`, the API server's answer).
    pub fn record_service(&self, desired: &Service, stored: &Service) {
        self.record(Kind::Service, desired, stored)
    }

    fn record<K: Resource + serde::Serialize>(&self, kind: Kind, desired: &K, stored: &K) {
        let key = key_of(kind, desired);
        // A version that cannot be compared is not remembered: reads of it go to the cache
        // as before, and the next pass applies again.
        let Some(resource_version) = version(stored.meta()) else {
            self.forget(&key);
            return;
        };
        let written = Written {
            hash: applied_hash(desired),
            resource_version,
            generation: stored.meta().generation,
        };
        if let Ok(mut w) = self.written.lock() {
            w.insert(key, written);
        }
    }

    /// Forget what was applied to one Deployment (scaled by a merge patch instead of applied:
    /// the next apply must not be skipped).
    pub fn forget_deployment(&self, namespace: &str, name: &str) {
        self.forget(&(Kind::Deployment, namespace.to_string(), name.to_string()));
    }
}

impl Owned {
    /// Keep the Rollout a status write stored until the controller's cache has it.
    pub fn record_rollout(&self, stored: &Rollout) {
        if version(&stored.metadata).is_none() {
            return;
        }
        let key = (stored.namespace().unwrap_or_default(), stored.name_any());
        if let Ok(mut kept) = self.rollouts.lock() {
            if kept.len() >= ROLLOUTS_SWEPT_AT {
                kept.retain(|_, (at, _)| at.elapsed() < ROLLOUT_KEPT);
            }
            kept.insert(key, (Instant::now(), Arc::new(stored.clone())));
        }
    }

    /// The newer of `cached` (the controller's copy) and the Rollout this process's last status
    /// write stored; the kept copy goes once the cache has caught up.
    pub fn freshest_rollout(&self, cached: Arc<Rollout>) -> Arc<Rollout> {
        let key = (cached.namespace().unwrap_or_default(), cached.name_any());
        let Ok(mut kept) = self.rollouts.lock() else {
            return cached;
        };
        let Some((at, stored)) = kept.get(&key) else {
            return cached;
        };
        let newer = match (version(&cached.metadata), version(&stored.metadata)) {
            (Some(c), Some(s)) => s > c && at.elapsed() < ROLLOUT_KEPT,
            _ => false,
        };
        if newer {
            stored.clone()
        } else {
            kept.remove(&key);
            cached
        }
    }
}

fn key_of<K: Resource>(kind: Kind, object: &K) -> Key {
    (
        kind,
        object.namespace().unwrap_or_default(),
        object.name_any(),
    )
}

/// The cached object once it is at least at `version`, waiting up to [`CATCH_UP`]; `None` when
/// the cache did not get there (or the object is not in it).
async fn caught_up<K>(store: &Store<K>, reference: &ObjectRef<K>, version_wanted: u64) -> Option<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let start = Instant::now();
    loop {
        if let Some(object) = store.get(reference) {
            if version(object.meta()).is_some_and(|v| v >= version_wanted) {
                return Some((*object).clone());
            }
        }
        if start.elapsed() >= CATCH_UP {
            return None;
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

impl From<CacheError> for super::observe::ObserveError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Kube(e) => super::observe::ObserveError::Kube(e),
            // Transient: the reconcile backs off and tries again.
            not_synced @ CacheError::NotSynced(_) => {
                super::observe::ObserveError::Deadline(not_synced.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;

    fn owned() -> Owned {
        let (deployments, _) = reflector::store();
        let (services, _) = reflector::store();
        Owned::new(deployments, services)
    }

    fn deployment(replicas: i32, generation: i64, version: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-stable", "namespace": "shop",
                "labels": {"app.kubernetes.io/managed-by": "tollgate"},
                "generation": generation, "resourceVersion": version},
            "spec": {"replicas": replicas, "selector": {}, "template": {}}
        }))
        .unwrap()
    }

    fn desired(replicas: i32) -> Deployment {
        let mut d = deployment(replicas, 0, "");
        d.metadata.generation = None;
        d.metadata.resource_version = None;
        d
    }

    #[test]
    fn a_child_never_applied_by_this_process_is_applied() {
        let owned = owned();
        assert!(!owned.deployment_unchanged(&desired(2), Some(&deployment(2, 4, "100"))));
        assert!(!owned.deployment_unchanged(&desired(2), None));
    }

    #[test]
    fn the_same_child_left_as_applied_is_skipped() {
        let owned = owned();
        owned.record_deployment(&desired(2), &deployment(2, 4, "100"));
        // A later status update (new resourceVersion, same generation) is still at rest.
        assert!(owned.deployment_unchanged(&desired(2), Some(&deployment(2, 4, "130"))));
    }

    #[test]
    fn a_new_desired_child_or_someone_elses_edit_applies_again() {
        let owned = owned();
        owned.record_deployment(&desired(2), &deployment(2, 4, "100"));
        assert!(
            !owned.deployment_unchanged(&desired(3), Some(&deployment(2, 4, "100"))),
            "the plan asks for something else"
        );
        assert!(
            !owned.deployment_unchanged(&desired(2), Some(&deployment(5, 5, "140"))),
            "someone scaled it (a new generation)"
        );
        let mut unlabelled = deployment(2, 4, "150");
        unlabelled.metadata.labels = None;
        assert!(
            !owned.deployment_unchanged(&desired(2), Some(&unlabelled)),
            "someone removed a label tollgate sets"
        );
        assert!(
            !owned.deployment_unchanged(&desired(2), None),
            "someone deleted it"
        );
    }

    #[test]
    fn a_forgotten_or_incomparable_write_applies_again() {
        let owned = owned();
        owned.record_deployment(&desired(2), &deployment(2, 4, "100"));
        owned.forget_deployment("shop", "demo-stable");
        assert!(!owned.deployment_unchanged(&desired(2), Some(&deployment(2, 4, "100"))));
        owned.record_deployment(&desired(2), &deployment(2, 4, "not-a-number"));
        assert!(!owned.deployment_unchanged(&desired(2), Some(&deployment(2, 4, "100"))));
    }

    fn rollout(version: &str, phase: &str) -> Arc<Rollout> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "tollgate.dev/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "demo", "namespace": "shop", "resourceVersion": version},
                "spec": {"version": "1.0.0", "template": {}},
                "status": {"phase": phase}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_pass_runs_on_the_newer_of_the_cache_and_the_last_status_write() {
        let owned = owned();
        let cached = rollout("10", "Analyzing");
        assert!(Arc::ptr_eq(
            &owned.freshest_rollout(cached.clone()),
            &cached
        ));
        owned.record_rollout(&rollout("12", "Succeeded"));
        let fresh = owned.freshest_rollout(cached);
        assert_eq!(fresh.metadata.resource_version.as_deref(), Some("12"));
        // The cache caught up (or went past): its copy, and the kept one is gone.
        let caught_up = rollout("13", "Succeeded");
        assert!(Arc::ptr_eq(
            &owned.freshest_rollout(caught_up.clone()),
            &caught_up
        ));
        let older = rollout("11", "Analyzing");
        assert!(Arc::ptr_eq(&owned.freshest_rollout(older.clone()), &older));
    }

    #[tokio::test]
    async fn a_cache_that_never_syncs_fails_the_read_transiently() {
        let owned = owned();
        let read = owned.synced();
        let err = read
            .await
            .expect_err("the writers were dropped: never synced");
        assert!(matches!(err, CacheError::NotSynced(_)));
        assert!(super::super::observe::ObserveError::from(err).is_transient());
    }
}
