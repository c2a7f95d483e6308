//! `tollgate controller`: run the operator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use super::kube_args::KubeArgs;
use crate::runtime::controller::{self, ControllerConfig};
use crate::runtime::leader::LeaderConfig;
use crate::runtime::notify::{NotifierConfig, WebhookFormat, WebhookUrl, DEFAULT_DESTINATION};
use crate::runtime::peers::PeerDefaults;
use crate::runtime::telemetry::{self, LogFormat};
use crate::util::duration::{self, Duration};
use crate::util::hosts::{self, HostPattern};
use crate::util::secret::Secret;

/// Flags of `tollgate controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Watch only this namespace (default: every namespace).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where the admin server (/metrics, /livez, /readyz) listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    /// Rollouts reconciled at once. A reconcile mostly waits (on the API server, the pods, the
    /// broker, Prometheus; each bounded by the peer deadline), so workers are cheap and many:
    /// with 8, a burst of spec changes queued behind slow passes (issue 20's scale bench: p99
    /// 11.2 s from a spec change to its first status write at 300 Rollouts).
    #[arg(long, default_value_t = 32)]
    pub concurrency: u16,
    /// Take part in leader election (run several replicas; one writes).
    #[arg(long)]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "tollgate")]
    pub lease_name: String,
    /// Namespace of the leader Lease (default: the watched namespace, or `default`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// How long the lease is valid without renewal (e.g. 15s).
    #[arg(long, default_value = "15s", value_parser = duration::positive)]
    pub lease_duration: Duration,
    /// How long before expiry the holder renews (less than --lease-duration).
    #[arg(long, default_value = "5s")]
    pub lease_renew_grace: Duration,
    /// This replica's identity for leader election and Events (default: $POD_NAME, else the
    /// host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Pact Broker base URL for Rollouts whose contractGate names none.
    #[arg(long, env = "TOLLGATE_BROKER_URL")]
    pub broker_url: Option<String>,
    /// Prometheus base URL for Rollouts whose analysis names none.
    #[arg(long, env = "TOLLGATE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Hosts a Rollout's own `spec.contractGate.brokerUrl` may be on, besides --broker-url's:
    /// `host`, `host:port`, `*.domain` or `*.domain:port`, comma-separated. Empty: only
    /// --broker-url's host and port. Link-local and metadata addresses are refused whatever the
    /// list says.
    #[arg(long, value_delimiter = ',', value_name = "PATTERN")]
    pub allowed_broker_hosts: Vec<HostPattern>,
    /// Hosts a Rollout's own `spec.analysis.provider.prometheus.address` may be on, besides
    /// --prometheus-url's (patterns as for --allowed-broker-hosts).
    #[arg(long, value_delimiter = ',', value_name = "PATTERN")]
    pub allowed_prometheus_hosts: Vec<HostPattern>,
    /// Hosts --webhook-url may be on (patterns as for --allowed-broker-hosts). Empty: any but
    /// link-local and metadata addresses.
    #[arg(long, value_delimiter = ',', value_name = "PATTERN")]
    pub allowed_webhook_hosts: Vec<HostPattern>,
    /// Memory, in MiB, that the Prometheus answers being read at any one time may take
    /// together (bodies and what their parse keeps). A read that finds it taken is a look
    /// without data, never evidence. A few hostile Prometheus servers then cost the operator at
    /// most this much.
    #[arg(long, default_value_t = DEFAULT_PROMETHEUS_BUDGET_MIB, value_name = "MIB",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub prometheus_budget_mib: u32,

    /// Webhook POSTed when a rollout is promoted, rolled back or blocked (http or https; unset:
    /// no notifications). A Slack webhook URL is a credential: prefer the environment variable.
    #[arg(
        long,
        env = "TOLLGATE_WEBHOOK_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub webhook_url: Option<Secret>,
    /// Body of the notifications: generic JSON, a Slack incoming-webhook message or a Teams
    /// workflow message (PagerDuty needs a routing key: use --notification-destinations).
    #[arg(long, value_enum, default_value_t = WebhookFormat::Json)]
    pub webhook_format: WebhookFormat,
    /// Timeout of one webhook request (e.g. 5s).
    #[arg(long, default_value = "5s", value_parser = duration::positive)]
    pub webhook_timeout: Duration,
    /// Requests per notification, the first included; waits of about 1s, 2s, 4s, ... between them.
    #[arg(long, default_value_t = crate::runtime::notify::DEFAULT_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub webhook_attempts: u32,
    /// A YAML file of named notification destinations (see docs/notifications.md); a Rollout
    /// picks them with the annotation `notifications.tollgate.dev/destinations`. With
    /// --webhook-url as well, that one is the destination named `default`.
    #[arg(long, env = "TOLLGATE_NOTIFICATION_DESTINATIONS", value_name = "FILE")]
    pub notification_destinations: Option<std::path::PathBuf>,
}

/// Default of `--prometheus-budget-mib` (see `ResponseBudget::DEFAULT_BYTES` for why).
pub const DEFAULT_PROMETHEUS_BUDGET_MIB: u32 =
    (crate::analysis::providers::prometheus::ResponseBudget::DEFAULT_BYTES >> 20) as u32;

/// An http(s) URL on a host the operator may be sent to, or why it is not one.
fn check_url(flag: &str, value: &Option<String>) -> Result<(), String> {
    match value {
        Some(v) if !(v.starts_with("http://") || v.starts_with("https://")) => Err(format!(
            "{flag} must be an http:// or https:// URL, got {v:?}"
        )),
        Some(v) => {
            let url = reqwest::Url::parse(v).map_err(|_| format!("{flag}: {v:?} is not a URL"))?;
            match url.host_str().and_then(hosts::refused_host) {
                Some(why) => Err(format!("{flag}: {v:?} is {why}, never allowed")),
                None => Ok(()),
            }
        }
        None => Ok(()),
    }
}

/// Why the webhook URL is not allowed by `--allowed-webhook-hosts`, if it is not. The message
/// never repeats the URL (it is a credential); the host is named.
fn check_webhook_host(url: &str, allowed: &[HostPattern]) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "--webhook-url is not a URL".to_string())?;
    let host = parsed.host_str().unwrap_or_default();
    if let Some(why) = hosts::refused_host(host) {
        return Err(format!("--webhook-url: {host} is {why}, never allowed"));
    }
    if allowed.is_empty() {
        return Ok(());
    }
    hosts::check_url(url, allowed, &[])
        .map_err(|_| format!("--webhook-url: {host} is not covered by --allowed-webhook-hosts"))
}

/// The notification destinations from the flags: None without any, an error message (that
/// never repeats a URL) for a bad one. `--webhook-url` is the destination named `default`
/// (notified for every Rollout that names none); the file adds the named ones.
pub fn notifications(
    args: &ControllerArgs,
) -> Result<Option<BTreeMap<String, NotifierConfig>>, String> {
    let mut destinations = BTreeMap::new();
    if let Some(path) = &args.notification_destinations {
        let allowed = &args.allowed_webhook_hosts;
        let check = |url: &WebhookUrl| {
            check_webhook_host(url.as_url().as_str(), allowed)
                .map_err(|e| e.replace("--webhook-url: ", ""))
        };
        let env = |var: &str| std::env::var(var).ok();
        destinations = crate::runtime::notify::destinations::load(path, &check, &env)
            .map_err(|e| format!("--notification-destinations: {e}"))?;
    }
    if let Some(url) = &args.webhook_url {
        let url = WebhookUrl::parse(url.expose())
            .map_err(|e| format!("--webhook-url (or TOLLGATE_WEBHOOK_URL): {e}"))?;
        check_webhook_host(url.as_url().as_str(), &args.allowed_webhook_hosts)?;
        if args.webhook_format == WebhookFormat::Pagerduty {
            return Err("--webhook-format pagerduty needs a routing key: configure PagerDuty in --notification-destinations (routingKeyFile)".into());
        }
        let mut config = NotifierConfig::new(url);
        config.format = args.webhook_format;
        config.timeout = args.webhook_timeout.as_std();
        config.retry.max_attempts = args.webhook_attempts.max(1);
        if destinations
            .insert(DEFAULT_DESTINATION.to_string(), config)
            .is_some()
        {
            return Err(format!(
                "--notification-destinations names a destination {DEFAULT_DESTINATION:?}, which --webhook-url is: rename one"
            ));
        }
    }
    Ok((!destinations.is_empty()).then_some(destinations))
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}

/// Run the operator until SIGTERM/SIGINT. Exit 0 on a clean stop, 3 when it cannot start.
pub fn run(args: ControllerArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let lease_duration = args.lease_duration.as_std();
    let renew_grace = args.lease_renew_grace.as_std();
    if args.leader_elect && renew_grace >= lease_duration {
        eprintln!("error: --lease-renew-grace must be shorter than --lease-duration");
        return ExitCode::from(3);
    }
    for (flag, value) in [
        ("--broker-url", &args.broker_url),
        ("--prometheus-url", &args.prometheus_url),
    ] {
        if let Err(e) = check_url(flag, value) {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    }
    crate::analysis::providers::prometheus::ResponseBudget::set_process(
        args.prometheus_budget_mib as usize * 1024 * 1024,
    );
    let notifications = match notifications(&args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let runtime = match super::kube_args::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    runtime.block_on(async move {
        let client = match args.kube.client().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(3);
            }
        };
        let identity = args.identity.clone().unwrap_or_else(default_identity);
        let config = ControllerConfig {
            namespace: args.namespace.clone(),
            leader: args.leader_elect.then(|| LeaderConfig {
                lease_name: args.lease_name.clone(),
                namespace: args
                    .lease_namespace
                    .clone()
                    .or_else(|| args.namespace.clone())
                    .unwrap_or_else(|| "default".into()),
                identity: identity.clone(),
                lease_duration,
                renew_grace,
            }),
            admin_addr: args.admin_addr,
            instance: identity,
            concurrency: args.concurrency.max(1),
            defaults: PeerDefaults {
                broker_url: args.broker_url.clone(),
                prometheus_url: args.prometheus_url.clone(),
                allowed_broker_hosts: args.allowed_broker_hosts.clone(),
                allowed_prometheus_hosts: args.allowed_prometheus_hosts.clone(),
            },
            notifications,
        };
        let (contract, analysis) =
            crate::runtime::controller::production_peers(client.clone(), config.defaults.clone());
        match controller::run(client, config, contract, analysis).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(3)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{check_url, check_webhook_host};
    use crate::util::hosts::parse_list;

    #[test]
    fn metadata_addresses_are_refused_as_defaults_and_webhooks() {
        let e = check_url("--broker-url", &Some("http://169.254.169.254/".into())).unwrap_err();
        assert!(e.contains("never allowed"), "{e}");
        assert!(check_url(
            "--prometheus-url",
            &Some("http://metadata.google.internal".into())
        )
        .is_err());
        let hook = "https://hooks.slack.com/services/T0/B0/secret-part";
        assert!(check_webhook_host(hook, &[]).is_ok());
        assert!(check_webhook_host(hook, &parse_list("hooks.slack.com").unwrap()).is_ok());
        let e = check_webhook_host(hook, &parse_list("*.internal").unwrap()).unwrap_err();
        assert!(
            e.contains("hooks.slack.com") && !e.contains("secret-part"),
            "{e}"
        );
        assert!(check_webhook_host("http://169.254.169.254/x", &[]).is_err());
    }

    #[test]
    fn default_addresses_must_be_http_urls() {
        assert!(check_url("--broker-url", &None).is_ok());
        assert!(check_url("--broker-url", &Some("http://broker:9292".into())).is_ok());
        let e = check_url("--prometheus-url", &Some("prometheus:9090".into())).unwrap_err();
        assert!(e.contains("--prometheus-url") && e.contains("http"), "{e}");
        assert!(check_url("--broker-url", &Some("http://".into())).is_err());
    }
}
