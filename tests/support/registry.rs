//! A real `docker-registry` (CNCF Distribution) on a free loopback port, with
//! its storage in a temp dir, and a small OCI image layout written by hand.
//!
//! Self-contained so that any integration test can include it with
//! `#[path = "support/registry.rs"] mod registry_support;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use kuul::image::{BuiltImage, BuiltLayer, Descriptor};
use sha2::{Digest, Sha256};

const SETUP_HINT: &str = "run `scripts/setup-test-env` to install the test components";

/// Maximum time a fresh registry may take to respond to `GET /v2/`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `docker-registry serve`, killed when dropped.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub address: String,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry without authentication.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with_auth(None)
    }

    /// Starts a registry that accepts only `username` with `password`, checked
    /// against a bcrypt htpasswd file.
    pub fn start_with_htpasswd(username: &str, password: &str) -> TestRegistry {
        let output = Command::new("htpasswd")
            .args(["-Bbn", username, password])
            .output()
            .unwrap_or_else(|error| panic!("failed to run `htpasswd` (apache2-utils): {error}\nhint: {SETUP_HINT}"));
        assert!(output.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&output.stderr));

        TestRegistry::start_with_auth(Some(&output.stdout))
    }

    fn start_with_auth(htpasswd: Option<&[u8]>) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd_path = dir.path().join("htpasswd");
        if let Some(content) = htpasswd {
            std::fs::write(&htpasswd_path, content).unwrap();
        }

        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let auth_file = htpasswd.map(|_| htpasswd_path.as_path());
        std::fs::write(&config, registry_config(&dir.path().join("storage"), &address, auth_file)).unwrap();

        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start `docker-registry`: {error}\nhint: {SETUP_HINT}"));

        let mut registry = TestRegistry { child, address, dir };
        registry.wait_until_ready();
        registry
    }

    /// Polls `GET /v2/` until the registry responds with any HTTP status.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;

        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("`docker-registry` exited with {status} before responding:\n{stderr}");
            }
            if responds_to_http(&self.address) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        panic!("`docker-registry` did not respond to `GET /v2/` at {} within {STARTUP_TIMEOUT:?}", self.address);
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry_config(storage: &Path, address: &str, htpasswd: Option<&Path>) -> String {
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
        storage.display()
    );
    if let Some(htpasswd) = htpasswd {
        config.push_str(&format!("auth:\n  htpasswd:\n    realm: kuul-test\n    path: {}\n", htpasswd.display()));
    }
    config
}

/// Returns a loopback port that was free a moment ago. Another process could
/// take it before the registry binds it. The registry then exits and the test
/// fails with its error.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn responds_to_http(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }

    let mut start = [0; 9];
    stream.read_exact(&mut start).is_ok() && start.starts_with(b"HTTP/1.")
}

/// Writes `content` as a blob of the layout and returns its descriptor.
pub fn write_blob(layout: &Path, media_type: &str, content: &[u8]) -> Descriptor {
    let hex = hex::encode(Sha256::digest(content));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hex), content).unwrap();

    Descriptor { media_type: media_type.to_string(), digest: format!("sha256:{hex}"), size: content.len() as u64 }
}

/// Builds a gzip tar layer containing `files` (path, content) with fixed
/// metadata, and returns it with its diff ID.
fn gzip_layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));

    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&tar).unwrap();
    (encoder.finish().unwrap(), diff_id)
}

/// Writes an OCI image layout with two gzip layers, a config and a
/// manifest, and returns the description a build would return.
///
/// `marker` goes into the job file so that images from different calls have
/// different digests.
pub fn write_layout(layout: &Path, marker: &str) -> BuiltImage {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let script = format!("#!/bin/sh\necho {marker}\n");
    let layer_specs: [&[(&str, &[u8])]; 2] = [
        &[("etc/passwd", b"nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")],
        &[("job/run.sh", script.as_bytes())],
    ];
    let layers: Vec<BuiltLayer> = layer_specs
        .iter()
        .zip(["system files", "job files"])
        .map(|(files, description)| {
            let (gzip, diff_id) = gzip_layer(files);
            BuiltLayer {
                descriptor: write_blob(layout, "application/vnd.oci.image.layer.v1.tar+gzip", &gzip),
                diff_id,
                description: description.to_string(),
                entries: files.len(),
            }
        })
        .collect();

    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
    let config_json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Entrypoint": ["/job/run.sh"], "User": "65532:65532" },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = write_blob(layout, "application/vnd.oci.image.config.v1+json", config_json.to_string().as_bytes());

    let layer_json: Vec<serde_json::Value> = layers.iter().map(|layer| descriptor_json(&layer.descriptor)).collect();
    let manifest_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor_json(&config),
        "layers": layer_json,
    });
    let manifest =
        write_blob(layout, "application/vnd.oci.image.manifest.v1+json", manifest_json.to_string().as_bytes());

    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [descriptor_json(&manifest)] });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    BuiltImage { manifest, config, layers }
}

fn descriptor_json(descriptor: &Descriptor) -> serde_json::Value {
    serde_json::json!({
        "mediaType": descriptor.media_type,
        "digest": descriptor.digest,
        "size": descriptor.size,
    })
}

/// Runs a command from the test components and returns its stdout, failing
/// with its stderr.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to run `{program}`: {error}\nhint: {SETUP_HINT}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
