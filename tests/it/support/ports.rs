//! Free TCP ports on loopback for the processes the tests start (operators, Prometheus, demo-apps,
//! pact-stub-server): bound to port 0, read back and released, which is good enough on a test
//! machine where nothing else hunts for ports in the same instant.

use std::net::{IpAddr, TcpListener};

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port on `ip` (a loopback address) that nothing listens on right now.
pub fn free_port_on(ip: &str) -> u16 {
    let ip: IpAddr = ip.parse().expect("an IP address");
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
