//! A real OCI registry (CNCF Distribution, Debian's `docker-registry`) on
//! 127.0.0.1, for tests that push and pull.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, require};

/// How long the registry may take to respond to `GET /v2/` after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How many ports to try when the registry fails to bind one.
const START_ATTEMPTS: usize = 5;

/// A `docker-registry serve` process with its storage in a temporary
/// directory, speaking plain HTTP, with or without htpasswd auth. The process
/// is killed and the storage removed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry without auth on a free port on 127.0.0.1 and waits
    /// until it responds to `GET /v2/`.
    pub fn start() -> Registry {
        Registry::start_with_auth(None)
    }

    /// Starts a registry that accepts only `username` with `password`,
    /// checked against a bcrypt htpasswd file made with `htpasswd`.
    pub fn start_with_htpasswd(username: &str, password: &str) -> Registry {
        require("htpasswd");
        let output = Command::new("htpasswd").args(["-Bbn", username, password]).output().expect("run htpasswd");
        assert!(output.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&output.stderr));

        Registry::start_with_auth(Some(&output.stdout))
    }

    fn start_with_auth(htpasswd: Option<&[u8]>) -> Registry {
        require("docker-registry");

        let dir = tempfile::tempdir().expect("temporary directory");
        if let Some(content) = htpasswd {
            std::fs::write(dir.path().join("htpasswd"), content).expect("write htpasswd");
        }
        let mut last_failure = String::new();

        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(dir.path(), port, htpasswd.is_some());

            match wait_until_ready(&mut child, port) {
                Ok(()) => return Registry { child, port, dir },
                Err(failure) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_failure = format!("{failure}\nregistry log:\n{}", read_log(dir.path()));
                }
            }
        }

        panic!("docker-registry did not start after {START_ATTEMPTS} attempts: {last_failure}");
    }

    /// Returns `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Returns the registry's log so far, for panic messages.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Returns the directory that contains the registry's blobs and manifests.
    pub fn storage_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, port: u16, with_auth: bool) -> Child {
    let config = dir.join("config.yml");
    let htpasswd = with_auth.then(|| dir.join("htpasswd"));
    std::fs::write(&config, config_yaml(dir, port, htpasswd.as_deref())).expect("write registry config");

    let log = File::create(dir.join("registry.log")).expect("create registry log");
    let log_for_stderr = log.try_clone().expect("clone log handle");

    Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .spawn()
        .expect("start docker-registry")
}

/// Returns a Distribution 2.x configuration that serves plain HTTP on
/// 127.0.0.1 only, keeps blobs under `dir/storage`, and checks `htpasswd`
/// when one is given.
fn config_yaml(dir: &Path, port: u16, htpasswd: Option<&Path>) -> String {
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        dir.join("storage").display()
    );
    if let Some(htpasswd) = htpasswd {
        config.push_str(&format!("auth:\n  htpasswd:\n    realm: kuul-test\n    path: {}\n", htpasswd.display()));
    }
    config
}

fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;

    loop {
        if let Some(status) = child.try_wait().expect("poll docker-registry") {
            return Err(format!("docker-registry exited with {status} on port {port}"));
        }

        // Any status will do, because a registry with auth returns 401.
        if get_v2_status(port).is_some() {
            return Ok(());
        }

        if Instant::now() >= deadline {
            return Err(format!("docker-registry did not answer GET /v2/ on port {port} within {STARTUP_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `GET /v2/` over HTTP/1.0 and returns the status code, or `None`
/// when the connection fails.
fn get_v2_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;

    let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;

    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;

    // The status line is `HTTP/1.x CODE REASON`.
    response.split_whitespace().nth(1)?.parse().ok()
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
}
