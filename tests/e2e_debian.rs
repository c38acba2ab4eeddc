//! End-to-end tests of Debian packages as image contents, against the
//! signed local repository that `scripts/make-test-debian-repo` builds,
//! served over loopback HTTP or as a `file://` mirror.

mod support;

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{DebianRepo, HttpServer, Postgres, apt_simulate, kuul, parse_json_stdout, runc_run, umoci_unpack};

/// The uid and gid that kuul images run as.
const NONROOT_ID: u32 = 65532;

/// The tag `kuul build` gives an image without `image.tag`.
const BUILD_TAG: &str = "latest";

/// Writes a job directory with `kuul.toml` and the given files (name,
/// content, mode), and returns its path.
fn write_job(parent: &Path, name: &str, toml: &str, files: &[(&str, &str, u32)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("create job directory");
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");
    for (file, content, mode) in files {
        let path = dir.join(file);
        std::fs::write(&path, content).expect("write job file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("chmod job file");
    }
    dir
}

/// Returns a `[debian]` table for `keyring` plus `extra` lines.
fn debian_table(keyring: &Path, extra: &str) -> String {
    format!("[debian]\nkeyring = \"{}\"\n{extra}", keyring.display())
}

/// Runs `kuul build JOB --layout LAYOUT -o json` with the mirror and cache
/// and returns the process output without checking it.
fn build(job: &Path, layout: &Path, mirror: &str, cache: &Path, extra_args: &[&str]) -> std::process::Output {
    kuul()
        .arg("build")
        .arg(job)
        .arg("--layout")
        .arg(layout)
        .args(["-o", "json"])
        .args(extra_args)
        .env("KUUL_DEBIAN_MIRROR", mirror)
        .env("KUUL_CACHE_DIR", cache)
        .output()
        .expect("start kuul build")
}

fn build_ok(job: &Path, layout: &Path, mirror: &str, cache: &Path) -> Value {
    parse_json_stdout("kuul build", &build(job, layout, mirror, cache, &[]))
}

/// Asserts that a build failed with `expected` in its error and wrote no
/// image layout.
fn assert_build_fails(output: &std::process::Output, layout: &Path, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the build succeeded\nstderr:\n{stderr}");
    assert!(stderr.contains(expected), "stderr does not contain `{expected}`:\n{stderr}");
    assert!(!layout.exists(), "a failed build left `{}` behind", layout.display());
}

const PG_BACKUP_TOML: &str = r#"[job]
name = "pg-backup"
schedule = "15 2 * * *"
command = ["backup.sh"]

[job.env]
BACKUP_DIR = "/backup"

[image]
files = ["backup.sh"]
packages = ["postgresql-client-15", "busybox"]

[image.symlinks]
"/bin/sh" = "busybox"
"/bin/date" = "busybox"
"/bin/mkdir" = "busybox"
"/bin/mv" = "busybox"
"/bin/rm" = "busybox"
"/bin/wc" = "busybox"
"#;

#[test]
fn pg_backup_from_packages_dumps_rows() {
    support::require_root();
    let repo = DebianRepo::get();
    let server = HttpServer::start(&repo.repo());
    let postgres = Postgres::start("shop");
    postgres.psql("CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL)");
    postgres.psql("INSERT INTO orders VALUES (1, 'ada-lovelace'), (2, 'grace-hopper')");

    let work = tempfile::tempdir().expect("temporary directory");
    let script =
        std::fs::read_to_string(support::repo_root().join("images/pg-backup/backup.sh")).expect("read backup.sh");
    let toml = format!("{PG_BACKUP_TOML}\n{}", debian_table(&repo.keyring(), ""));
    let job = write_job(work.path(), "pg-backup", &toml, &[("backup.sh", &script, 0o755)]);
    let cache = work.path().join("cache");
    let layout = work.path().join("oci");

    let first = build_ok(&job, &layout, &server.url(), &cache);
    let second = build_ok(&job, &work.path().join("oci-again"), &server.url(), &cache);

    assert!(first["packages"]["downloaded"].as_u64().unwrap() > 10, "summary: {first}");
    assert_eq!(second["packages"]["downloaded"], 0, "the second build downloaded packages: {second}");
    assert_eq!(first["digest"], second["digest"], "the second build made another image");
    assert!(job.join("kuul.lock").is_file(), "no kuul.lock written");

    let bundle = work.path().join("bundle");
    umoci_unpack(&layout, BUILD_TAG, &bundle);
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("usr/lib/postgresql/15/bin/pg_dump").is_file(), "pg_dump not in the image");
    assert!(rootfs.join("var/lib/dpkg/status.d/libpq5").is_file(), "no dpkg status record for libpq5");
    assert!(rootfs.join("var/lib/dpkg/status.d/libpq5.md5sums").is_file(), "no md5sums for libpq5");
    assert!(std::fs::symlink_metadata(rootfs.join("bin")).unwrap().file_type().is_symlink(), "`/bin` was replaced");

    let backup_dir = work.path().join("backup");
    std::fs::create_dir(&backup_dir).expect("create the backup directory");
    chown(&backup_dir, Some(NONROOT_ID), Some(NONROOT_ID)).expect("chown the backup directory");
    let env = [
        "PGHOST=127.0.0.1".to_owned(),
        format!("PGPORT={}", postgres.port()),
        format!("PGUSER={}", postgres.user()),
        format!("PGDATABASE={}", postgres.database()),
    ];
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let output = runc_run(&bundle, &[], &env, &[(&backup_dir, "/backup")], true);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "the backup exited with {}\nstderr:\n{stderr}", output.status);
    let dumps: Vec<PathBuf> = std::fs::read_dir(&backup_dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert_eq!(dumps.len(), 1, "expected one dump, found {dumps:?}");
    let dump = std::fs::read_to_string(&dumps[0]).expect("read the dump");
    assert!(dump.contains("CREATE TABLE public.orders"), "dump:\n{dump}");
    assert!(dump.contains("2\tgrace-hopper\n"), "dump:\n{dump}");
}

const PYTHON_CHECK: &str = r#"#!/usr/bin/python3
import ssl
import zoneinfo

context = ssl.create_default_context()
print("certificates", context.cert_store_stats()["x509_ca"])
print("zone", zoneinfo.ZoneInfo("Europe/Berlin").key)
"#;

#[test]
fn python_job_loads_certificates_and_zone() {
    support::require_root();
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let toml = format!(
        "[job]\nname = \"py-check\"\nschedule = \"@daily\"\ncommand = [\"check.py\"]\n\n[image]\nfiles = [\"check.py\"]\npackages = [\"python3-minimal\", \"libpython3.11-stdlib\", \"ca-certificates\", \"tzdata\"]\n\n{}",
        debian_table(&repo.keyring(), "")
    );
    let job = write_job(work.path(), "py-check", &toml, &[("check.py", PYTHON_CHECK, 0o755)]);
    let layout = work.path().join("oci");

    build_ok(&job, &layout, &repo.file_url(), &work.path().join("cache"));
    let bundle = work.path().join("bundle");
    umoci_unpack(&layout, BUILD_TAG, &bundle);
    let output = runc_run(&bundle, &[], &[], &[], false);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "the job exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    let certificates: u32 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("certificates "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no certificate count in stdout:\n{stdout}"));
    assert!(certificates > 100, "only {certificates} certificates loaded");
    assert!(stdout.contains("zone Europe/Berlin"), "stdout:\n{stdout}");
}

/// Writes a job that installs only busybox, whose closure is busybox and
/// libc6.
fn busybox_job(parent: &Path, keyring: &Path, extra_debian: &str) -> PathBuf {
    let toml = format!(
        "[job]\nname = \"tiny\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/busybox\", \"true\"]\n\n[image]\nfiles = []\npackages = [\"busybox\"]\n\n{}",
        debian_table(keyring, extra_debian)
    );
    write_job(parent, "tiny", &toml, &[])
}

fn pool_file(repo: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(repo.join("pool/main"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}*` in the pool"))
}

#[test]
fn tampered_deb_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let copy = repo.writable_copy(work.path());
    let deb = pool_file(&copy, "busybox_");
    let mut bytes = std::fs::read(&deb).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::remove_file(&deb).unwrap();
    std::fs::write(&deb, bytes).unwrap();

    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &format!("file://{}", copy.display()), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "checksum mismatch for package file");
}

#[test]
fn tampered_packages_index_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let copy = repo.writable_copy(work.path());
    let index_dir = copy.join("dists/bookworm/main").join(format!("binary-{}", dpkg_architecture()));
    let packages = std::fs::read_to_string(index_dir.join("Packages")).unwrap();
    let forged = packages.replacen("SHA256: ", "SHA256: 00", 1);
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        std::fs::remove_file(index_dir.join(name)).unwrap();
    }
    std::fs::write(index_dir.join("Packages"), forged).unwrap();
    support::run_checked("xz", std::process::Command::new("xz").arg("--keep").arg(index_dir.join("Packages")));

    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &format!("file://{}", copy.display()), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "checksum mismatch for index");
}

#[test]
fn wrong_keyring_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.wrong_keyring(), "");
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "invalid signature on");
}

#[test]
fn altered_release_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let copy = repo.writable_copy(work.path());
    let in_release = copy.join("dists/bookworm/InRelease");
    let text = std::fs::read_to_string(&in_release).unwrap();
    std::fs::write(&in_release, text.replacen("Origin: kuul-test", "Origin: kuul-evil", 1)).unwrap();

    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &format!("file://{}", copy.display()), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "invalid signature on");
}

#[test]
fn unsigned_repository_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let copy = repo.writable_copy(work.path());
    std::fs::remove_file(copy.join("dists/bookworm/InRelease")).unwrap();
    std::fs::remove_file(copy.join("dists/bookworm/Release.gpg")).unwrap();

    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &format!("file://{}", copy.display()), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "is not signed");
}

#[test]
fn unsigned_repository_accepted_when_trusted() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let copy = repo.writable_copy(work.path());
    std::fs::remove_file(copy.join("dists/bookworm/InRelease")).unwrap();
    std::fs::remove_file(copy.join("dists/bookworm/Release.gpg")).unwrap();

    let job = busybox_job(work.path(), &repo.keyring(), "trusted = true\n");
    let output =
        build(&job, &work.path().join("oci"), &format!("file://{}", copy.display()), &work.path().join("cache"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "the build failed\nstderr:\n{stderr}");
}

/// Makes an unsigned copy of the repository whose Release file expired in
/// 2020, and returns its `file://` URL.
fn expired_copy(repo: &DebianRepo, work: &Path) -> String {
    let copy = repo.writable_copy(work);
    let dists = copy.join("dists/bookworm");
    std::fs::remove_file(dists.join("InRelease")).unwrap();
    std::fs::remove_file(dists.join("Release.gpg")).unwrap();
    let release = std::fs::read_to_string(dists.join("Release")).unwrap();
    let expired = release.replacen('\n', "\nValid-Until: Tue, 01 Dec 2020 00:00:00 UTC\n", 1);
    std::fs::write(dists.join("Release"), expired).unwrap();
    format!("file://{}", copy.display())
}

#[test]
fn expired_release_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let mirror = expired_copy(&repo, work.path());
    let job = busybox_job(work.path(), &repo.keyring(), "trusted = true\n");
    let layout = work.path().join("oci");

    let output = build(&job, &layout, &mirror, &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "expired at 2020-12-01T00:00:00Z");
}

#[test]
fn expired_release_accepted_without_check() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let mirror = expired_copy(&repo, work.path());
    let job = busybox_job(work.path(), &repo.keyring(), "trusted = true\ncheck_valid_until = false\n");

    let output = build(&job, &work.path().join("oci"), &mirror, &work.path().join("cache"), &[]);

    assert!(output.status.success(), "the build failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn kuul_lock_replaces_damaged_lock() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    std::fs::write(job.join("kuul.lock"), "version = 2\n\n[[architecture]]\nname = \"amd64\n").unwrap();
    let layout = work.path().join("oci");
    let damaged = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &[]);
    assert_build_fails(&damaged, &layout, "line 4, column");

    let lock = kuul()
        .arg("lock")
        .arg(&job)
        .env("KUUL_DEBIAN_MIRROR", repo.file_url())
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&lock.stderr);
    let rebuilt = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &["--locked"]);

    assert!(lock.status.success(), "kuul lock failed\nstderr:\n{stderr}");
    assert!(stderr.contains("warning: replacing"), "stderr:\n{stderr}");
    assert!(rebuilt.status.success(), "kuul build --locked failed: {}", String::from_utf8_lossy(&rebuilt.stderr));
}

#[test]
fn missing_shell_hint_names_packages() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let toml = format!(
        "[job]\nname = \"shell\"\nschedule = \"@daily\"\ncommand = [\"run.sh\"]\n\n[image]\npackages = [\"busybox\"]\n\n{}",
        debian_table(&repo.keyring(), "")
    );
    let job = write_job(work.path(), "shell", &toml, &[("run.sh", "#!/bin/sh\necho hi\n", 0o755)]);
    let layout = work.path().join("oci");

    let output = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "interpreter `/bin/sh` of command `/job/run.sh` is not in the image");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`\"/bin/sh\" = \"busybox\"` to `[image.symlinks]`"), "stderr:\n{stderr}");
    assert!(stderr.contains("`image.packages`"), "stderr:\n{stderr}");
}

#[test]
fn failed_second_platform_leaves_no_kuul_directory() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    let platforms = format!("linux/{},linux/riscv64", dpkg_architecture());

    let output = kuul()
        .arg("build")
        .arg(&job)
        .args(["--platform", &platforms])
        .env("KUUL_DEBIAN_MIRROR", repo.file_url())
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .expect("start kuul build");

    assert!(!output.status.success(), "the build succeeded");
    assert!(!job.join(".kuul").exists(), "the failed build left `.kuul` behind");
}

#[test]
fn cached_package_layer_gives_same_image() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    let cache = work.path().join("cache");
    let first = build_ok(&job, &work.path().join("oci-1"), &repo.file_url(), &cache);
    let records = || std::fs::read_dir(cache.join("layers")).map(|dir| dir.count()).unwrap_or(0);
    let cached = records();

    let second = build_ok(&job, &work.path().join("oci-2"), &repo.file_url(), &cache);
    let fresh = build_ok(&job, &work.path().join("oci-3"), &repo.file_url(), &work.path().join("other-cache"));

    assert!(cached > 0, "the first build cached no layer");
    assert_eq!(records(), cached, "the second build cached its layer again");
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(fresh["digest"], first["digest"]);
}

#[test]
fn path_traversal_deb_rejected() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let toml = format!(
        "[job]\nname = \"evil\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/true\"]\n\n[image]\nfiles = []\npackages = [\"kuul-evil\"]\n\n{}",
        debian_table(&repo.keyring(), "suite = \"evil\"\ncomponents = [\"evil\"]\n")
    );
    let job = write_job(work.path(), "evil", &toml, &[]);
    let layout = work.path().join("oci");
    let output = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &[]);

    assert_build_fails(&output, &layout, "leads outside the image root");
}

#[test]
fn resolution_matches_apt_simulate() {
    let repo = DebianRepo::get();
    let server = HttpServer::start(&repo.repo());
    let mirror = server.url();
    let requested = repo.requested_packages();
    let work = tempfile::tempdir().expect("temporary directory");
    let list = requested.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ");
    let toml = format!(
        "[job]\nname = \"all\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/true\"]\n\n[image]\nfiles = []\npackages = [{list}]\n\n{}",
        debian_table(&repo.keyring(), "")
    );
    let job = write_job(work.path(), "all", &toml, &[]);

    let output = kuul().arg("lock").arg(&job).env("KUUL_DEBIAN_MIRROR", &mirror).output().expect("start kuul lock");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kuul lock failed\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    let mut kuul_plan: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect();
    kuul_plan.sort();

    let apt_plan = apt_simulate(&mirror, &repo.keyring(), &requested);

    assert!(apt_plan.len() > 20, "apt planned only {apt_plan:?}");
    assert_eq!(kuul_plan, apt_plan);
}

#[test]
fn locked_build_detects_changed_lock() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    let cache = work.path().join("cache");

    let missing = build(&job, &work.path().join("oci-1"), &repo.file_url(), &cache, &["--locked"]);
    assert_build_fails(&missing, &work.path().join("oci-1"), "kuul.lock` is missing");

    let lock = kuul().arg("lock").arg(&job).env("KUUL_DEBIAN_MIRROR", repo.file_url()).output().unwrap();
    assert!(lock.status.success(), "kuul lock failed: {}", String::from_utf8_lossy(&lock.stderr));
    let current = build(&job, &work.path().join("oci-2"), &repo.file_url(), &cache, &["--locked"]);
    assert!(
        current.status.success(),
        "--locked failed with a current lock: {}",
        String::from_utf8_lossy(&current.stderr)
    );

    let lock_path = job.join("kuul.lock");
    let text = std::fs::read_to_string(&lock_path).unwrap();
    let version_line =
        text.lines().find(|line| line.starts_with("version = \"")).expect("a package version").to_owned();
    std::fs::write(&lock_path, text.replacen(&version_line, "version = \"0.0-old\"", 1)).unwrap();
    let outdated = build(&job, &work.path().join("oci-3"), &repo.file_url(), &cache, &["--locked"]);

    assert_build_fails(&outdated, &work.path().join("oci-3"), "is out of date");
}

#[test]
fn missing_mirror_reports_sources() {
    let work = tempfile::tempdir().expect("temporary directory");
    let toml = "[job]\nname = \"nomirror\"\nschedule = \"@daily\"\ncommand = [\"/usr/bin/true\"]\n\n[image]\nfiles = []\npackages = [\"busybox\"]\n\n[debian]\nsuite = \"kuul-no-such-suite\"\n";
    let job = write_job(work.path(), "nomirror", toml, &[]);
    let layout = work.path().join("oci");
    let output = kuul()
        .arg("build")
        .arg(&job)
        .arg("--layout")
        .arg(&layout)
        .env("KUUL_CACHE_DIR", work.path().join("cache"))
        .output()
        .unwrap();

    assert_build_fails(&output, &layout, "no Debian mirror configured for suite `kuul-no-such-suite`");
}

fn dpkg_architecture() -> String {
    let output = std::process::Command::new("dpkg").arg("--print-architecture").output().expect("run dpkg");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The test repository contains no riscv64 packages, so a riscv64 build of
/// a packages job fails at the index: proof that `--platform` chooses the
/// architecture that kuul resolves packages for. `e2e_debian_foreign.rs`
/// builds for the architecture that the repository has besides the build
/// machine's.
#[test]
fn platform_flag_sets_package_architecture() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");

    let output = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &["--platform", "linux/riscv64"]);

    assert_build_fails(&output, &layout, "no Packages index for architecture `riscv64`");
}

#[test]
fn second_platform_without_index_fails() {
    let repo = DebianRepo::get();
    let work = tempfile::tempdir().expect("temporary directory");
    let job = busybox_job(work.path(), &repo.keyring(), "");
    let layout = work.path().join("oci");
    let platforms = format!("linux/{},linux/riscv64", dpkg_architecture());

    let output = build(&job, &layout, &repo.file_url(), &work.path().join("cache"), &["--platform", &platforms]);

    assert_build_fails(&output, &layout, "no Packages index for architecture `riscv64`");
}
