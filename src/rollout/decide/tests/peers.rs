//! The hosts and timeouts a Rollout may ask for.

use super::*;
use crate::util::hosts::parse_list;

#[test]
fn a_rollouts_own_addresses_must_be_allowed() {
    let s = spec(); // broker http://broker, Prometheus http://prom:9090
    let none = PeerHosts::default();
    let problem = peer_problem(&s, none, none).expect("nothing allowed");
    assert!(
        problem.message.starts_with("spec.contractGate.brokerUrl:")
            && problem.message.contains("broker:80 is not an allowed host")
            && problem.message.contains("allowedBrokerHosts"),
        "{}",
        problem.message
    );
    let broker = parse_list("broker").unwrap();
    let allow_broker = PeerHosts {
        default_url: None,
        allowed: &broker,
    };
    let problem = peer_problem(&s, allow_broker, none).expect("Prometheus not allowed");
    assert!(
        problem
            .message
            .starts_with("spec.analysis.provider.prometheus.address:")
            && problem.message.contains("allowedPrometheusHosts"),
        "{}",
        problem.message
    );
    // The operator's own default is allowed without a list; another port of it is not.
    let default = PeerHosts {
        default_url: Some("http://prom:9090"),
        allowed: &[],
    };
    assert_eq!(peer_problem(&s, allow_broker, default), None);
    let other_port = PeerHosts {
        default_url: Some("http://prom:9091"),
        allowed: &[],
    };
    assert!(peer_problem(&s, allow_broker, other_port).is_some());
    // A Rollout that names no address uses the defaults and is not checked here.
    let mut bare = s.clone();
    bare.contract_gate.as_mut().unwrap().broker_url = None;
    bare.analysis.as_mut().unwrap().provider.prometheus.address = None;
    assert_eq!(peer_problem(&bare, none, none), None);
}

#[test]
fn metadata_addresses_are_refused_whatever_the_list() {
    let everything = parse_list("169.254.169.254,metadata.google.internal,*.internal").unwrap();
    let hosts = PeerHosts {
        default_url: None,
        allowed: &everything,
    };
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fd00:ec2::254]/",
    ] {
        let mut s = spec();
        s.contract_gate.as_mut().unwrap().broker_url = Some(url.into());
        let problem = peer_problem(&s, hosts, hosts).expect(url);
        assert!(
            problem.message.contains("never allowed"),
            "{url}: {}",
            problem.message
        );
        let mut s = spec();
        s.contract_gate = None;
        s.analysis.as_mut().unwrap().provider.prometheus.address = Some(url.into());
        assert!(peer_problem(&s, hosts, hosts).is_some(), "{url}");
    }
}

#[test]
fn timeouts_have_upper_bounds_naming_the_field() {
    assert_eq!(timeout_problem(&spec()), None);
    let long: kube::core::Duration = "10000h".parse().unwrap();
    let mut s = spec();
    s.analysis.as_mut().unwrap().provider.prometheus.timeout = long;
    let m = timeout_problem(&s).unwrap().message;
    assert!(
        m.starts_with("spec.analysis.provider.prometheus.timeout must be at most 30s"),
        "{m}"
    );
    let mut s = spec();
    s.fleet_check_mut().timeout = "11s".parse().unwrap();
    let m = timeout_problem(&s).unwrap().message;
    assert!(
        m.starts_with("spec.fleetCheck.timeout must be at most 10s"),
        "{m}"
    );
    s.fleet_check_mut().timeout = "10s".parse().unwrap();
    assert_eq!(timeout_problem(&s), None, "the cap itself is allowed");
    s.fleet_check_mut().timeout = "-1s".parse().unwrap();
    assert!(timeout_problem(&s).is_some(), "negative");
    let mut s = spec();
    s.smoke = Some(
        serde_json::from_value(json!({"requests": [
            {"name": "ok", "path": "/", "timeout": "2s"},
            {"name": "slow", "path": "/", "timeout": "1h"}]}))
        .unwrap(),
    );
    let m = timeout_problem(&s).unwrap().message;
    assert!(m.starts_with("spec.smoke.requests[].timeout"), "{m}");
}
