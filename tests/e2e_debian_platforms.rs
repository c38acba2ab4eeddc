//! End-to-end tests of Debian packages on several platforms: one build
//! installs each platform's own packages from the signed test repository,
//! which contains the build machine's architecture and one foreign one, and
//! `kuul.lock` keeps one package set per architecture.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{DebianRepo, kuul, parse_json_stdout, run_checked, runc_run, umoci_unpack};

/// ELF `e_machine` values.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

const SCRIPT: &str = "#!/bin/sh\necho \"hello from $(uname -m)\"\n";

/// Returns the build machine's Debian architecture and the repository's
/// foreign one.
fn architectures(repo: &DebianRepo) -> (String, String) {
    let native = support::run_tool("dpkg", &["--print-architecture"]).trim().to_owned();
    (native, repo.foreign_architecture())
}

/// Writes a job that installs busybox and runs a `#!/bin/sh` script.
fn write_job(parent: &Path, repo: &DebianRepo) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let dir = parent.join("multi-deb");
    std::fs::create_dir_all(&dir).expect("create the job directory");
    let toml = format!(
        "[job]\nname = \"multi-deb\"\nschedule = \"@daily\"\ncommand = [\"run.sh\"]\n\n\
         [image]\nfiles = [\"run.sh\"]\npackages = [\"busybox\"]\n\n\
         [image.symlinks]\n\"/bin/sh\" = \"busybox\"\n\n[debian]\nkeyring = \"{}\"\n",
        repo.keyring().display()
    );
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");
    std::fs::write(dir.join("run.sh"), SCRIPT).expect("write run.sh");
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).expect("set the mode");
    dir
}

/// Runs kuul with the test repository as mirror and a cache under `work`.
fn kuul_with_repo(repo: &DebianRepo, work: &Path) -> assert_cmd::Command {
    let mut command = kuul();
    command.env("KUUL_DEBIAN_MIRROR", repo.file_url()).env("KUUL_CACHE_DIR", work.join("cache"));
    command
}

/// Runs `kuul build` with `args` and returns its output.
fn build(repo: &DebianRepo, work: &Path, job: &Path, layout: &Path, args: &[&str]) -> std::process::Output {
    kuul_with_repo(repo, work)
        .arg("build")
        .arg(job)
        .arg("--layout")
        .arg(layout)
        .args(args)
        .output()
        .expect("start kuul build")
}

/// Reads the Debian architectures that `kuul.lock` holds package sets for.
fn locked_architectures(job: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(job.join("kuul.lock")).expect("read kuul.lock");
    let lock: toml::Table = text.parse().unwrap_or_else(|error| panic!("kuul.lock is not TOML: {error}\n{text}"));
    let tables = lock.get("architecture").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    tables.iter().map(|table| table["name"].as_str().expect("a name").to_owned()).collect()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Returns the ELF machine of `usr/bin/busybox` in the image `manifest_digest`.
fn busybox_machine(layout: &Path, manifest_digest: &str) -> u16 {
    let manifest: Value = serde_json::from_slice(&std::fs::read(blob_path(layout, manifest_digest)).unwrap()).unwrap();
    for layer in manifest["layers"].as_array().expect("layers") {
        let file = std::fs::File::open(blob_path(layout, layer["digest"].as_str().unwrap())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_string_lossy() == "usr/bin/busybox" {
                let mut header = [0u8; 20];
                entry.read_exact(&mut header).expect("read the ELF header");
                return u16::from_le_bytes([header[18], header[19]]);
            }
        }
    }
    panic!("no usr/bin/busybox in image {manifest_digest}");
}

fn elf_machine(debian_architecture: &str) -> u16 {
    match debian_architecture {
        "amd64" => EM_X86_64,
        "arm64" => EM_AARCH64,
        other => panic!("no ELF machine known for `{other}`"),
    }
}

fn oci_platform(debian_architecture: &str) -> String {
    format!("linux/{debian_architecture}")
}

#[test]
fn packages_on_two_platforms_build_index() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let layout = work.path().join("oci");
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));

    let output = build(&repo, work.path(), &job, &layout, &["--platform", &platforms, "-o", "json"]);
    let summary = parse_json_stdout("kuul build --platform", &output);
    let entries = summary["platforms"].as_array().expect("a platform list");
    let machines: Vec<u16> =
        entries.iter().map(|entry| busybox_machine(&layout, entry["digest"].as_str().unwrap())).collect();
    let package_architectures: Vec<Vec<&str>> = entries
        .iter()
        .map(|entry| {
            let installed = entry["packages"]["installed"].as_array().expect("installed packages per platform");
            installed.iter().map(|package| package["architecture"].as_str().unwrap()).collect()
        })
        .collect();

    assert_eq!(machines, [elf_machine(&native), elf_machine(&foreign)]);
    assert!(package_architectures[0].iter().all(|arch| [native.as_str(), "all"].contains(arch)), "{summary}");
    assert!(package_architectures[1].iter().all(|arch| [foreign.as_str(), "all"].contains(arch)), "{summary}");
    assert_eq!(locked_architectures(&job), sorted([native.clone(), foreign.clone()]));
}

fn sorted(mut names: [String; 2]) -> [String; 2] {
    names.sort();
    names
}

#[test]
fn native_platform_of_index_runs() {
    support::require_root();
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let layout = work.path().join("oci");
    let platforms = format!("{},{}", oci_platform(&foreign), oci_platform(&native));
    let built = build(&repo, work.path(), &job, &layout, &["--platform", &platforms]);
    assert!(built.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&built.stderr));

    // skopeo picks the build machine's manifest out of the index.
    let native_layout = work.path().join("native");
    support::require("skopeo");
    run_checked(
        "skopeo copy",
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("oci:{}:latest", native_layout.display())),
    );
    let bundle = work.path().join("bundle");
    umoci_unpack(&native_layout, "latest", &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);

    assert!(output.status.success(), "the job failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("hello from "), "{output:?}");
}

#[test]
fn locked_build_needs_every_architecture() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));
    let single = build(&repo, work.path(), &job, &work.path().join("oci-1"), &[]);
    assert!(single.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&single.stderr));

    let layout = work.path().join("oci-2");
    let output = build(&repo, work.path(), &job, &layout, &["--locked", "--platform", &platforms]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the locked build succeeded\nstderr:\n{stderr}");
    assert!(stderr.contains(&format!("locks no packages for architecture `{foreign}`")), "stderr:\n{stderr}");
    assert!(stderr.contains("hint: run `kuul lock JOB_DIR --platform PLATFORMS`"), "stderr:\n{stderr}");
    assert!(!layout.exists(), "the failed build left `{}` behind", layout.display());
}

#[test]
fn kuul_lock_platform_satisfies_locked_build() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));

    let lock = kuul_with_repo(&repo, work.path())
        .arg("lock")
        .arg(&job)
        .args(["--platform", &platforms])
        .output()
        .expect("start kuul lock");
    assert!(lock.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&lock.stderr));
    let output = build(&repo, work.path(), &job, &work.path().join("oci"), &["--locked", "--platform", &platforms]);

    assert!(
        output.status.success(),
        "kuul build --locked failed\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn kuul_lock_keeps_locked_architectures() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));
    let built = build(&repo, work.path(), &job, &work.path().join("oci"), &["--platform", &platforms]);
    assert!(built.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&built.stderr));

    let lock = kuul_with_repo(&repo, work.path()).arg("lock").arg(&job).output().expect("start kuul lock");

    assert!(lock.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&lock.stderr));
    assert_eq!(locked_architectures(&job), sorted([native, foreign]));
}

#[test]
fn single_platform_build_keeps_other_architecture() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));
    let both = build(&repo, work.path(), &job, &work.path().join("oci-1"), &["--platform", &platforms]);
    assert!(both.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&both.stderr));
    let lock_before = std::fs::read(job.join("kuul.lock")).unwrap();

    let single = build(&repo, work.path(), &job, &work.path().join("oci-2"), &[]);

    assert!(single.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&single.stderr));
    assert_eq!(std::fs::read(job.join("kuul.lock")).unwrap(), lock_before, "a native build changed kuul.lock");
}

#[test]
fn changed_packages_drop_other_architecture() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_job(work.path(), &repo);
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));
    let both = build(&repo, work.path(), &job, &work.path().join("oci-1"), &["--platform", &platforms]);
    assert!(both.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&both.stderr));
    let toml = std::fs::read_to_string(job.join("kuul.toml")).unwrap();
    std::fs::write(
        job.join("kuul.toml"),
        toml.replace("packages = [\"busybox\"]", "packages = [\"busybox\", \"libc6\"]"),
    )
    .unwrap();

    let single = build(&repo, work.path(), &job, &work.path().join("oci-2"), &[]);

    assert!(single.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&single.stderr));
    assert_eq!(locked_architectures(&job), [native]);
}

/// Publishes a two-platform base of `libc6` and `busybox` as
/// `e2e/debbase:latest` and returns its reference.
fn publish_two_platform_base(registry: &support::Registry, repo: &DebianRepo, work: &Path, platforms: &str) -> String {
    let dir = work.join("debbase");
    std::fs::create_dir_all(&dir).expect("create the base job directory");
    let toml = format!(
        "[job]\nname = \"debbase\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/busybox\", \"true\"]\n\n\
         [image]\nfiles = []\npackages = [\"libc6\", \"busybox\"]\n\n[debian]\nkeyring = \"{}\"\n",
        repo.keyring().display()
    );
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");

    let output = kuul_with_repo(repo, work)
        .arg("publish")
        .arg(&dir)
        .args(["--registry", &format!("{}/e2e", registry.host_port()), "--platform", platforms])
        .output()
        .expect("start kuul publish");
    assert!(
        output.status.success(),
        "kuul publish of the base failed\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    format!("{}/e2e/debbase:latest", registry.host_port())
}

#[test]
fn kuul_lock_reads_each_platform_base() {
    let repo = DebianRepo::get();
    let (native, foreign) = architectures(&repo);
    let registry = support::Registry::start();
    let work = tempfile::tempdir().expect("temporary directory");
    let platforms = format!("{},{}", oci_platform(&native), oci_platform(&foreign));
    let base = publish_two_platform_base(&registry, &repo, work.path(), &platforms);
    let job = write_job(work.path(), &repo);
    let toml = std::fs::read_to_string(job.join("kuul.toml")).unwrap();
    std::fs::write(job.join("kuul.toml"), toml.replace("[image]\n", &format!("[image]\nbase = \"{base}\"\n"))).unwrap();

    let lock = kuul_with_repo(&repo, work.path())
        .arg("lock")
        .arg(&job)
        .args(["--platform", &platforms])
        .output()
        .expect("start kuul lock");
    assert!(lock.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&lock.stderr));
    let text = std::fs::read_to_string(job.join("kuul.lock")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let architectures = table["architecture"].as_array().expect("architecture tables");
    let locked = build(&repo, work.path(), &job, &work.path().join("oci"), &["--locked", "--platform", &platforms]);

    for entry in architectures {
        let name = entry["name"].as_str().unwrap();
        let installed = entry["installed"].as_array().expect("the base's installed packages");
        let busybox = installed.iter().find(|line| line.as_str().unwrap().starts_with("busybox "));
        assert!(busybox.is_some(), "{name}: the base's busybox is not recorded:\n{text}");
        assert!(entry.get("package").is_none(), "{name}: packages locked although the base has them:\n{text}");
    }
    assert!(
        locked.status.success(),
        "kuul build --locked failed\nstderr:\n{}",
        String::from_utf8_lossy(&locked.stderr)
    );
}
