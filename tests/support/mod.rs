//! Shared harness for the end-to-end tests: the `kuul` binary, a registry,
//! PostgreSQL, the image tools (skopeo, umoci, runc) and the manifest
//! validator. Every server listens on 127.0.0.1 only, on a free port, with
//! its state in a temporary directory that is removed on drop.
//!
//! A test that needs a program which is missing panics with a message naming
//! `scripts/setup-test-env`; nothing is skipped.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod cluster_env;
mod container;
mod debian_repo;
pub mod fake_apiserver;
pub mod layout;
mod postgres;
pub mod registry_client;
mod registry_server;
pub mod relay;
mod workflow;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use container::{LAYOUT_TAG, runc_run, skopeo_copy_to_layout, umoci_unpack};
pub use debian_repo::{DebianRepo, HttpServer, apt_simulate, apt_simulate_for_architecture};
pub use postgres::Postgres;
pub use registry_server::Registry;
pub use workflow::{
    Published, build_json, container_image, copy_example, parse_json_stdout, parse_yaml, publish, pull_and_unpack,
    uploaded_bytes,
};

/// The Kubernetes versions whose schemas every emitted manifest is checked
/// against: the oldest one kuul supports (the k8s-openapi feature in
/// Cargo.toml is `v1_33`) and the newest that kubernetes-validate 1.37.0
/// ships.
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.33.0", "1.37.0"];

/// Runs a test component and returns its stdout, panicking with its stderr
/// when it fails.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    require(program);
    let output = run_checked(&format!("{program} {}", args.join(" ")), Command::new(program).args(args));
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

/// Panics unless `tool` is an executable found on `PATH` or, for a path
/// with a slash, exists at that path.
pub fn require(tool: &str) {
    if find_program(tool).is_none() {
        panic!("`{tool}` is not installed; run `scripts/setup-test-env` (as root)");
    }
}

/// Panics unless the test runs as root, which runc, umoci's ownership
/// handling and `runuser` need.
pub fn require_root() {
    if effective_uid() != 0 {
        panic!(
            "this test runs containers with runc and must run as root (effective uid is {}); \
             run `scripts/test` as root",
            effective_uid()
        );
    }
}

/// Returns the effective user id of the test process, read from
/// `/proc/self/status`.
pub fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|line| line.starts_with("Uid:")).expect("`Uid:` line in /proc/self/status");

    // The fields are real, effective, saved and filesystem uid.
    line.split_whitespace().nth(2).and_then(|field| field.parse().ok()).expect("effective uid in /proc/self/status")
}

/// Returns the path of the `kuul` binary that cargo built for these tests.
pub fn kuul_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kuul"))
}

/// Returns a command for the built `kuul` binary. `KUUL_REGISTRY`,
/// `KUUL_DEBIAN_MIRROR` and `KUUL_CACHE_DIR` are removed from its
/// environment so that values in the caller's shell cannot change where a
/// test pushes or which packages it installs.
pub fn kuul() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::new(kuul_path());
    command.env_remove("KUUL_REGISTRY");
    command.env_remove("KUUL_DEBIAN_MIRROR");
    command.env_remove("KUUL_CACHE_DIR");
    command
}

/// Returns the repository root, where `images/` and `templates/` are.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory tree at `source` into `destination`, which is
/// created. Symbolic links are copied as links.
pub fn copy_dir(source: &Path, destination: &Path) {
    std::fs::create_dir_all(destination).unwrap_or_else(|error| panic!("create `{}`: {error}", destination.display()));

    let entries = std::fs::read_dir(source).unwrap_or_else(|error| panic!("read `{}`: {error}", source.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let file_type = entry.file_type().expect("file type");
        let target = destination.join(entry.file_name());

        if file_type.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read link");
            std::os::unix::fs::symlink(link, &target).expect("create link");
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|error| panic!("copy `{}`: {error}", entry.path().display()));
        }
    }
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago. Another
/// process can take it before the caller binds it, so servers started on it
/// retry with a new port when they fail to bind.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Runs `command` to completion and panics with its output unless it exits
/// with status 0. `step` names the step in the panic message.
pub fn run_checked(step: &str, command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{step}: failed to start {command:?}: {error}"));

    if !output.status.success() {
        panic!(
            "{step} failed with {}\ncommand: {command:?}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}

/// Checks `yaml` with `kubernetes-validate --strict`, which rejects unknown
/// fields, against each of [`KUBERNETES_VERSIONS`]. Panics with the
/// validator's output on failure.
pub fn kubernetes_validate(yaml: &str) {
    require("kubernetes-validate");

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("manifest.yaml");
    std::fs::write(&path, yaml).expect("write manifest");

    for version in KUBERNETES_VERSIONS {
        let output = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg("--kubernetes-version")
            .arg(version)
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("start kubernetes-validate");

        assert!(
            output.status.success(),
            "kubernetes-validate --strict rejected the manifest for Kubernetes {version} ({})\n\
             stdout:\n{}\nstderr:\n{}\nmanifest:\n{yaml}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

/// Returns the first digest written as `@sha256:` and 64 hex digits in
/// `text`, without the `@`, or `None`.
pub fn digest_after_at(text: &str) -> Option<String> {
    let (_, rest) = text.split_once("@sha256:")?;
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() == 64 { Some(format!("sha256:{hex}")) } else { None }
}

/// Returns `true` when `text` is `sha256:` followed by 64 lowercase hex
/// digits.
pub fn is_sha256_digest(text: &str) -> bool {
    match text.strip_prefix("sha256:") {
        Some(hex) => hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        None => false,
    }
}

fn find_program(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let path = PathBuf::from(tool);
        return path.exists().then_some(path);
    }

    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var).map(|dir| dir.join(tool)).find(|candidate| candidate.is_file())
}
