//! End-to-end test of Debian packages installed on a Debian-like base: kuul
//! builds a base from `libc6` and `busybox`, pushes it to a real
//! `docker-registry`, and a job on that base adds `python3-minimal`
//! without installing the base's packages again.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{DebianRepo, Registry, kuul, parse_json_stdout, runc_run, umoci_unpack};

const CHECK_SCRIPT: &str = "#!/usr/bin/python3\nimport sys\nprint(\"python\", sys.version_info[0])\n";

fn write_job(parent: &Path, name: &str, toml: &str, files: &[(&str, &str)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("create job directory");
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");
    for (file, content) in files {
        let path = dir.join(file);
        std::fs::write(&path, content).expect("write job file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod job file");
    }
    dir
}

/// Publishes a base of `libc6` and `busybox` as `e2e/debbase:latest` and
/// returns its reference.
fn publish_debian_base(registry: &Registry, repo: &DebianRepo, work: &Path) -> String {
    let toml = format!(
        "[job]\nname = \"debbase\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/busybox\", \"true\"]\n\n\
         [image]\nfiles = []\npackages = [\"libc6\", \"busybox\"]\n\n[debian]\nkeyring = \"{}\"\n",
        repo.keyring().display()
    );
    let job = write_job(work, "debbase", &toml, &[]);
    let output = kuul()
        .arg("publish")
        .arg(&job)
        .args(["--registry", &format!("{}/e2e", registry.host_port())])
        .env("KUUL_DEBIAN_MIRROR", repo.file_url())
        .env("KUUL_CACHE_DIR", work.join("cache"))
        .output()
        .expect("start kuul publish");

    assert!(
        output.status.success(),
        "kuul publish of the base failed\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{}/e2e/debbase:latest", registry.host_port())
}

/// Writes a job on `base` that adds `python3-minimal` and lists the
/// base's `busybox` too, and returns its directory.
fn write_python_job(base: &str, repo: &DebianRepo, work: &Path) -> PathBuf {
    let toml = format!(
        "[job]\nname = \"py-on-base\"\nschedule = \"@daily\"\ncommand = [\"check.py\"]\n\n\
         [image]\nbase = \"{base}\"\nfiles = [\"check.py\"]\npackages = [\"python3-minimal\", \"busybox\"]\n\n\
         [debian]\nkeyring = \"{}\"\n",
        repo.keyring().display()
    );
    write_job(work, "py-on-base", &toml, &[("check.py", CHECK_SCRIPT)])
}

/// Runs kuul with the test repository as mirror and a cache under `work`.
fn kuul_with_repo(repo: &DebianRepo, work: &Path) -> assert_cmd::Command {
    let mut command = kuul();
    command.env("KUUL_DEBIAN_MIRROR", repo.file_url()).env("KUUL_CACHE_DIR", work.join("cache"));
    command
}

/// Builds a job on `base` that adds `python3-minimal`, and returns the
/// layout, the JSON summary and kuul's stderr.
fn build_python_job(base: &str, repo: &DebianRepo, work: &Path) -> (PathBuf, Value, String) {
    let job = write_python_job(base, repo, work);
    let layout = work.join("oci");
    let output = kuul_with_repo(repo, work)
        .arg("build")
        .arg(&job)
        .arg("--layout")
        .arg(&layout)
        .args(["-o", "json"])
        .output()
        .expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (layout, parse_json_stdout("kuul build", &output), stderr)
}

/// Returns the paths in each layer of the image tagged `latest` in `layout`.
fn layer_paths(layout: &Path) -> Vec<Vec<String>> {
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == "latest")
        .expect("a `latest` tag in the layout")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest: Value = serde_json::from_slice(&std::fs::read(blob(&manifest_digest)).unwrap()).unwrap();

    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let file = std::fs::File::open(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut paths = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            paths.push(entry.path().unwrap().to_string_lossy().into_owned());
            std::io::copy(&mut entry.by_ref().take(0), &mut std::io::sink()).unwrap();
        }
        layers.push(paths);
    }
    layers
}

#[test]
fn packages_on_debian_base_skip_installed() {
    support::require_root();
    let repo = DebianRepo::get();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let base = publish_debian_base(&registry, &repo, work.path());

    let (layout, summary, stderr) = build_python_job(&base, &repo, work.path());
    let installed: Vec<&str> = summary["packages"]["installed"]
        .as_array()
        .expect("an installed package list in the summary")
        .iter()
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    let layers = layer_paths(&layout);
    let python_layer = layers
        .iter()
        .find(|paths| paths.iter().any(|path| path.ends_with("bin/python3.11")))
        .expect("a layer with `python3.11`");

    assert!(installed.contains(&"python3-minimal"), "installed: {installed:?}");
    assert!(!installed.contains(&"libc6"), "libc6 installed again: {installed:?}");
    assert!(!installed.contains(&"busybox"), "busybox installed again: {installed:?}");
    assert!(stderr.contains("skip Debian package `busybox`"), "no message about the installed busybox:\n{stderr}");
    assert!(!python_layer.iter().any(|path| path.ends_with("libc.so.6")), "the package layer contains libc again");
    assert!(
        !python_layer.iter().any(|path| path == "lib" || path == "lib/" || path == "bin/"),
        "the package layer replaces a base symlink with a directory"
    );
}

#[test]
fn python_on_debian_base_runs() {
    support::require_root();
    let repo = DebianRepo::get();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let base = publish_debian_base(&registry, &repo, work.path());

    let (layout, _, _) = build_python_job(&base, &repo, work.path());
    let bundle = work.path().join("bundle");
    umoci_unpack(&layout, "latest", &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(
        output.status.success(),
        "the job exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("python 3\n"), "stdout:\n{stdout}");
}

/// A job on the published Debian base, with `kuul lock` run on it.
struct LockedOnBase {
    repo: DebianRepo,
    work: tempfile::TempDir,
    _registry: Registry,
    job: PathBuf,
    lock: std::process::Output,
}

fn lock_on_base() -> LockedOnBase {
    support::require_root();
    let repo = DebianRepo::get();
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let base = publish_debian_base(&registry, &repo, work.path());
    let job = write_python_job(&base, &repo, work.path());

    let lock = kuul_with_repo(&repo, work.path()).arg("lock").arg(&job).output().expect("start kuul lock");
    assert!(lock.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&lock.stderr));
    LockedOnBase { repo, work, _registry: registry, job, lock }
}

#[test]
fn kuul_lock_reads_base_packages() {
    let locked_on_base = lock_on_base();

    let stdout = String::from_utf8_lossy(&locked_on_base.lock.stdout);
    let locked: Vec<&str> = stdout.lines().filter_map(|line| line.split(' ').next()).collect();

    assert!(locked.contains(&"python3-minimal"), "locked: {locked:?}");
    assert!(!locked.contains(&"libc6"), "libc6 locked although the base has it: {locked:?}");
    assert!(!locked.contains(&"busybox"), "busybox locked although the base has it: {locked:?}");
}

#[test]
fn kuul_lock_on_base_satisfies_locked_build() {
    // Bound whole, so the registry keeps running until the end.
    let locked_on_base = lock_on_base();
    let LockedOnBase { repo, work, job, .. } = &locked_on_base;
    let lock_before = std::fs::read(job.join("kuul.lock")).unwrap();

    let build = kuul_with_repo(repo, work.path())
        .arg("build")
        .arg(job)
        .arg("--locked")
        .arg("--layout")
        .arg(work.path().join("oci"))
        .output()
        .expect("start kuul build");

    assert!(build.status.success(), "kuul build --locked failed\nstderr:\n{}", String::from_utf8_lossy(&build.stderr));
    assert_eq!(std::fs::read(job.join("kuul.lock")).unwrap(), lock_before, "the locked build changed kuul.lock");
}
