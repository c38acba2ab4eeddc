//! Image consumers: skopeo pulls an image into an OCI layout, umoci unpacks
//! it into a runtime bundle, and runc runs the bundle the way the CronJob
//! runs the image (read-only root filesystem, a writable /tmp).

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use super::{require, require_root, run_checked};

/// The tag that [`skopeo_copy_to_layout`] gives the image in the layout.
pub const LAYOUT_TAG: &str = "under-test";

/// How long a container may run before `runc_run` kills it, in seconds.
const RUN_TIMEOUT_SECONDS: u32 = 120;

/// Copies the image `reference` (`HOST:PORT/REPOSITORY[:TAG][@DIGEST]`)
/// from a plain-HTTP registry into the OCI layout at `layout`, tagged
/// [`LAYOUT_TAG`].
///
/// skopeo 1.9 rejects references with both a tag and a digest. When a
/// digest is present, the tag is dropped because the digest alone names the
/// image.
pub fn skopeo_copy_to_layout(reference: &str, layout: &Path) {
    require("skopeo");

    let source = strip_tag_when_pinned(reference);
    let destination = format!("oci:{}:{LAYOUT_TAG}", layout.display());

    run_checked(
        "skopeo copy",
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{source}"))
            .arg(destination),
    );
}

/// Unpacks the image tagged `tag` in the OCI layout `layout` into a runtime
/// bundle at `bundle` (`config.json` and `rootfs/`), which must not exist.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    require("umoci");
    require_root();

    run_checked(
        "umoci unpack",
        Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{tag}", layout.display())).arg(bundle),
    );
}

/// Runs the bundle at `bundle` with runc and returns its output and exit
/// status, without checking the status.
///
/// Before the run, this edits the bundle's `config.json`:
/// - the terminal is turned off;
/// - `args` replaces the image's command, unless `args` is empty;
/// - `env` entries (`NAME=value`) are appended;
/// - each `(host path, container path)` in `mounts` becomes a read-write
///   bind mount;
/// - the root filesystem is read-only with an empty writable `/tmp`, as in
///   the CronJob;
/// - with `host_network`, the container shares the host's network
///   namespace, so it reaches servers on the host's 127.0.0.1.
pub fn runc_run(bundle: &Path, args: &[&str], env: &[&str], mounts: &[(&Path, &str)], host_network: bool) -> Output {
    require("runc");
    require_root();

    let config_path = bundle.join("config.json");
    let text = std::fs::read_to_string(&config_path).expect("read the bundle's config.json");
    let mut config: Value = serde_json::from_str(&text).expect("parse the bundle's config.json");

    let id = container_id();
    let tmp_volume = create_tmp_volume(bundle, &id);
    edit_config(&mut config, &tmp_volume, args, env, mounts, host_network);
    let text = serde_json::to_string_pretty(&config).expect("serialize config.json");
    std::fs::write(&config_path, text).expect("write the bundle's config.json");

    let output = Command::new("timeout")
        .args(["--kill-after=5", &RUN_TIMEOUT_SECONDS.to_string()])
        .args(["runc", "run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .expect("start runc");

    // `runc run` removes the container when it exits; this removes it when
    // the timeout killed runc first.
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();

    output
}

fn edit_config(
    config: &mut Value,
    tmp_volume: &Path,
    args: &[&str],
    env: &[&str],
    mounts: &[(&Path, &str)],
    host_network: bool,
) {
    let process = &mut config["process"];
    process["terminal"] = json!(false);
    if !args.is_empty() {
        process["args"] = json!(args);
    }
    let process_env = process["env"].as_array_mut().expect("`process.env` array");
    process_env.extend(env.iter().map(|entry| json!(entry)));

    config["root"]["readonly"] = json!(true);

    let config_mounts = config["mounts"].as_array_mut().expect("`mounts` array");
    config_mounts.push(json!({
        "destination": "/tmp",
        "type": "bind",
        "source": tmp_volume,
        "options": ["rbind", "rw", "nosuid", "nodev"],
    }));
    for (source, destination) in mounts {
        config_mounts.push(json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", "rw"],
        }));
    }

    if host_network {
        let namespaces = config["linux"]["namespaces"].as_array_mut().expect("`linux.namespaces` array");
        namespaces.retain(|namespace| namespace["type"] != "network");
    }
}

/// Creates an empty world-writable directory in the bundle for the
/// container's `/tmp`, like the CronJob's emptyDir volume. A tmpfs would not
/// do: runc gives a tmpfs the mode of the directory it covers, and an image's
/// `/tmp` may be 0755.
fn create_tmp_volume(bundle: &Path, id: &str) -> PathBuf {
    let volume = bundle.join(format!("tmp-{id}"));
    std::fs::create_dir(&volume).expect("create the /tmp volume");
    std::fs::set_permissions(&volume, Permissions::from_mode(0o1777)).expect("chmod the /tmp volume");
    volume
}

/// Returns a container id that is unique on this machine while the tests
/// run: the process id plus a counter.
fn container_id() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("kuul-test-{}-{count}", std::process::id())
}

fn strip_tag_when_pinned(reference: &str) -> String {
    let Some((name, digest)) = reference.split_once('@') else {
        return reference.to_owned();
    };

    // A colon after the last slash starts the tag; one before it belongs to
    // the registry's port.
    let last_slash = name.rfind('/').unwrap_or(0);
    let repository = match name[last_slash..].find(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    };
    format!("{repository}@{digest}")
}
