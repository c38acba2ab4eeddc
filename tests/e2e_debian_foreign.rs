//! End-to-end tests of Debian packages for a foreign architecture: the test
//! repository that `scripts/make-test-debian-repo` builds has busybox and
//! its closure for arm64 (amd64 on an arm64 machine), so a job built with
//! `--platform linux/FOREIGN` installs them, and qemu-user runs the result.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{DebianRepo, HttpServer, apt_simulate_for_architecture, kuul, parse_json_stdout, run_checked};

/// The tag `kuul build` gives an image without `image.tag`.
const BUILD_TAG: &str = "latest";

/// `e_machine` values from the ELF specification.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The job script. It uses shell builtins only: under qemu-user a command
/// that the shell executes as a new program would run the build machine's
/// binary of that name, not the image's.
const SCRIPT: &str = "#!/bin/sh\nset -eu\nanswer=$((6 * 7))\necho \"foreign job answer $answer\"\n";

/// Names and ELF values of one foreign architecture.
struct Foreign {
    /// The Debian architecture name, which is also the OCI name for the
    /// two architectures that the test repository can contain.
    debian: String,
    /// The qemu-user program that runs its binaries.
    qemu: &'static str,
    /// The ELF `e_machine` of its binaries.
    elf_machine: u16,
    /// What `uname -m` prints on it.
    uname_machine: &'static str,
}

impl Foreign {
    fn of(repo: &DebianRepo) -> Foreign {
        let debian = repo.foreign_architecture();
        match debian.as_str() {
            "arm64" => Foreign { debian, qemu: "qemu-aarch64", elf_machine: EM_AARCH64, uname_machine: "aarch64" },
            "amd64" => Foreign { debian, qemu: "qemu-x86_64", elf_machine: EM_X86_64, uname_machine: "x86_64" },
            other => panic!("the test repository's foreign architecture `{other}` is neither `arm64` nor `amd64`"),
        }
    }

    fn platform(&self) -> String {
        format!("linux/{}", self.debian)
    }
}

/// Writes a job that installs busybox, links `/bin/sh` to it and runs
/// [`SCRIPT`], and returns its directory.
fn write_busybox_job(parent: &Path, keyring: &Path, extra_debian: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;

    let dir = parent.join("foreign");
    std::fs::create_dir_all(&dir).expect("create the job directory");
    let toml = format!(
        "[job]\nname = \"foreign\"\nschedule = \"@daily\"\ncommand = [\"run.sh\"]\n\n\
         [image]\nfiles = [\"run.sh\"]\npackages = [\"busybox\"]\n\n\
         [image.symlinks]\n\"/bin/sh\" = \"busybox\"\n\n\
         [debian]\nkeyring = \"{}\"\n{extra_debian}",
        keyring.display()
    );
    std::fs::write(dir.join("kuul.toml"), toml).expect("write kuul.toml");
    std::fs::write(dir.join("run.sh"), SCRIPT).expect("write run.sh");
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).expect("chmod run.sh");
    dir
}

/// Builds the busybox job for the foreign platform from the test repository
/// over loopback HTTP, and returns the job directory and the layout.
fn build_foreign_job(work: &Path, repo: &DebianRepo, foreign: &Foreign) -> (PathBuf, PathBuf) {
    let server = HttpServer::start(&repo.repo());
    let job = write_busybox_job(work, &repo.keyring(), "");
    let layout = work.join("oci");

    let output = kuul()
        .arg("build")
        .arg(&job)
        .arg("--layout")
        .arg(&layout)
        .args(["--platform", &foreign.platform(), "-o", "json"])
        .env("KUUL_DEBIAN_MIRROR", server.url())
        .env("KUUL_CACHE_DIR", work.join("cache"))
        .output()
        .expect("start kuul build");
    parse_json_stdout("kuul build --platform", &output);

    (job, layout)
}

/// Returns the `e_machine` field of the ELF file at `path`.
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("read `{}`: {error}", path.display()));
    assert!(bytes.starts_with(b"\x7fELF"), "`{}` has no ELF magic number", path.display());
    assert!(bytes.len() >= 20, "`{}` is too short for an ELF header", path.display());

    // EI_DATA at offset 5 is 1 for little-endian and 2 for big-endian.
    let field = [bytes[18], bytes[19]];
    match bytes[5] {
        1 => u16::from_le_bytes(field),
        2 => u16::from_be_bytes(field),
        other => panic!("`{}` has the invalid ELF data encoding {other}", path.display()),
    }
}

/// Collects every string value of an `architecture` key in `value`, at any
/// depth, so the check does not depend on where kuul.lock keeps them.
fn lock_architectures(value: &toml::Value, found: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, item) in table {
                match item {
                    toml::Value::String(architecture) if key == "architecture" => found.push(architecture.clone()),
                    _ => lock_architectures(item, found),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| lock_architectures(item, found)),
        _ => {}
    }
}

#[test]
fn foreign_build_installs_foreign_packages() {
    support::require_root();
    let repo = DebianRepo::get();
    let foreign = Foreign::of(&repo);
    let work = tempfile::tempdir().expect("temporary directory");

    let (job, layout) = build_foreign_job(work.path(), &repo, &foreign);

    let config_text =
        support::run_tool("skopeo", &["inspect", "--config", &format!("oci:{}:{BUILD_TAG}", layout.display())]);
    let config: Value = serde_json::from_str(&config_text).expect("skopeo prints the config as JSON");
    assert_eq!(config["architecture"], foreign.debian.as_str(), "image config: {config:#}");
    assert_eq!(config["os"], "linux", "image config: {config:#}");

    let lock_text = std::fs::read_to_string(job.join("kuul.lock")).expect("read kuul.lock");
    let lock: toml::Value = toml::from_str(&lock_text).expect("kuul.lock is TOML");
    let mut architectures = Vec::new();
    lock_architectures(&lock, &mut architectures);
    assert!(architectures.contains(&foreign.debian), "kuul.lock names no `{}`:\n{lock_text}", foreign.debian);
    assert!(
        architectures.iter().all(|architecture| *architecture == foreign.debian || architecture == "all"),
        "kuul.lock names another architecture than `{}` and `all`:\n{lock_text}",
        foreign.debian
    );

    let bundle = work.path().join("bundle");
    support::umoci_unpack(&layout, BUILD_TAG, &bundle);
    let busybox = bundle.join("rootfs/usr/bin/busybox");
    assert_eq!(elf_machine(&busybox), foreign.elf_machine, "`/usr/bin/busybox` is built for another machine");
}

#[test]
fn foreign_image_runs_under_qemu() {
    support::require_root();
    let repo = DebianRepo::get();
    let foreign = Foreign::of(&repo);
    support::require(foreign.qemu);
    let work = tempfile::tempdir().expect("temporary directory");
    let (_job, layout) = build_foreign_job(work.path(), &repo, &foreign);
    let bundle = work.path().join("bundle");
    support::umoci_unpack(&layout, BUILD_TAG, &bundle);
    let rootfs = bundle.join("rootfs");

    // `-L` makes qemu load the image's dynamic loader and libraries.
    let qemu = |program: &str, args: &[&str]| {
        let mut command = Command::new(foreign.qemu);
        command.arg("-L").arg(&rootfs).arg(rootfs.join(program.trim_start_matches('/'))).args(args);
        let output = run_checked(&format!("{} {program} {}", foreign.qemu, args.join(" ")), &mut command);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let machine = qemu("/usr/bin/busybox", &["uname", "-m"]);
    assert_eq!(machine.trim(), foreign.uname_machine, "busybox runs on another machine");

    // Run the image's command as the kernel would: the interpreter from its
    // `#!` line, with the script's path as the argument.
    let config: Value = serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
        .expect("the bundle's config.json is JSON");
    let command = config["process"]["args"][0].as_str().expect("the bundle has a command");
    let script_path = rootfs.join(command.trim_start_matches('/'));
    let script = std::fs::read_to_string(&script_path).expect("read the job script");
    let interpreter = script.lines().next().and_then(|line| line.strip_prefix("#!")).expect("the script has `#!`");
    assert_eq!(interpreter, "/bin/sh", "the job script changed on its way into the image");
    let stdout = qemu(interpreter, &[script_path.to_str().expect("the script path is UTF-8")]);
    assert_eq!(stdout, "foreign job answer 42\n", "the job script printed something else");
}

#[test]
fn foreign_resolution_matches_apt_simulate() {
    let repo = DebianRepo::get();
    let foreign = Foreign::of(&repo);
    let server = HttpServer::start(&repo.repo());
    let work = tempfile::tempdir().expect("temporary directory");
    let job = write_busybox_job(work.path(), &repo.keyring(), &format!("architecture = \"{}\"\n", foreign.debian));

    let output =
        kuul().arg("lock").arg(&job).env("KUUL_DEBIAN_MIRROR", server.url()).output().expect("start kuul lock");
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

    let apt_plan =
        apt_simulate_for_architecture(&server.url(), &repo.keyring(), &repo.foreign_packages(), &foreign.debian);

    assert!(apt_plan.len() >= 2, "apt planned only {apt_plan:?}");
    assert_eq!(kuul_plan, apt_plan);
}

/// Returns the `Architecture` field of every stanza in a Packages index.
fn index_architectures(index: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(index).unwrap_or_else(|error| panic!("read `{}`: {error}", index.display()));
    text.lines().filter_map(|line| line.strip_prefix("Architecture: ")).map(str::to_owned).collect()
}

#[test]
fn each_index_lists_own_architecture() {
    let repo = DebianRepo::get();
    let foreign = Foreign::of(&repo);
    let dists = repo.repo().join("dists/bookworm");
    let native = support::run_tool("dpkg", &["--print-architecture"]).trim().to_owned();

    let release = std::fs::read_to_string(dists.join("Release")).expect("read Release");
    let listed =
        release.lines().find_map(|line| line.strip_prefix("Architectures: ")).expect("Release lists architectures");
    assert_eq!(listed.split_whitespace().collect::<Vec<_>>(), [native.as_str(), foreign.debian.as_str()]);

    for architecture in [&native, &foreign.debian] {
        let index = dists.join(format!("main/binary-{architecture}/Packages"));
        let found = index_architectures(&index);
        assert!(found.contains(architecture), "`{}` lists no `{architecture}` package", index.display());
        let others: Vec<&String> = found.iter().filter(|found| *found != architecture && *found != "all").collect();
        assert!(others.is_empty(), "`{}` lists packages of {others:?}", index.display());
        assert!(
            release.contains(&format!(" main/binary-{architecture}/Packages.xz\n")),
            "Release has no checksum for the {architecture} Packages.xz"
        );
    }
}
