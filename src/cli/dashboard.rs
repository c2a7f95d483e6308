//! `tollgate dashboard [-n NS | -A] [--port P] [--allow-actions]` (also `kubectl tollgate
//! dashboard`): a local web server on 127.0.0.1 that shows Rollouts under the user's own
//! kubeconfig and RBAC, as `kubectl argo rollouts dashboard` does.
//!
//! - `/`: every Rollout in scope as a plain table (readable without JavaScript), kept live by a
//!   small inline script that applies Server-Sent Events from `/events`; the events are pushed
//!   from one watch on the API server, not polled.
//! - `/rollouts/NS/NAME`: one Rollout, live like the list (its content is pushed again from
//!   `/rollouts/NS/NAME/events` on each change the watch sees): the HTML report's page ([`super::html`]: summary with the
//!   contract gate's answer and reason, metrics, look-by-look plots, decisions) plus the step
//!   program with the current step and the fleet table: the operator's record from status and
//!   every pod (at most 200) asked live through the fleet gate's own code (`dashboard/fleet.rs`).
//! - With `--allow-actions`: promote, abort, retry, pause and resume buttons that POST to
//!   `/rollouts/NS/NAME/ACTION` and send exactly the CLI's patch
//!   ([`super::rollouts::apply_control`]) under the user's identity. Without the flag every POST
//!   is refused (403).
//!
//! Why the checks: a page on another site can make the browser POST to 127.0.0.1 (CSRF), and a
//! DNS name rebound to 127.0.0.1 can read answers (DNS rebinding). So every request whose Host
//! is not `127.0.0.1:PORT` or `localhost:PORT` is refused, and a POST must carry the
//! per-process random token that only the dashboard's own pages contain. Every string from the
//! cluster goes through [`text::for_html`] (or `textContent` in the script); each page has a
//! Content Security Policy admitting only its own hashed style and script, and loads nothing
//! from anywhere else.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Router;
use clap::Args;
use futures::StreamExt;
use jiff::Timestamp;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use tokio::sync::{broadcast, oneshot};

use super::html;
use super::report;
use super::rollouts::{
    apply_control, block_on, step_state, step_text, Control, Target, EXIT_ERROR, EXIT_OK,
};
use crate::crd::{Rollout, RolloutStatus};
use crate::runtime::peers::prometheus::judge_policy;
use crate::util::text;

/// `dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show Rollouts in every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Port on 127.0.0.1 (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 3100)]
    pub port: u16,
    /// Offer promote, abort, retry, pause and resume buttons (else read-only: POST is refused).
    #[arg(long)]
    pub allow_actions: bool,
}

/// The list page's script: applies each SSE message (a row's cells, or its deletion) to the
/// table; `textContent` only, so nothing from the cluster is parsed as HTML. `data-live` on the
/// body counts applied messages (what a test or a curious reader can look at).
const SCRIPT: &str = "(function(){var t=document.getElementById('rollouts');\
var es=new EventSource('/events');es.onmessage=function(e){var m=JSON.parse(e.data);\
var r=document.getElementById(m.id);if(m.deleted){if(r){r.remove();}}else{\
if(!r){r=t.insertRow(-1);r.id=m.id;for(var i=0;i<m.cells.length;i++){r.insertCell(-1);}}\
for(var j=0;j<m.cells.length;j++){var c=r.cells[j];if(j===1){c.textContent='';\
var a=document.createElement('a');a.href=m.href;a.textContent=m.cells[j];c.appendChild(a);}\
else if(c.textContent!==m.cells[j]){c.textContent=m.cells[j];}}}\
document.body.setAttribute('data-live',String(Number(document.body.getAttribute('data-live')||'0')+1));};})();";

/// A Rollout page's script: replaces the page's content (`#live`) with each SSE message, the
/// same content the server renders for the page itself (every outside string escaped there), so
/// the page needs no reload. Without JavaScript the page still reads; it is just not live.
/// `data-live` on the body counts applied messages, as on the list page.
const ROLLOUT_SCRIPT: &str = "(function(){var l=document.getElementById('live');\
var es=new EventSource(location.pathname+'/events');es.onmessage=function(e){\
l.innerHTML=e.data;\
document.body.setAttribute('data-live',String(Number(document.body.getAttribute('data-live')||'0')+1));};})();";

/// The list table's columns.
const COLUMNS: [&str; 13] = [
    "namespace",
    "name",
    "phase",
    "step",
    "weight",
    "stable",
    "canary",
    "paused",
    "contract",
    "fleet",
    "smoke",
    "analysis",
    "reason",
];

/// The actions, as they appear in URLs and on buttons.
const ACTIONS: [(&str, Control); 5] = [
    ("promote", Control::Promote),
    ("abort", Control::Abort),
    ("retry", Control::Retry),
    ("pause", Control::Pause),
    ("resume", Control::Resume),
];

/// What a request asks for (pure: method and path only).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    List,
    Events,
    Rollout(String, String),
    RolloutEvents(String, String),
    Action(String, String, Control),
    NotFound,
    MethodNotAllowed,
}

/// A namespace or Rollout name as Kubernetes allows it (DNS subdomain characters); anything
/// else is no Rollout, so no percent-decoding or escaping question arises in paths.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s != "."
        && s != ".."
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match parts.as_slice() {
        [""] if get => Route::List,
        ["events"] if get => Route::Events,
        ["rollouts", ns, name] if get && is_name(ns) && is_name(name) => {
            Route::Rollout(ns.to_string(), name.to_string())
        }
        ["rollouts", ns, name, "events"] if get && is_name(ns) && is_name(name) => {
            Route::RolloutEvents(ns.to_string(), name.to_string())
        }
        ["rollouts", ns, name, action] if post && is_name(ns) && is_name(name) => {
            match ACTIONS.iter().find(|(a, _)| a == action) {
                Some((_, control)) => Route::Action(ns.to_string(), name.to_string(), *control),
                None => Route::NotFound,
            }
        }
        // A path that exists, asked with another method.
        [""] | ["events"] => Route::MethodNotAllowed,
        ["rollouts", ns, name] | ["rollouts", ns, name, "events"]
            if is_name(ns) && is_name(name) =>
        {
            Route::MethodNotAllowed
        }
        ["rollouts", ns, name, action]
            if is_name(ns) && is_name(name) && ACTIONS.iter().any(|(a, _)| a == action) =>
        {
            Route::MethodNotAllowed
        }
        _ => Route::NotFound,
    }
}

/// Whether a request's Host header names this dashboard: `127.0.0.1:PORT` or `localhost:PORT`
/// exactly. A missing header, another name (a rebound DNS name) or another port is refused.
fn host_allowed(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    let host = host.to_ascii_lowercase();
    host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
}

/// The `token` field of an `application/x-www-form-urlencoded` body (the token is hex, so it
/// needs no decoding; a value that does is no token of ours).
fn form_token(body: &str) -> Option<&str> {
    body.split('&').find_map(|pair| pair.strip_prefix("token="))
}

/// Compare in time independent of where the strings differ.
fn token_matches(given: Option<&str>, ours: &str) -> bool {
    let Some(given) = given else { return false };
    given.len() == ours.len()
        && given
            .bytes()
            .zip(ours.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A fresh random token for this process (32 bytes from the system's CSPRNG, hex).
fn new_token() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "cannot draw a random CSRF token".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The list row of a Rollout: one raw string per [`COLUMNS`] entry. It borrows the status (a
/// status carries a look-by-look record of up to 240 looks: copying it per row would cost more
/// than the row).
fn cells(rollout: &Rollout) -> Vec<String> {
    let empty = RolloutStatus::default();
    let s = rollout.status.as_ref().unwrap_or(&empty);
    let dash = || "-".to_string();
    vec![
        rollout.namespace().unwrap_or_default(),
        rollout.name_any(),
        format!("{:?}", s.phase),
        s.current_step_index
            .map_or_else(dash, |i| format!("{}/{}", i + 1, rollout.spec.steps.len())),
        format!("{}%", s.current_weight),
        s.stable_version.clone().unwrap_or_else(dash),
        s.canary_version.clone().unwrap_or_else(dash),
        if rollout.spec.paused { "yes" } else { "no" }.into(),
        s.contract_gate
            .as_ref()
            .map_or_else(dash, |g| format!("{:?}", g.verdict)),
        s.fleet
            .as_ref()
            .map_or_else(dash, |f| format!("{:?}", f.verdict)),
        s.smoke
            .as_ref()
            .map_or_else(dash, |g| format!("{:?}", g.verdict)),
        s.analysis
            .as_ref()
            .map_or_else(dash, |a| format!("{:?}", a.verdict)),
        s.reason.clone().unwrap_or_default(),
    ]
}

type Key = (String, String);

/// A live fleet read: when, on what [`fleet::basis`], and what it found.
type CachedFleet = (Instant, String, Arc<fleet::LiveFleet>);

fn key(rollout: &Rollout) -> Key {
    (rollout.namespace().unwrap_or_default(), rollout.name_any())
}

fn row_id(key: &Key) -> String {
    format!("r-{}/{}", key.0, key.1)
}

fn href(key: &Key) -> String {
    format!("/rollouts/{}/{}", key.0, key.1)
}

/// The SSE message of a Rollout's row (JSON; the script sets it as text).
fn row_event(rollout: &Rollout) -> String {
    let k = key(rollout);
    serde_json::json!({"id": row_id(&k), "href": href(&k), "cells": cells(rollout)}).to_string()
}

fn deleted_event(key: &Key) -> String {
    serde_json::json!({"id": row_id(key), "deleted": true}).to_string()
}

/// The list page (pure): the table as it stands, the script that keeps it live.
fn list_page<'a>(rollouts: impl IntoIterator<Item = &'a Rollout>, scope: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tollgate: Rollouts</title><style>{}</style></head><body>\n\
         <h1>Rollouts</h1>\n<p class=\"note\">{}; live while this page is open.</p>\n\
         <table id=\"rollouts\"><tr>",
        html::CSS,
        text::for_html(scope)
    );
    for c in COLUMNS {
        out.push_str(&format!("<th>{c}</th>"));
    }
    out.push_str("</tr>\n");
    for rollout in rollouts {
        let k = key(rollout);
        out.push_str(&format!("<tr id=\"{}\">", text::for_html(&row_id(&k))));
        for (i, cell) in cells(rollout).iter().enumerate() {
            if i == 1 {
                out.push_str(&format!(
                    "<td><a href=\"{}\">{}</a></td>",
                    text::for_html(&href(&k)),
                    text::for_html(cell)
                ));
            } else {
                out.push_str(&format!("<td>{}</td>", text::for_html(cell)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str(&format!(
        "</table>\n<script>{SCRIPT}</script>\n</body></html>\n"
    ));
    out
}

/// The Content Security Policy of the list page: its own style and script, SSE from itself.
fn list_csp() -> String {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        html::csp_hash(html::CSS),
        html::csp_hash(SCRIPT)
    )
}

/// The Content Security Policy of a Rollout's page: its own style and script, SSE from itself,
/// forms to itself.
fn rollout_csp() -> String {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        html::csp_hash(html::CSS),
        html::csp_hash(ROLLOUT_SCRIPT)
    )
}

/// One Rollout's page (pure): [`rollout_content`] in `#live`, and the script that keeps it live.
fn rollout_page(
    rollout: &Rollout,
    token: Option<&str>,
    now: Timestamp,
    live_fleet: &fleet::LiveFleet,
) -> Result<String, String> {
    let content = rollout_content(rollout, token, now, live_fleet)?;
    Ok(html::document(
        &report::page(rollout).title,
        None,
        &format!("<div id=\"live\">{content}</div>\n"),
        &format!("<script>{ROLLOUT_SCRIPT}</script>\n"),
    ))
}

/// One Rollout's content (pure): the report's content with the dashboard's sections; what the
/// page shows first and what each of its SSE messages carries.
fn rollout_content(
    rollout: &Rollout,
    token: Option<&str>,
    now: Timestamp,
    live_fleet: &fleet::LiveFleet,
) -> Result<String, String> {
    let k = key(rollout);
    let mut top = String::from("<p><a href=\"/\">← all Rollouts</a></p>\n");
    if let Some(token) = token {
        top.push_str("<p>");
        for (action, _) in ACTIONS {
            top.push_str(&format!(
                "<form method=\"post\" action=\"{}/{action}\">\
                 <input type=\"hidden\" name=\"token\" value=\"{}\">\
                 <button type=\"submit\" name=\"do\" value=\"{action}\" id=\"do-{action}\">{action}</button></form> ",
                text::for_html(&href(&k)),
                text::for_html(token)
            ));
        }
        top.push_str("</p>\n");
    }
    let status = rollout.status.clone().unwrap_or_default();
    let steps: Vec<[String; 3]> = rollout
        .spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            [
                (i + 1).to_string(),
                step_text(step),
                step_state(i, &status, now),
            ]
        })
        .collect();
    let mut sections = String::from("<h2>Steps</h2>\n");
    sections.push_str(&html::table(["#", "step", "state"], &steps));
    sections.push_str(&fleet::section(status.fleet.as_ref(), live_fleet));
    let policy = rollout
        .spec
        .analysis
        .as_ref()
        .map(judge_policy)
        .unwrap_or_default();
    let series = status.analysis.as_ref().and_then(|a| a.series.as_ref());
    html::content(&report::page(rollout), series, &policy, &top, &sections)
}

/// The last live read of a Rollout's pods, if it is still fresh and was made in the same phase
/// at the same versions (a rollback must not show the canary's pods from before it).
fn cached_fleet(shared: &Shared, rollout: &Rollout) -> Option<Arc<fleet::LiveFleet>> {
    let basis = fleet::basis(rollout);
    shared
        .fleets
        .lock()
        .ok()
        .and_then(|m| m.get(&key(rollout)).cloned())
        .filter(|(at, b, _)| at.elapsed() < fleet::FRESH_FOR && *b == basis)
        .map(|(_, _, live)| live)
}

/// A Rollout's pods as [`fleet::read`] finds them, or the fresh read of [`cached_fleet`]. The
/// map's lock is not held while the pods are asked (a slow pod must not stall other pages).
async fn live_fleet(shared: &Shared, rollout: &Rollout) -> Arc<fleet::LiveFleet> {
    if let Some(live) = cached_fleet(shared, rollout) {
        return live;
    }
    let live = Arc::new(fleet::read(&shared.client, rollout).await);
    if let Ok(mut m) = shared.fleets.lock() {
        m.insert(
            key(rollout),
            (Instant::now(), fleet::basis(rollout), live.clone()),
        );
    }
    live
}

/// What the handlers share.
struct Shared {
    rollouts: RwLock<BTreeMap<Key, Rollout>>,
    events: broadcast::Sender<String>,
    /// The key of each Rollout the watch saw change (a Rollout's page re-renders on its own).
    changes: broadcast::Sender<Key>,
    client: kube::Client,
    token: String,
    /// The last live read of each Rollout's pods ([`fleet::FRESH_FOR`]).
    fleets: Mutex<HashMap<Key, CachedFleet>>,
    port: u16,
    allow_actions: bool,
    scope: String,
}

fn respond(status: StatusCode, csp: Option<String>, content_type: &str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let csp = csp.unwrap_or_else(|| "default-src 'none'; frame-ancestors 'none'".into());
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn plain(status: StatusCode, message: &str) -> Response {
    respond(
        status,
        None,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host_allowed(host, shared.port) {
        return plain(
            StatusCode::FORBIDDEN,
            "refused: the Host header must be 127.0.0.1:PORT or localhost:PORT",
        );
    }
    if request.method() == Method::POST && !shared.allow_actions {
        return plain(
            StatusCode::FORBIDDEN,
            "refused: the dashboard is read-only (start it with --allow-actions)",
        );
    }
    match route(request.method(), request.uri().path()) {
        Route::List => {
            // Rendered under the read lock from the watch's own copy: no request to the API
            // server and no copy of any Rollout per page.
            let page = match shared.rollouts.read() {
                Ok(map) => list_page(map.values(), &shared.scope),
                Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned"),
            };
            respond(
                StatusCode::OK,
                Some(list_csp()),
                "text/html; charset=utf-8",
                page,
            )
        }
        Route::Events => events(&shared).into_response(),
        Route::RolloutEvents(ns, name) => {
            let k = (ns, name);
            let known = shared.rollouts.read().is_ok_and(|m| m.contains_key(&k));
            if !known {
                return plain(
                    StatusCode::NOT_FOUND,
                    "no such Rollout in this dashboard's scope",
                );
            }
            rollout_events(shared.clone(), k).into_response()
        }
        Route::Rollout(ns, name) => {
            let rollout = shared
                .rollouts
                .read()
                .ok()
                .and_then(|m| m.get(&(ns, name)).cloned());
            let Some(rollout) = rollout else {
                return plain(
                    StatusCode::NOT_FOUND,
                    "no such Rollout in this dashboard's scope",
                );
            };
            let token = shared.allow_actions.then_some(shared.token.as_str());
            // The page is not held up by the pods (one that does not answer takes the fleet
            // check's timeout): without a fresh read it says so, and the page's event stream,
            // whose first message asks the pods, brings the table.
            let live = cached_fleet(&shared, &rollout)
                .unwrap_or_else(|| Arc::new(fleet::LiveFleet::asking()));
            match rollout_page(&rollout, token, Timestamp::now(), &live) {
                Ok(page) => respond(
                    StatusCode::OK,
                    Some(rollout_csp()),
                    "text/html; charset=utf-8",
                    page,
                ),
                Err(e) => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot render the page: {e}"),
                ),
            }
        }
        Route::Action(ns, name, control) => {
            let body = match axum::body::to_bytes(request.into_body(), 4096).await {
                Ok(b) => b,
                Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large"),
            };
            let body = String::from_utf8_lossy(&body);
            if !token_matches(form_token(&body), &shared.token) {
                return plain(
                    StatusCode::FORBIDDEN,
                    "refused: missing or wrong CSRF token (use the dashboard's own buttons)",
                );
            }
            let api: Api<Rollout> = Api::namespaced(shared.client.clone(), &ns);
            match apply_control(&api, &name, control).await {
                Ok(_) => {
                    let mut r = plain(StatusCode::SEE_OTHER, &format!("{control:?} requested"));
                    if let Ok(v) = HeaderValue::from_str(&href(&(ns, name))) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r
                }
                Err(e) => plain(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "cannot {control:?} rollout {ns}/{name}: {}",
                        text::for_terminal(&e.to_string())
                    ),
                ),
            }
        }
        Route::NotFound => plain(StatusCode::NOT_FOUND, "not found"),
        Route::MethodNotAllowed => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// `/events`: every row as it stands, then each change as the watch reports it. A subscriber
/// that falls behind is disconnected (the browser reconnects and gets every row again), so no
/// change is silently lost.
fn events(
    shared: &Shared,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let receiver = shared.events.subscribe();
    let snapshot: Vec<String> = shared
        .rollouts
        .read()
        .map(|m| m.values().map(row_event).collect())
        .unwrap_or_default();
    let first = futures::stream::iter(
        snapshot
            .into_iter()
            .map(|d| Ok::<_, Infallible>(Event::default().data(d))),
    );
    let rest = futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(d) => Some((Ok(Event::default().data(d)), receiver)),
            Err(_) => None,
        }
    });
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::default())
}

/// `/rollouts/NS/NAME/events`: the Rollout's content now, then again after each change the
/// watch reports for it. A subscriber that fell behind renders the state as it stands (nothing
/// is lost: each message is the whole content); a deleted Rollout gets a last message saying so.
fn rollout_events(
    shared: Arc<Shared>,
    k: Key,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    let receiver = shared.changes.subscribe();
    let stream = futures::stream::unfold(
        (shared, receiver, k, true),
        |(shared, mut receiver, k, first)| async move {
            if !first {
                loop {
                    match receiver.recv().await {
                        Ok(changed) if changed == k => break,
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
            let rollout = shared.rollouts.read().ok().and_then(|m| m.get(&k).cloned());
            let content = match rollout {
                None => "<h1>Gone</h1>\n<p>This Rollout was deleted. <a href=\"/\">All Rollouts</a></p>\n"
                    .to_string(),
                Some(rollout) => {
                    let token = shared.allow_actions.then_some(shared.token.as_str());
                    let live = live_fleet(&shared, &rollout).await;
                    rollout_content(&rollout, token, Timestamp::now(), &live).unwrap_or_else(|e| {
                        format!(
                            "<p>cannot render the page: {}</p>\n",
                            text::for_html(&e)
                        )
                    })
                }
            };
            Some((
                Ok(Event::default().data(content)),
                (shared, receiver, k, false),
            ))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Keep `shared.rollouts` in step with the API server and publish every change; `ready` is
/// answered after the first complete list (or the first error, so a dashboard without the right
/// to watch says so instead of showing an empty table).
async fn follow(
    api: Api<Rollout>,
    shared: Arc<Shared>,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let mut ready = Some(ready);
    let mut listing: BTreeMap<Key, Rollout> = BTreeMap::new();
    let mut changes = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(change) = changes.next().await {
        match change {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(r)) => {
                listing.insert(key(&r), r);
            }
            Ok(watcher::Event::InitDone) => {
                let fresh = std::mem::take(&mut listing);
                let old = match shared.rollouts.write() {
                    Ok(mut m) => std::mem::replace(&mut *m, fresh.clone()),
                    Err(_) => return,
                };
                for k in old.keys().filter(|k| !fresh.contains_key(*k)) {
                    let _ = shared.events.send(deleted_event(k));
                    let _ = shared.changes.send(k.clone());
                }
                for r in fresh.values() {
                    let _ = shared.events.send(row_event(r));
                    let _ = shared.changes.send(key(r));
                }
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Ok(watcher::Event::Apply(r)) => {
                let event = row_event(&r);
                let k = key(&r);
                if let Ok(mut m) = shared.rollouts.write() {
                    m.insert(k.clone(), r);
                }
                let _ = shared.events.send(event);
                let _ = shared.changes.send(k);
            }
            Ok(watcher::Event::Delete(r)) => {
                let k = key(&r);
                if let Ok(mut m) = shared.rollouts.write() {
                    m.remove(&k);
                }
                let _ = shared.events.send(deleted_event(&k));
                let _ = shared.changes.send(k);
            }
            Err(e) => match ready.take() {
                Some(tx) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                None => eprintln!(
                    "warning: the watch of Rollouts was interrupted (resuming): {}",
                    text::for_terminal(&e.to_string())
                ),
            },
        }
    }
}

/// `dashboard`.
pub fn run(args: DashboardArgs) -> ExitCode {
    block_on(async move {
        let client = match args.target.kube.client().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {}", text::for_terminal(&e.to_string()));
                return EXIT_ERROR;
            }
        };
        let (api, scope) = if args.all_namespaces {
            (
                Api::<Rollout>::all(client.clone()),
                "all namespaces".to_string(),
            )
        } else {
            let ns = args
                .target
                .namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_string());
            (
                Api::<Rollout>::namespaced(client.clone(), &ns),
                format!("namespace {ns}"),
            )
        };
        let token = match new_token() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        let listener =
            match tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on 127.0.0.1:{}: {e}", args.port);
                    return EXIT_ERROR;
                }
            };
        let port = match listener.local_addr() {
            Ok(a) => a.port(),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        let (events, _) = broadcast::channel(1024);
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            rollouts: RwLock::new(BTreeMap::new()),
            events,
            changes,
            client,
            token,
            fleets: Mutex::new(HashMap::new()),
            port,
            allow_actions: args.allow_actions,
            scope,
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(follow(api, shared.clone(), ready_tx));
        match tokio::time::timeout(Duration::from_secs(30), ready_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                eprintln!("error: cannot watch Rollouts: {}", text::for_terminal(&e));
                return EXIT_ERROR;
            }
            _ => {
                eprintln!("error: no list of Rollouts from the API server within 30s");
                return EXIT_ERROR;
            }
        }
        println!(
            "tollgate dashboard: http://127.0.0.1:{port}/ ({}; {})",
            shared.scope,
            if args.allow_actions {
                "actions allowed"
            } else {
                "read-only"
            }
        );
        let app = Router::new().fallback(handle).with_state(shared);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("error: the dashboard's server failed: {e}");
                EXIT_ERROR
            }
        }
    })
}

mod fleet;
#[cfg(test)]
mod tests;
