//! demo-app binary: see the library docs and README.md for the interface.

#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = demo_app::Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo-app: cannot listen on {}: {e}", args.listen);
            std::process::exit(2);
        }
    };
    eprintln!(
        "demo-app {} listening on {} (configHash {})",
        args.app_version,
        args.listen,
        demo_app::config_hash(&args.config)
    );
    let app = demo_app::router(&args);
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    // No graceful drain: a /version handler may hang on purpose, and the app keeps no state.
    tokio::select! {
        r = axum::serve(listener, app) => {
            if let Err(e) = r {
                eprintln!("demo-app: server error: {e}");
                std::process::exit(1);
            }
        }
        _ = shutdown => {}
    }
}
