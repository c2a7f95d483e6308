//! Named destinations and which of them a Rollout is notified at.
//!
//! The operator is configured with destinations (`--notification-destinations FILE`, a YAML
//! file the Helm chart renders; `--webhook-url` adds one named `default`). A Rollout picks its
//! own with the annotation `notifications.tollgate.dev/destinations: team-a-slack,oncall`, so
//! one team's channel gets only its Rollouts; a Rollout without the annotation goes to the
//! destinations marked `default: true`. Fail closed: a name the operator does not know, or a
//! destination that does not admit the Rollout's namespace (`namespaces:`), is skipped with a
//! warning, never replaced by another destination.
//!
//! A URL is a credential (a Slack or Teams webhook URL is the secret itself), so the file names
//! where to read it (`urlFile`, a mounted Secret; `urlEnv`) rather than holding it, and no error
//! repeats it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde::Deserialize;
use tracing::warn;

use super::delivery::{Notifier, NotifierConfig, WebhookUrl};
use super::payload::{NotificationEvent, WebhookFormat};
use super::template::Templates;
use crate::crd::Rollout;

/// The annotation a Rollout names its destinations with (comma-separated).
pub const DESTINATIONS_ANNOTATION: &str = "notifications.tollgate.dev/destinations";

/// The events a destination gets unless its `events` says otherwise: the outcomes.
pub const OUTCOME_EVENTS: [NotificationEvent; 3] = [
    NotificationEvent::Promoted,
    NotificationEvent::RolledBack,
    NotificationEvent::Blocked,
];

/// The destinations file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    destinations: Vec<Spec>,
}

/// One destination as written in the file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    name: String,
    #[serde(default)]
    format: Option<String>,
    /// A file holding the URL (a mounted Secret key).
    #[serde(default)]
    url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    #[serde(default)]
    url_env: Option<String>,
    /// The URL itself (for URLs that are not secret).
    #[serde(default)]
    url: Option<String>,
    /// Notified for Rollouts without the annotation.
    #[serde(default)]
    default: bool,
    /// Events sent (default: the outcomes).
    #[serde(default)]
    events: Option<Vec<String>>,
    /// Namespaces whose Rollouts may use it (empty: every namespace).
    #[serde(default)]
    namespaces: Vec<String>,
    /// Timeout of one request, e.g. `5s`.
    #[serde(default)]
    timeout: Option<String>,
    /// Requests per delivery round, the first included.
    #[serde(default)]
    attempts: Option<u32>,
    /// PagerDuty's routing key: a file holding it, an environment variable, or the key.
    #[serde(default)]
    routing_key_file: Option<PathBuf>,
    #[serde(default)]
    routing_key_env: Option<String>,
    #[serde(default)]
    routing_key: Option<String>,
    /// minijinja templates of the title and the text.
    #[serde(default)]
    templates: Option<TemplateSpec>,
}

/// A destination's templates as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TemplateSpec {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// Check a destination name: a DNS label (what the annotation lists).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "destination name {name:?} must be lowercase letters, digits and '-' (at most 63)"
        ))
    }
}

/// Parse an event name as payloads and metric labels spell it.
pub fn parse_event(name: &str) -> Result<NotificationEvent, String> {
    NotificationEvent::ALL
        .iter()
        .copied()
        .find(|e| e.as_str() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = NotificationEvent::ALL.iter().map(|e| e.as_str()).collect();
            format!("unknown event {name:?} (known: {})", known.join(", "))
        })
}

/// Read the destinations file. `check_host` vets each URL's host (the operator's
/// `--allowed-webhook-hosts`); `env` reads environment variables (a test passes its own).
pub fn load(
    path: &Path,
    check_host: &dyn Fn(&WebhookUrl) -> Result<(), String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, NotifierConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(
        &text,
        path.parent().unwrap_or(Path::new(".")),
        check_host,
        env,
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse the destinations file's text (relative `urlFile`s are read from `base`).
pub fn parse(
    text: &str,
    base: &Path,
    check_host: &dyn Fn(&WebhookUrl) -> Result<(), String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, NotifierConfig>, String> {
    let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for spec in file.destinations {
        let name = spec.name.clone();
        check_name(&name)?;
        let config = destination(spec, base, check_host, env)
            .map_err(|e| format!("destination {name}: {e}"))?;
        if out.insert(name.clone(), config).is_some() {
            return Err(format!("destination {name} is listed twice"));
        }
    }
    Ok(out)
}

fn destination(
    spec: Spec,
    base: &Path,
    check_host: &dyn Fn(&WebhookUrl) -> Result<(), String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<NotifierConfig, String> {
    let text = match (&spec.url_file, &spec.url_env, &spec.url) {
        (Some(file), None, None) => {
            let file = base.join(file);
            std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read urlFile {}: {e}", file.display()))?
        }
        (None, Some(var), None) => env(var).ok_or_else(|| format!("urlEnv {var} is not set"))?,
        (None, None, Some(url)) => url.clone(),
        _ => return Err("give exactly one of urlFile, urlEnv, url".into()),
    };
    let url = WebhookUrl::parse(&text).map_err(|e| e.to_string())?;
    check_host(&url)?;
    let mut config = NotifierConfig::new(url);
    if let Some(format) = &spec.format {
        config.format = <WebhookFormat as clap::ValueEnum>::from_str(format, true)
            .map_err(|_| format!("unknown format {format:?} (json, slack, teams, pagerduty)"))?;
    }
    let routing_key = match (
        &spec.routing_key_file,
        &spec.routing_key_env,
        &spec.routing_key,
    ) {
        (None, None, None) => None,
        (Some(file), None, None) => {
            let file = base.join(file);
            Some(
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read routingKeyFile {}: {e}", file.display()))?
                    .trim()
                    .to_string(),
            )
        }
        (None, Some(var), None) => {
            Some(env(var).ok_or_else(|| format!("routingKeyEnv {var} is not set"))?)
        }
        (None, None, Some(key)) => Some(key.clone()),
        _ => return Err("give at most one of routingKeyFile, routingKeyEnv, routingKey".into()),
    };
    match (config.format, routing_key) {
        (WebhookFormat::Pagerduty, None) => {
            return Err(
                "format pagerduty needs a routing key (routingKeyFile, routingKeyEnv)".into(),
            )
        }
        (WebhookFormat::Pagerduty, Some(key)) if key.trim().is_empty() => {
            return Err("the PagerDuty routing key is empty".into())
        }
        (WebhookFormat::Pagerduty, Some(key)) => {
            config.routing_key = Some(crate::util::secret::Secret::new(key.trim()))
        }
        (_, Some(_)) => return Err("a routing key is only for format pagerduty".into()),
        (_, None) => {}
    }
    if let Some(t) = spec.templates {
        config.templates = Templates {
            title: t.title,
            text: t.text,
        };
        config.templates.check().map_err(|e| e.to_string())?;
    }
    config.default_destination = spec.default;
    if let Some(events) = &spec.events {
        config.events = events
            .iter()
            .map(|e| parse_event(e))
            .collect::<Result<_, _>>()?;
    }
    config.namespaces = spec.namespaces;
    if let Some(t) = &spec.timeout {
        config.timeout = crate::util::duration::positive(t)
            .map_err(|e| format!("timeout {t:?}: {e}"))?
            .as_std();
    }
    if let Some(a) = spec.attempts {
        if !(1..=10).contains(&a) {
            return Err(format!("attempts {a} is not within 1..=10"));
        }
        config.retry.max_attempts = a;
    }
    Ok(config)
}

impl NotifierConfig {
    /// Whether a Rollout in `namespace` may be notified here.
    pub fn admits(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)
    }
}

impl Notifier {
    /// The destinations `rollout` is told of `event` at: the ones its annotation names (or the
    /// `default: true` ones without it) that admit its namespace and take that event.
    pub fn destinations_for(
        &self,
        rollout: &Rollout,
        event: Option<NotificationEvent>,
    ) -> Vec<String> {
        let Some(event) = event else {
            return Vec::new();
        };
        let destinations = &self.inner().destinations;
        let namespace = rollout.namespace().unwrap_or_default();
        let wanted: Vec<String> = match rollout.annotations().get(DESTINATIONS_ANNOTATION) {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            None => destinations
                .iter()
                .filter(|(_, d)| d.default_destination)
                .map(|(n, _)| n.clone())
                .collect(),
        };
        let mut out = Vec::new();
        for name in wanted {
            match destinations.get(&name) {
                None => warn!(
                    rollout = %format!("{namespace}/{}", rollout.name_any()),
                    destination = %name,
                    "{DESTINATIONS_ANNOTATION} names a destination the operator is not configured with: skipped"
                ),
                Some(d) if !d.admits(&namespace) => warn!(
                    rollout = %format!("{namespace}/{}", rollout.name_any()),
                    destination = %name,
                    "destination {name} does not admit namespace {namespace}: skipped"
                ),
                Some(d) if d.events.contains(&event) && !out.contains(&name) => out.push(name),
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fixtures::*;
    use super::*;
    use crate::runtime::metrics::Metrics;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn any_host(_: &WebhookUrl) -> Result<(), String> {
        Ok(())
    }

    const FILE: &str = r#"
destinations:
  - name: team-a-slack
    format: slack
    urlEnv: TEAM_A
    namespaces: [shop]
  - name: oncall
    url: https://events.example.com/v2/enqueue
    events: [RolledBack]
  - name: everyone
    url: https://hooks.example.com/all
    default: true
    timeout: 2s
    attempts: 2
"#;

    fn notifier() -> Notifier {
        let env = |v: &str| {
            (v == "TEAM_A").then(|| "https://hooks.slack.com/services/SECRET".to_string())
        };
        let map = parse(FILE, Path::new("/"), &any_host, &env).unwrap();
        Notifier::with_destinations(map, Arc::new(Metrics::new())).unwrap()
    }

    #[test]
    fn the_file_gives_named_destinations_with_their_settings() {
        let env = |v: &str| {
            (v == "TEAM_A").then(|| "https://hooks.slack.com/services/SECRET".to_string())
        };
        let map = parse(FILE, Path::new("/"), &any_host, &env).unwrap();
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            vec!["everyone", "oncall", "team-a-slack"]
        );
        assert_eq!(map["team-a-slack"].format, WebhookFormat::Slack);
        assert_eq!(map["oncall"].events, vec![NotificationEvent::RolledBack]);
        assert_eq!(map["everyone"].events, OUTCOME_EVENTS.to_vec());
        assert!(map["everyone"].default_destination);
        assert_eq!(map["everyone"].timeout, std::time::Duration::from_secs(2));
        assert_eq!(map["everyone"].retry.max_attempts, 2);
        assert!(
            !format!("{map:?}").contains("SECRET"),
            "URLs are never shown"
        );
    }

    #[test]
    fn bad_files_are_refused_with_a_reason_and_without_the_url() {
        let bad = |text: &str| parse(text, Path::new("/"), &any_host, &no_env).unwrap_err();
        assert!(
            bad("destinations: [{name: Team, url: 'https://x.example/h'}]").contains("lowercase")
        );
        assert!(bad("destinations: [{name: a}]").contains("exactly one of"));
        assert!(bad("destinations: [{name: a, urlEnv: NOPE}]").contains("NOPE is not set"));
        let e = bad("destinations: [{name: a, url: 'ftp://x.example/SECRET'}]");
        assert!(
            e.contains("http:// or https://") && !e.contains("SECRET"),
            "{e}"
        );
        assert!(
            bad("destinations: [{name: a, url: 'https://x.example/h', events: [Deployed]}]")
                .contains("unknown event")
        );
        assert!(
            bad("destinations: [{name: a, url: 'https://x.example/h', format: xml}]")
                .contains("unknown format")
        );
        assert!(bad("destinations: [{name: a, url: 'https://x.example/h'}, {name: a, url: 'https://x.example/h'}]")
            .contains("twice"));
        assert!(
            bad("destinations: [{name: a, url: 'https://x.example/h', colour: red}]")
                .contains("colour")
        );
        let refuse = |_: &WebhookUrl| Err("host not allowed".to_string());
        assert!(parse(
            "destinations: [{name: a, url: 'https://x.example/h'}]",
            Path::new("/"),
            &refuse,
            &no_env
        )
        .unwrap_err()
        .contains("host not allowed"));
    }

    #[test]
    fn pagerduty_needs_a_routing_key_and_templates_must_compile() {
        let env = |v: &str| (v == "PD_KEY").then(|| "R0UTING\n".to_string());
        let parse_one = |text: &str| parse(text, Path::new("/"), &any_host, &env);
        let map = parse_one(
            "destinations: [{name: oncall, format: pagerduty, url: 'https://events.pagerduty.com/v2/enqueue', routingKeyEnv: PD_KEY, templates: {title: '{{ name }} {{ verb }}'}}]",
        )
        .unwrap();
        let oncall = &map["oncall"];
        assert_eq!(oncall.format, WebhookFormat::Pagerduty);
        assert_eq!(
            oncall.routing_key.as_ref().map(|k| k.expose()),
            Some("R0UTING")
        );
        assert!(
            !format!("{oncall:?}").contains("R0UTING"),
            "the key is never shown"
        );
        assert_eq!(
            oncall.templates.title.as_deref(),
            Some("{{ name }} {{ verb }}")
        );
        let e =
            parse_one("destinations: [{name: pd, format: pagerduty, url: 'https://e.example/x'}]")
                .unwrap_err();
        assert!(e.contains("needs a routing key"), "{e}");
        let e = parse_one(
            "destinations: [{name: s, format: slack, url: 'https://e.example/x', routingKey: k}]",
        )
        .unwrap_err();
        assert!(e.contains("only for format pagerduty"), "{e}");
        let e = parse_one("destinations: [{name: t, format: teams, url: 'https://e.example/x', templates: {text: '{% if %}'}}]")
            .unwrap_err();
        assert!(e.contains("template text"), "{e}");
        let teams = parse_one("destinations: [{name: t, format: teams, url: 'https://e.example/x', events: [StepStarted, Paused]}]")
            .unwrap();
        assert_eq!(
            teams["t"].events,
            [NotificationEvent::StepStarted, NotificationEvent::Paused]
        );
    }

    #[test]
    fn a_rollout_is_notified_at_the_destinations_its_annotation_names_and_no_other() {
        let n = notifier();
        let mut r = rollout(blocked());
        let rb = Some(NotificationEvent::RolledBack);
        let blocked_event = Some(NotificationEvent::Blocked);
        // No annotation: the default ones.
        assert_eq!(n.destinations_for(&r, rb), vec!["everyone"]);
        r.annotations_mut().insert(
            DESTINATIONS_ANNOTATION.into(),
            " team-a-slack , oncall,unknown".into(),
        );
        // shop is team-a-slack's namespace; oncall only takes rollbacks; unknown is skipped.
        assert_eq!(n.destinations_for(&r, rb), vec!["team-a-slack", "oncall"]);
        assert_eq!(n.destinations_for(&r, blocked_event), vec!["team-a-slack"]);
        assert_eq!(n.destinations_for(&r, None), Vec::<String>::new());
        // Another namespace may not use team A's channel.
        r.metadata.namespace = Some("elsewhere".into());
        assert_eq!(n.destinations_for(&r, rb), vec!["oncall"]);
        // Step events go only where a destination asked for them (none does here).
        assert_eq!(
            n.destinations_for(&r, Some(NotificationEvent::StepStarted)),
            Vec::<String>::new()
        );
        // Only unknown names: nothing at all (never a fallback to the defaults).
        r.annotations_mut()
            .insert(DESTINATIONS_ANNOTATION.into(), "nobody".into());
        assert_eq!(n.destinations_for(&r, rb), Vec::<String>::new());
    }
}
