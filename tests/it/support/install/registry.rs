//! A local image registry for the test binary (deploy/image/registry.sh serve: Debian's
//! docker-registry on a free 127.0.0.1 port, plain HTTP), started once and killed with the test
//! process (PR_SET_PDEATHSIG on a thread that lives as long as the process).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, repo, run};

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub dir: PathBuf,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The test binary's registry, started on first use; its storage lives in `dir`'s parent (the
/// cluster's temp dir, removed by tests/cluster/stop.sh).
pub fn shared(parent: &std::path::Path) -> &'static Registry {
    REGISTRY.get_or_init(|| start(parent.join(format!("registry-{}", std::process::id()))))
}

fn start(dir: PathBuf) -> Registry {
    let addr = format!("127.0.0.1:{}", free_port());
    let (tx, rx) = std::sync::mpsc::channel();
    let (script, dir2, addr2) = (
        repo().join("deploy/image/registry.sh"),
        dir.clone(),
        addr.clone(),
    );
    // The registry dies with the thread that started it; this thread never ends before the
    // process does.
    std::thread::spawn(move || {
        let log = std::fs::create_dir_all(&dir2)
            .and_then(|()| std::fs::File::create(dir2.join("registry.log")))
            .expect("registry log");
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg("serve")
            .arg(&dir2)
            .arg(&addr2)
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn();
        let _ = tx.send(child.as_ref().map(|c| c.id()).map_err(|e| e.to_string()));
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .expect("registry thread")
        .unwrap_or_else(|e| panic!("start docker-registry: {e}"));
    let started = Instant::now();
    loop {
        let up = Command::new("curl")
            .args(["-sf", "--max-time", "2"])
            .arg(format!("http://{addr}/v2/"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if up {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the registry on {addr} never answered; log:\n{}",
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Registry { addr, dir }
}

impl Registry {
    /// Pushes a local image (skopeo, from podman's storage) as `<addr>/tollgate:<its tag>`;
    /// returns the reference by digest, `<addr>/tollgate@sha256:...`.
    pub fn push(&self, local: &str) -> String {
        let tag = local
            .rsplit_once(':')
            .map(|(_, t)| t)
            .expect("a tagged image");
        let digest_file = self.dir.join(format!("digest-{tag}"));
        run(
            "skopeo copy",
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
                .arg(&digest_file)
                .arg(format!("containers-storage:{local}"))
                .arg(format!("docker://{}/tollgate:{tag}", self.addr)),
        );
        let digest = std::fs::read_to_string(&digest_file).expect("digest file");
        format!("{}/tollgate@{}", self.addr, digest.trim())
    }
}
