//! Which hosts the operator may be sent to: allow-list patterns (`host`, `host:port`,
//! `*.domain`, `*.domain:port`, `[v6]:port`) and the addresses that are refused whatever a list
//! says (link-local and cloud metadata endpoints, where a forged request finds credentials).
//!
//! A Rollout names the URLs of its peers, and the operator sends credentials there; on a shared
//! cluster that makes the allow-lists the boundary between "may create a Rollout" and "may have
//! the operator's or another team's secrets delivered to an arbitrary server". The matching is
//! pure and table-tested here; where it is applied is `rollout::decide::peers` (the Rollout's
//! own addresses) and the controller's flags (the operator's defaults and webhook).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Host names of cloud metadata services that are not IP literals (compared without case and
/// without a trailing dot).
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata"];

/// The AWS metadata service's IPv6 address (`fd00:ec2::254`).
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

/// Why a host is refused whatever the allow-list says, if it is.
pub fn refused_host(host: &str) -> Option<&'static str> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return refused_ip(ip);
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    METADATA_NAMES
        .contains(&name.as_str())
        .then_some("a cloud metadata service")
}

/// Why an IP address is refused whatever the allow-list says, if it is: link-local
/// (169.254.0.0/16, fe80::/10, where the metadata services of AWS, GCP, Azure and others
/// listen), AWS's IPv6 metadata address, and the same behind an IPv4-mapped IPv6 address.
pub fn refused_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            if v6 == AWS_METADATA_V6 {
                Some("a cloud metadata service")
            } else if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else {
                None
            }
        }
    }
}

fn refused_v4(v4: Ipv4Addr) -> Option<&'static str> {
    v4.is_link_local()
        .then_some("a link-local address (cloud metadata services listen there)")
}

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostMatch {
    /// This host only (lower-cased; an IPv6 literal without brackets).
    Exact(String),
    /// Any host ending in `.suffix` (not `suffix` itself).
    Subdomains(String),
}

/// Why an allow-list entry is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a host pattern ({why}); expected host, host:port, *.domain or *.domain:port")]
pub struct PatternError {
    pattern: String,
    why: &'static str,
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, PatternError> {
        let fail = |why| PatternError {
            pattern: text.to_string(),
            why,
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(fail("empty"));
        }
        if text.contains("://") || text.contains('/') {
            return Err(fail("a URL, not a host"));
        }
        let (host, port) = split_host_port(text).ok_or_else(|| fail("bad port"))?;
        let host = host.to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
        };
        let host = match host.strip_prefix("*.") {
            Some(suffix) if valid(suffix) && !suffix.contains('*') => {
                HostMatch::Subdomains(suffix.trim_end_matches('.').to_string())
            }
            Some(_) => return Err(fail("bad domain after *.")),
            None if valid(&host) => HostMatch::Exact(host.trim_end_matches('.').to_string()),
            None => return Err(fail("not a host name or IP address")),
        };
        Ok(HostPattern { host, port })
    }
}

/// `host[:port]`, `[v6][:port]` or a bare IPv6 literal; `None` for a port that is not a u16.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host.to_string(), None)),
            p => Some((host.to_string(), Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Some((text.to_string(), None));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), Some(port.parse().ok()?))),
        None => Some((text.to_string(), None)),
    }
}

impl HostPattern {
    /// Whether `host` (as a URL gives it, IPv6 in brackets or not) and `port` match.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        match &self.host {
            HostMatch::Exact(h) => *h == host,
            HostMatch::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostMatch::Exact(h) if h.contains(':') => format!("[{h}]"),
            HostMatch::Exact(h) => h.clone(),
            HostMatch::Subdomains(s) => format!("*.{s}"),
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

/// Patterns from a comma-separated flag value (blank entries skipped).
pub fn parse_list(text: &str) -> Result<Vec<HostPattern>, PatternError> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Why `url` may not be sent to, if it may not: not a URL, a refused address, or a host and port
/// that neither the patterns nor the `defaults` (the operator's own URLs for this peer, always
/// allowed) cover. An empty list therefore allows the defaults only.
pub fn check_url(url: &str, patterns: &[HostPattern], defaults: &[&str]) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let port = parsed.port_or_known_default().unwrap_or(0);
    if let Some(why) = refused_host(host) {
        return Err(format!("{host} is {why}, never allowed"));
    }
    let default = defaults.iter().any(|d| {
        reqwest::Url::parse(d).is_ok_and(|d| {
            d.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
                && d.port_or_known_default() == Some(port)
        })
    });
    if default || patterns.iter().any(|p| p.matches(host, port)) {
        return Ok(());
    }
    Err(format!("{host}:{port} is not an allowed host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_hosts_and_ports() {
        let cases: &[(&str, &str, u16, bool)] = &[
            ("broker.pact", "broker.pact", 9292, true),
            ("broker.pact", "BROKER.pact.", 443, true),
            ("broker.pact", "evil-broker.pact", 9292, false),
            ("broker.pact:9292", "broker.pact", 9292, true),
            ("broker.pact:9292", "broker.pact", 9293, false),
            ("*.monitoring.svc", "prom.monitoring.svc", 9090, true),
            ("*.monitoring.svc", "a.b.monitoring.svc", 9090, true),
            ("*.monitoring.svc", "monitoring.svc", 9090, false),
            ("*.monitoring.svc", "evilmonitoring.svc", 9090, false),
            ("*.monitoring.svc:9090", "p.monitoring.svc", 80, false),
            ("127.0.0.1", "127.0.0.1", 1234, true),
            ("[::1]:9090", "[::1]", 9090, true),
            ("::1", "::1", 1, true),
            ("::1", "::2", 1, false),
        ];
        for (pattern, host, port, want) in cases {
            assert_eq!(
                p(pattern).matches(host, *port),
                *want,
                "{pattern} vs {host}:{port}"
            );
        }
        assert_eq!(p("[::1]:9090").to_string(), "[::1]:9090");
        assert_eq!(p("*.A.b:1").to_string(), "*.a.b:1");
    }

    #[test]
    fn bad_patterns_are_errors() {
        for bad in [
            "", "http://x", "x/y", "x:99999", "x:", "*.", "a*b", "[::1", "*.*.x",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_list("a, b:1,,").unwrap().len(), 2);
        let e = parse_list("ok,http://x").unwrap_err().to_string();
        assert!(e.contains("http://x") && e.contains("host:port"), "{e}");
    }

    #[test]
    fn metadata_and_link_local_are_refused_whatever_the_list() {
        for host in [
            "169.254.169.254",
            "169.254.0.1",
            "[fd00:ec2::254]",
            "fe80::1",
            "[::ffff:169.254.169.254]",
            "metadata.google.internal",
            "METADATA.google.internal.",
        ] {
            assert!(refused_host(host).is_some(), "{host}");
        }
        for host in [
            "127.0.0.1",
            "10.0.0.1",
            "[::1]",
            "prometheus",
            "metadata.example",
        ] {
            assert_eq!(refused_host(host), None, "{host}");
        }
        let all = [p("169.254.169.254"), p("metadata.google.internal")];
        let e = check_url("http://169.254.169.254/latest", &all, &[]).unwrap_err();
        assert!(e.contains("never allowed"), "{e}");
        let e = check_url(
            "http://metadata.google.internal/",
            &all,
            &["http://metadata.google.internal"],
        )
        .unwrap_err();
        assert!(e.contains("metadata"), "{e}");
    }

    #[test]
    fn an_empty_list_allows_only_the_defaults() {
        let d = ["http://broker.pact:9292"];
        assert!(check_url("http://broker.pact:9292/x", &[], &d).is_ok());
        let e = check_url("http://broker.pact:80/", &[], &d).unwrap_err();
        assert!(e.contains("broker.pact:80"), "{e}");
        assert!(check_url("http://attacker.example/", &[], &d).is_err());
        assert!(check_url("http://attacker.example/", &[], &[]).is_err());
        let list = [p("*.example")];
        assert!(check_url("https://attacker.example/", &list, &d).is_ok());
        assert!(check_url("not a url", &list, &d).is_err());
    }
}
