//! Toxiproxy (built from its Go module by tests/cluster/toxiproxy.sh, found through
//! TOLLGATE_TOXIPROXY): a real TCP proxy between tollgate and a peer, with faults (toxics) added
//! and removed through its HTTP API. The server is killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::http::http;
use super::ports::free_port;

/// A running toxiproxy-server on 127.0.0.1.
pub struct Toxiproxy {
    child: Child,
    api: String,
}

/// One proxy: tollgate talks to `listen`, the proxy to the peer.
pub struct Proxy {
    api: String,
    name: String,
    /// `127.0.0.1:PORT` tollgate connects to.
    pub listen: String,
}

impl Toxiproxy {
    /// Start the server; fails the test with how to get the binary when it is not there.
    pub async fn start() -> Toxiproxy {
        let bin = std::env::var("TOLLGATE_TOXIPROXY").unwrap_or_else(|_| {
            panic!(
                "TOLLGATE_TOXIPROXY is not set: export \
                 TOLLGATE_TOXIPROXY=$(tests/cluster/toxiproxy.sh install | tail -n1)"
            )
        });
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-host", "127.0.0.1", "-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let api = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http().get(format!("{api}/version")).send().await.is_ok() {
                return Toxiproxy { child, api };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("toxiproxy-server did not start on {api}");
    }

    /// A proxy named `name` to `upstream` (`host:port`).
    pub async fn proxy(&self, name: &str, upstream: &str) -> Proxy {
        let listen = format!("127.0.0.1:{}", free_port());
        let body = json!({"name": name, "listen": listen, "upstream": upstream, "enabled": true});
        let r = http()
            .post(format!("{}/proxies", self.api))
            .json(&body)
            .send()
            .await
            .expect("create proxy");
        assert!(r.status().is_success(), "create proxy: {}", r.status());
        Proxy {
            api: self.api.clone(),
            name: name.to_string(),
            listen,
        }
    }
}

impl Proxy {
    /// Add a toxic (`latency`, `bandwidth`, `reset_peer`, `timeout`, ...) on the downstream
    /// direction (the peer's answers), as `toxic`.
    pub async fn add(&self, toxic: &str, kind: &str, attributes: Value) {
        let body = json!({"name": toxic, "type": kind, "stream": "downstream",
                          "toxicity": 1.0, "attributes": attributes});
        let r = http()
            .post(format!("{}/proxies/{}/toxics", self.api, self.name))
            .json(&body)
            .send()
            .await
            .expect("add toxic");
        assert!(r.status().is_success(), "add toxic {toxic}: {}", r.status());
    }

    /// Remove the toxic `toxic`.
    pub async fn remove(&self, toxic: &str) {
        let _ = http()
            .delete(format!("{}/proxies/{}/toxics/{toxic}", self.api, self.name))
            .send()
            .await;
    }

    /// Cut the proxy off (a partition: connections refused and open ones closed), or restore it.
    pub async fn enabled(&self, on: bool) {
        let r = http()
            .post(format!("{}/proxies/{}", self.api, self.name))
            .json(&json!({"enabled": on}))
            .send()
            .await
            .expect("toggle proxy");
        assert!(r.status().is_success(), "toggle proxy: {}", r.status());
    }
}

impl Drop for Toxiproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
