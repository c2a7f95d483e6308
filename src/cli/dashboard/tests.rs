//! The dashboard's pure parts: routing, the Host and CSRF checks, escaping, the policies.

use super::*;
use crate::crd::{Phase, RolloutStatus};

fn rollout(ns: &str, name: &str, reason: &str) -> Rollout {
    let mut r: Rollout = serde_json::from_value(serde_json::json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"version": "2.0.0", "selector": {"matchLabels": {"app": "demo"}},
                 "template": {"metadata": {"labels": {"app": "demo"}},
                              "spec": {"containers": [{"name": "app", "image": "x"}]}},
                 "steps": [{"setWeight": 20}, {"pause": {}}]}
    }))
    .expect("a Rollout");
    r.status = Some(RolloutStatus {
        phase: Phase::Analyzing,
        current_step_index: Some(0),
        current_weight: 20,
        stable_version: Some("1.0.0".into()),
        canary_version: Some("2.0.0<script>alert(1)</script>".into()),
        reason: Some(reason.into()),
        ..RolloutStatus::default()
    });
    r
}

#[test]
fn routes_are_the_four_pages_and_nothing_else() {
    assert_eq!(route(&Method::GET, "/"), Route::List);
    assert_eq!(route(&Method::GET, "/events"), Route::Events);
    assert_eq!(
        route(&Method::GET, "/rollouts/shop/checkout"),
        Route::Rollout("shop".into(), "checkout".into())
    );
    assert_eq!(
        route(&Method::POST, "/rollouts/shop/checkout/pause"),
        Route::Action("shop".into(), "checkout".into(), Control::Pause)
    );
    assert_eq!(
        route(&Method::GET, "/rollouts/shop/checkout/events"),
        Route::RolloutEvents("shop".into(), "checkout".into())
    );
    assert_eq!(
        route(&Method::POST, "/rollouts/shop/checkout/events"),
        Route::NotFound,
        "refused as a POST, which a read-only dashboard refuses first anyway"
    );
    assert_eq!(
        route(&Method::POST, "/rollouts/shop/checkout/resume"),
        Route::Action("shop".into(), "checkout".into(), Control::Resume)
    );
    // Unknown actions, names Kubernetes does not allow, other paths.
    assert_eq!(
        route(&Method::POST, "/rollouts/shop/checkout/delete"),
        Route::NotFound
    );
    assert_eq!(route(&Method::GET, "/rollouts/Shop/x"), Route::NotFound);
    assert_eq!(route(&Method::GET, "/rollouts/../etc"), Route::NotFound);
    assert_eq!(route(&Method::GET, "/rollouts/a/%3Cb%3E"), Route::NotFound);
    assert_eq!(route(&Method::GET, "/favicon.ico"), Route::NotFound);
    // The right path with the wrong method.
    assert_eq!(route(&Method::POST, "/"), Route::MethodNotAllowed);
    assert_eq!(
        route(&Method::GET, "/rollouts/shop/checkout/pause"),
        Route::MethodNotAllowed
    );
    assert_eq!(
        route(&Method::DELETE, "/rollouts/shop/checkout"),
        Route::MethodNotAllowed
    );
}

#[test]
fn only_this_dashboards_own_host_is_served() {
    assert!(host_allowed(Some("127.0.0.1:3100"), 3100));
    assert!(host_allowed(Some("localhost:3100"), 3100));
    assert!(host_allowed(Some("LOCALHOST:3100"), 3100));
    for refused in [
        None,
        Some("127.0.0.1"),
        Some("127.0.0.1:3101"),
        Some("evil.example:3100"),
        Some("localhost.evil.example:3100"),
        Some("127.0.0.1:3100.evil"),
        Some("[::1]:3100"),
    ] {
        assert!(!host_allowed(refused, 3100), "{refused:?}");
    }
}

#[test]
fn a_post_needs_exactly_our_token() {
    let ours = new_token().unwrap();
    assert_eq!(ours.len(), 64);
    assert_ne!(ours, new_token().unwrap(), "random per process");
    let body = format!("token={ours}&do=pause");
    assert!(token_matches(form_token(&body), &ours));
    assert!(token_matches(
        form_token(&format!("do=pause&token={ours}")),
        &ours
    ));
    assert!(!token_matches(form_token("do=pause"), &ours));
    assert!(!token_matches(form_token("token="), &ours));
    assert!(!token_matches(
        form_token(&format!("token={}", &ours[1..])),
        &ours
    ));
    let mut wrong = ours.clone().into_bytes();
    wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
    assert!(!token_matches(
        Some(std::str::from_utf8(&wrong).unwrap()),
        &ours
    ));
    assert!(!token_matches(None, &ours));
}

#[test]
fn the_list_escapes_every_outside_string_and_admits_only_its_own_script() {
    let page = list_page(
        &[rollout(
            "shop",
            "checkout",
            "pod said <img src=x onerror=alert(1)>",
        )],
        "namespace <shop>",
    );
    let lower = page.to_lowercase();
    assert!(!lower.contains("<img"), "{page}");
    assert!(page.contains("2.0.0&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("namespace &lt;shop&gt;"));
    assert_eq!(
        lower.matches("<script").count(),
        1,
        "only the dashboard's own script"
    );
    assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
    assert!(page.contains("<tr id=\"r-shop/checkout\">"));
    assert!(page.contains("<a href=\"/rollouts/shop/checkout\">checkout</a>"));
    for load in [
        " src=\"", "url(", "@import", "<link", "<iframe", "http://", "https://",
    ] {
        assert!(!lower.contains(load), "loads nothing: {load}");
    }
    let csp = list_csp();
    assert!(csp.starts_with("default-src 'none'; "));
    assert!(csp.contains(&format!("'sha256-{}'", html::csp_hash(SCRIPT))));
    assert!(csp.contains("connect-src 'self'"));
    assert!(
        !rollout_csp().contains(&html::csp_hash(SCRIPT)),
        "each page admits its own script only"
    );
}

#[test]
fn the_row_event_carries_raw_text_for_textcontent() {
    let event: serde_json::Value =
        serde_json::from_str(&row_event(&rollout("shop", "checkout", "why"))).unwrap();
    assert_eq!(event["id"], "r-shop/checkout");
    assert_eq!(event["href"], "/rollouts/shop/checkout");
    let cells = event["cells"].as_array().unwrap();
    assert_eq!(cells.len(), COLUMNS.len());
    assert_eq!(cells[2], "Analyzing");
    assert_eq!(cells[3], "1/2");
    assert_eq!(cells[4], "20%");
    assert_eq!(
        cells[6], "2.0.0<script>alert(1)</script>",
        "the script sets it as text"
    );
    assert_eq!(cells[7], "no");
    let gone: serde_json::Value =
        serde_json::from_str(&deleted_event(&("shop".into(), "checkout".into()))).unwrap();
    assert_eq!(gone["deleted"], true);
}

#[test]
fn the_rollout_page_has_the_step_program_and_buttons_only_with_actions() {
    let r = rollout("shop", "checkout", "pod said <b>no</b>");
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let read_only = rollout_page(&r, None, now, &fleet::LiveFleet::default()).unwrap();
    assert!(!read_only.contains("<form") && !read_only.contains("<button"));
    assert!(read_only.contains("<h2>Steps</h2>"));
    assert!(read_only.contains("<td>setWeight 20%</td><td>← current, started"));
    assert!(read_only.contains("<td>pause until resumed</td><td></td>"));
    assert!(read_only.contains("pod said &lt;b&gt;no&lt;/b&gt;"));
    // One script, the live one, admitted by its hash; the content sits in #live for it.
    assert_eq!(read_only.matches("<script").count(), 1);
    assert!(read_only.contains(&format!("<script>{ROLLOUT_SCRIPT}</script>")));
    assert!(rollout_csp().contains(&format!("'sha256-{}'", html::csp_hash(ROLLOUT_SCRIPT))));
    assert!(rollout_csp().contains("connect-src 'self'"));
    assert!(read_only.contains("<div id=\"live\"><h1>Rollout shop/checkout</h1>"));
    // What an SSE message carries is the same content, without the document around it.
    let content = rollout_content(&r, None, now, &fleet::LiveFleet::default()).unwrap();
    assert!(read_only.contains(&content));
    assert!(!content.contains("<script") && !content.contains("<html"));
    let token = "ab".repeat(32);
    let acting = rollout_page(&r, Some(&token), now, &fleet::LiveFleet::default()).unwrap();
    for (action, _) in ACTIONS {
        assert!(acting.contains(&format!(
            "<form method=\"post\" action=\"/rollouts/shop/checkout/{action}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">"
        )));
        assert!(acting.contains(&format!("id=\"do-{action}\"")));
    }
}
