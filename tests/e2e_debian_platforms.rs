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

/// A job that installs busybox, in a temporary directory, with the native
/// and the foreign architecture of the test repository.
struct Fixture {
    repo: DebianRepo,
    native: String,
    foreign: String,
    work: tempfile::TempDir,
    job: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let repo = DebianRepo::get();
        let (native, foreign) = architectures(&repo);
        let work = tempfile::tempdir().expect("temporary directory");
        let job = write_job(work.path(), &repo);
        Fixture { repo, native, foreign, work, job }
    }

    /// Returns `--platform` for both architectures, native first.
    fn both_platforms(&self) -> String {
        format!("{},{}", oci_platform(&self.native), oci_platform(&self.foreign))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn kuul(&self) -> assert_cmd::Command {
        kuul_with_repo(&self.repo, self.work.path())
    }

    /// Runs `kuul build JOB --layout WORK/LAYOUT ARGS` and returns its output.
    fn build(&self, layout: &str, args: &[&str]) -> std::process::Output {
        self.kuul().arg("build").arg(&self.job).arg("--layout").arg(self.path(layout)).args(args).output().unwrap()
    }

    /// Runs [`Fixture::build`] and fails the test unless it succeeds.
    fn build_ok(&self, layout: &str, args: &[&str]) {
        let output = self.build(layout, args);
        assert!(output.status.success(), "kuul build failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    }

    /// Runs `kuul lock JOB ARGS` and fails the test unless it succeeds.
    fn lock_ok(&self, args: &[&str]) {
        let output = self.kuul().arg("lock").arg(&self.job).args(args).output().expect("start kuul lock");
        assert!(output.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    }

    fn lock_bytes(&self) -> Vec<u8> {
        std::fs::read(self.job.join("kuul.lock")).expect("read kuul.lock")
    }

    /// Returns both architectures, sorted as kuul.lock lists them.
    fn both_sorted(&self) -> Vec<String> {
        let mut names = vec![self.native.clone(), self.foreign.clone()];
        names.sort();
        names
    }
}

/// Reads the Debian architectures that `kuul.lock` has package sets for.
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
    let fixture = Fixture::new();
    let layout = fixture.path("oci");

    let output = fixture.build("oci", &["--platform", &fixture.both_platforms(), "-o", "json"]);
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

    assert_eq!(machines, [elf_machine(&fixture.native), elf_machine(&fixture.foreign)]);
    let native = [fixture.native.as_str(), "all"];
    assert!(package_architectures[0].iter().all(|arch| native.contains(arch)), "{summary}");
    let foreign = [fixture.foreign.as_str(), "all"];
    assert!(package_architectures[1].iter().all(|arch| foreign.contains(arch)), "{summary}");
    assert_eq!(locked_architectures(&fixture.job), fixture.both_sorted());
}

#[test]
fn native_platform_of_index_runs() {
    support::require_root();
    let fixture = Fixture::new();
    let platforms = format!("{},{}", oci_platform(&fixture.foreign), oci_platform(&fixture.native));
    fixture.build_ok("oci", &["--platform", &platforms]);

    // skopeo picks the build machine's manifest out of the index.
    let native_layout = fixture.path("native");
    support::require("skopeo");
    run_checked(
        "skopeo copy",
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:latest", fixture.path("oci").display()))
            .arg(format!("oci:{}:latest", native_layout.display())),
    );
    let bundle = fixture.path("bundle");
    umoci_unpack(&native_layout, "latest", &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);

    assert!(output.status.success(), "the job failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("hello from "), "{output:?}");
}

#[test]
fn locked_build_needs_every_architecture() {
    let fixture = Fixture::new();
    fixture.build_ok("oci-1", &[]);

    let output = fixture.build("oci-2", &["--locked", "--platform", &fixture.both_platforms()]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the locked build succeeded\nstderr:\n{stderr}");
    let expected = format!("locks no packages for architecture `{}`", fixture.foreign);
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
    let hint = format!("hint: run `kuul lock {} --platform {}`", fixture.job.display(), fixture.both_platforms());
    assert!(stderr.contains(&hint), "stderr:\n{stderr}");
    assert!(!fixture.path("oci-2").exists(), "the failed build left its layout behind");
}

#[test]
fn kuul_lock_platform_satisfies_locked_build() {
    let fixture = Fixture::new();
    fixture.lock_ok(&["--platform", &fixture.both_platforms()]);

    fixture.build_ok("oci", &["--locked", "--platform", &fixture.both_platforms()]);
}

#[test]
fn kuul_lock_keeps_locked_architectures() {
    let fixture = Fixture::new();
    fixture.build_ok("oci", &["--platform", &fixture.both_platforms()]);

    fixture.lock_ok(&[]);

    assert_eq!(locked_architectures(&fixture.job), fixture.both_sorted());
}

#[test]
fn kuul_lock_names_dropped_architecture() {
    let fixture = Fixture::new();
    fixture.build_ok("oci", &["--platform", &fixture.both_platforms()]);

    let output = fixture
        .kuul()
        .arg("lock")
        .arg(&fixture.job)
        .args(["--platform", &oci_platform(&fixture.native)])
        .output()
        .expect("start kuul lock");
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "kuul lock failed\nstderr:\n{stderr}");
    let expected = format!("removed the packages of `{}` from the lock", fixture.foreign);
    assert!(stderr.contains(&expected), "stderr:\n{stderr}");
    assert_eq!(locked_architectures(&fixture.job), std::slice::from_ref(&fixture.native));
}

#[test]
fn single_platform_build_keeps_other_architecture() {
    let fixture = Fixture::new();
    fixture.build_ok("oci-1", &["--platform", &fixture.both_platforms()]);
    let lock_before = fixture.lock_bytes();

    fixture.build_ok("oci-2", &[]);

    assert_eq!(fixture.lock_bytes(), lock_before, "a native build changed kuul.lock");
}

#[test]
fn changed_packages_drop_other_architecture() {
    let fixture = Fixture::new();
    fixture.build_ok("oci-1", &["--platform", &fixture.both_platforms()]);
    let toml = std::fs::read_to_string(fixture.job.join("kuul.toml")).unwrap();
    let changed = toml.replace("packages = [\"busybox\"]", "packages = [\"busybox\", \"libc6\"]");
    std::fs::write(fixture.job.join("kuul.toml"), changed).unwrap();

    fixture.build_ok("oci-2", &[]);

    assert_eq!(locked_architectures(&fixture.job), std::slice::from_ref(&fixture.native));
}

/// Publishes a two-platform base of `libc6` and `busybox` as
/// `e2e/debbase:latest` and returns its reference.
fn publish_two_platform_base(fixture: &Fixture, registry: &support::Registry) -> String {
    let dir = fixture.path("debbase");
    std::fs::create_dir_all(&dir).expect("create the base job directory");
    let toml = format!(
        "[job]\nname = \"debbase\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/busybox\", \"true\"]\n\n\
         [image]\nfiles = []\npackages = [\"libc6\", \"busybox\"]\n\n[debian]\nkeyring = \"{}\"\n",
        fixture.repo.keyring().display()
    );
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");

    let output = fixture
        .kuul()
        .arg("publish")
        .arg(&dir)
        .args(["--registry", &format!("{}/e2e", registry.host_port()), "--platform", &fixture.both_platforms()])
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
    let fixture = Fixture::new();
    let registry = support::Registry::start();
    let base = publish_two_platform_base(&fixture, &registry);
    let toml = std::fs::read_to_string(fixture.job.join("kuul.toml")).unwrap();
    std::fs::write(fixture.job.join("kuul.toml"), toml.replace("[image]\n", &format!("[image]\nbase = \"{base}\"\n")))
        .unwrap();

    fixture.lock_ok(&["--platform", &fixture.both_platforms()]);
    let text = std::fs::read_to_string(fixture.job.join("kuul.lock")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let architectures = table["architecture"].as_array().expect("architecture tables");

    for entry in architectures {
        let name = entry["name"].as_str().unwrap();
        let installed = entry["installed"].as_array().expect("the base's installed packages");
        let busybox = installed.iter().find(|line| line.as_str().unwrap().starts_with("busybox "));
        assert!(busybox.is_some(), "{name}: the base's busybox is not recorded:\n{text}");
        assert!(entry.get("package").is_none(), "{name}: packages locked although the base has them:\n{text}");
    }
    fixture.build_ok("oci", &["--locked", "--platform", &fixture.both_platforms()]);
}
