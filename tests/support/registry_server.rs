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
/// directory, speaking plain HTTP without auth. The process is killed and
/// the storage removed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry on a free port on 127.0.0.1 and waits until it
    /// responds to `GET /v2/` with status 200.
    pub fn start() -> Registry {
        require("docker-registry");

        let dir = tempfile::tempdir().expect("temporary directory");
        let mut last_failure = String::new();

        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(dir.path(), port);

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
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, port: u16) -> Child {
    let config = dir.join("config.yml");
    let storage = dir.join("storage");
    std::fs::write(&config, config_yaml(&storage, port)).expect("write registry config");

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
/// 127.0.0.1 only and keeps blobs under `storage`.
fn config_yaml(storage: &Path, port: u16) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    )
}

fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;

    loop {
        if let Some(status) = child.try_wait().expect("poll docker-registry") {
            return Err(format!("docker-registry exited with {status} on port {port}"));
        }

        if get_v2_status(port) == Some(200) {
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
