//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//!
//! The elected replica runs the controller; the others wait. When the lease is lost the
//! controller task is cancelled at once (see `controller::run`), so a deposed leader stops
//! writing before its lease could be taken by another replica: the lease is renewed `grace`
//! seconds before it expires, and leadership is given up as soon as a renewal fails.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

/// Leader-election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Lease name.
    pub lease_name: String,
    /// Namespace of the lease.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_grace: Duration,
}

/// Whether this replica leads. With election disabled it always does.
pub struct Leadership {
    /// `true` while this replica holds the lease.
    pub is_leader: watch::Receiver<bool>,
    /// The task renewing the lease (None without election).
    pub task: Option<
        tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    >,
    /// Keeps the channel open when election is disabled.
    _always: Option<watch::Sender<bool>>,
}

impl Leadership {
    /// No election: this replica leads.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Leadership {
            is_leader: rx,
            task: None,
            _always: Some(tx),
        }
    }

    /// Take part in the election on `config`'s lease.
    pub async fn elect(client: Client, config: &LeaderConfig) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, &config.lease_name)
            .with_namespace(&config.namespace)
            .with_identity(&config.identity)
            .with_duration(config.lease_duration.as_secs().max(2))
            .with_grace(
                config
                    .renew_grace
                    .as_secs()
                    .clamp(1, config.lease_duration.as_secs().max(2) - 1),
            )
            .with_field_manager(format!("tollgate-leader-{}", config.identity))
            .build()
            .await?;
        let (rx, task) = manager.watch().await;
        Ok(Leadership {
            is_leader: rx,
            task: Some(task),
            _always: None,
        })
    }
}
