//! End-to-end tests of `kuul build`: reproducible digests, the JSON summary
//! and the docker-archive tarball.

mod support;

use std::path::Path;
use std::process::Command;

use support::{build_json, copy_example, run_checked};

/// The `SOURCE_DATE_EPOCH` that the reproducibility tests build with.
const SOURCE_DATE_EPOCH: &str = "1700000000";

/// The manifest digest of the job that [`write_self_contained_job`] writes,
/// built with `SOURCE_DATE_EPOCH=1700000000`. The job copies nothing from the
/// build machine, so the digest depends only on kuul's output format: a change
/// here means every user's images change digest too. The image config names
/// the build machine's architecture, so the value holds for amd64 machines.
const PINNED_DIGEST: &str = "sha256:91a52654b1d402191e281487853a03eb4faa9098412701d7feba4ec88286b27a";

#[test]
fn build_digest_ignores_mtimes_and_umask() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let first = build_json(&job_dir, &work.path().join("first"), &[("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)]);

    touch_all(&job_dir, "2001-02-03 04:05:06");
    let second = build_under_umask_077(&job_dir, &work.path().join("second"));

    assert!(support::is_sha256_digest(first["digest"].as_str().unwrap_or_default()), "first build: {first:#}");
    assert_eq!(first["digest"], second["digest"], "digests differ\nfirst build: {first:#}\nsecond build: {second:#}");
}

#[test]
fn build_digest_matches_pinned_value() {
    if oci_architecture() != "amd64" {
        panic!("the pinned digest is for amd64 builds; this machine is `{}`", oci_architecture());
    }
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = work.path().join("pinned");
    write_self_contained_job(&job_dir);

    let summary = build_json(&job_dir, &work.path().join("layout"), &[("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)]);

    assert_eq!(
        summary["digest"].as_str().unwrap_or_default(),
        PINNED_DIGEST,
        "the image format changed\nbuild: {summary:#}"
    );
}

/// Writes a job whose files are all in its directory: a script whose `#!`
/// interpreter is another job file, so the build needs no host program.
fn write_self_contained_job(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;

    std::fs::create_dir_all(dir.join("data")).expect("create the job directory");
    std::fs::write(
        dir.join("kuul.toml"),
        "[job]\nname = \"pinned\"\nschedule = \"0 3 * * *\"\ncommand = [\"run.sh\", \"--verbose\"]\n\n\
         [image]\nlabels = { team = \"ops\" }\n",
    )
    .expect("write kuul.toml");
    std::fs::write(dir.join("run.sh"), "#!/job/interp\necho pinned\n").expect("write run.sh");
    std::fs::write(dir.join("interp"), "not a real interpreter\n").expect("write interp");
    std::fs::write(dir.join("data/rows.csv"), "id,name\n1,alpha\n").expect("write data/rows.csv");
    for (file, mode) in [("run.sh", 0o755), ("interp", 0o755), ("data/rows.csv", 0o600)] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(mode)).expect("set the mode");
    }
}

#[test]
fn build_json_describes_layout() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    let layout = work.path().join("layout");

    let summary = build_json(&job_dir, &layout, &[]);

    assert!(support::is_sha256_digest(summary["digest"].as_str().unwrap_or_default()), "{summary:#}");
    assert!(summary["size"].as_u64().unwrap_or(0) > 0, "{summary:#}");
    assert_eq!(summary["tag"], "latest", "{summary:#}");
    assert_eq!(Path::new(summary["layout"].as_str().unwrap_or_default()), layout, "{summary:#}");
    assert!(layout.join("index.json").is_file(), "no index.json in the layout");
    assert!(layout.join("oci-layout").is_file(), "no oci-layout in the layout");

    let layers = summary["layers"].as_array().expect("`layers` array");
    assert!(!layers.is_empty(), "{summary:#}");
    for layer in layers {
        assert!(support::is_sha256_digest(layer["digest"].as_str().unwrap_or_default()), "{layer:#}");
        assert!(layer["size"].as_u64().unwrap_or(0) > 0, "{layer:#}");
        assert!(layer["description"].is_string(), "{layer:#}");
    }
}

#[test]
fn rebuild_removes_unused_blobs() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = work.path().join("job");
    write_self_contained_job(&job_dir);
    let layout = work.path().join("layout");
    build_json(&job_dir, &layout, &[]);
    let count = || std::fs::read_dir(layout.join("blobs/sha256")).unwrap().count();
    let first = count();

    std::fs::write(job_dir.join("run.sh"), "#!/job/interp\necho changed\n").unwrap();
    build_json(&job_dir, &layout, &[]);

    assert_eq!(count(), first, "the layout kept the blobs of the first build");
}

#[test]
fn build_writes_default_layout_in_job_dir() {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());

    let output = support::kuul().arg("build").arg(&job_dir).output().expect("start kuul build");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "kuul build failed with {}\nstderr:\n{stderr}", output.status);
    assert!(job_dir.join(".kuul/oci/index.json").is_file(), "no layout at .kuul/oci");
    assert!(stdout.contains("sha256:"), "the summary has no digest:\n{stdout}");
}

#[test]
fn build_tarball_reads_with_skopeo() {
    support::require("skopeo");
    let work = tempfile::tempdir().expect("temporary directory");
    let (tarball, summary) = build_hello_tarball(work.path());

    let inspect = run_checked(
        "skopeo inspect",
        Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", tarball.display())),
    );
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("skopeo inspect prints JSON");

    let layer_count = summary["layers"].as_array().map(Vec::len);
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), layer_count, "skopeo: {inspected:#}\nkuul: {summary:#}");
    assert_eq!(inspected["Os"], "linux", "{inspected:#}");
    assert_eq!(inspected["Architecture"], oci_architecture(), "{inspected:#}");
}

#[test]
fn build_tarball_loads_with_podman() {
    support::require("podman");
    let work = tempfile::tempdir().expect("temporary directory");
    let (tarball, summary) = build_hello_tarball(work.path());
    assert_eq!(summary["tarball"], tarball.to_str().expect("UTF-8 path"), "{summary:#}");

    // A private store, so the test neither needs nor touches the machine's
    // container storage.
    let storage_conf = work.path().join("storage.conf");
    std::fs::write(
        &storage_conf,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/graph\"\n",
            work.path().display()
        ),
    )
    .expect("write storage.conf");
    let podman = |args: &[&str]| {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_STORAGE_CONF", &storage_conf).args(args);
        run_checked(&format!("podman {}", args.join(" ")), &mut command)
    };

    let load = podman(&["load", "--input", tarball.to_str().expect("UTF-8 path")]);
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);

    let loaded = String::from_utf8_lossy(&load.stdout);
    assert!(loaded.contains("hello:latest"), "podman load output:\n{loaded}");
    let listed = String::from_utf8_lossy(&images.stdout);
    assert!(listed.lines().any(|line| line.ends_with("/hello:latest")), "podman images:\n{listed}");
}

/// Builds a copy of `images/hello` under `work` with `--tarball` and returns
/// the archive's path and the JSON summary.
fn build_hello_tarball(work: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let job_dir = copy_example("hello", work);
    let tarball = work.join("hello.tar");

    let output = support::kuul()
        .arg("build")
        .arg(&job_dir)
        .arg("--tarball")
        .arg(&tarball)
        .arg("--layout")
        .arg(work.join("layout"))
        .args(["-o", "json"])
        .output()
        .expect("start kuul build");
    let summary = support::parse_json_stdout("kuul build --tarball", &output);
    (tarball, summary)
}

/// Sets the access and modification time of every file and directory under
/// `dir` with `touch -d`.
fn touch_all(dir: &Path, time: &str) {
    run_checked(
        "touch",
        Command::new("find").arg(dir).args(["-exec", "touch", "--no-dereference", "-d", time, "{}", "+"]),
    );
}

/// Runs `kuul build -o json` through `sh -c 'umask 077; exec kuul ...'`, so
/// that every file kuul creates would be private without normalized modes.
fn build_under_umask_077(job_dir: &Path, layout: &Path) -> serde_json::Value {
    let output = Command::new("sh")
        .arg("-c")
        .arg("umask 077; exec \"$0\" build \"$1\" --layout \"$2\" -o json")
        .arg(support::kuul_path())
        .arg(job_dir)
        .arg(layout)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .env_remove("KUUL_REGISTRY")
        .output()
        .expect("start sh");

    support::parse_json_stdout("kuul build under umask 077", &output)
}

/// Returns the OCI name of the architecture these tests run on, which is
/// the architecture of the host binaries in the image.
fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
