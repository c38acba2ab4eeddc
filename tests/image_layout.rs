//! Builds images into a temporary OCI layout and reads them back with the
//! real `skopeo` and `umoci`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use kuul::image::archive::write_docker_archive;
use kuul::image::layout::Layout;
use kuul::image::{BuiltImage, ImageSettings, build};
use kuul::report::SilentReporter;
use kuul::sources::{Content, Entry, EntryKind, LayerContent};

/// Returns the path of `tool`, failing the test when it is not installed.
fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|directory| directory.join(tool))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!("`{tool}` was not found on PATH\nhint: run `scripts/setup-test-env` to install the test tools")
    })
}

/// Runs a command and returns its stdout, failing the test with its stderr.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|error| panic!("failed to start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

fn settings(created: i64) -> ImageSettings {
    ImageSettings {
        entrypoint: vec!["/app/run.sh".to_string()],
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()],
        user: "65532:65532".to_string(),
        workdir: "/app".to_string(),
        labels: BTreeMap::from([("dev.kuul.job".to_string(), "smoke".to_string())]),
        annotations: BTreeMap::from([("org.opencontainers.image.title".to_string(), "smoke".to_string())]),
        created,
        architecture: "amd64".to_string(),
        variant: None,
        os: "linux".to_string(),
    }
}

fn inline_layers() -> Vec<LayerContent> {
    let base = LayerContent {
        description: "system files".to_string(),
        entries: vec![
            Entry::symlink("/bin", "usr/bin"),
            Entry::directory("/usr/bin"),
            Entry::inline_file(
                "/etc/passwd",
                b"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n".to_vec(),
                0o644,
            ),
            Entry::inline_file("/etc/group", b"root:x:0:\nnonroot:x:65532:\n".to_vec(), 0o644),
            Entry { mode: 0o1777, ..Entry::directory("/tmp") },
        ],
    };
    let job = LayerContent {
        description: "job files".to_string(),
        entries: vec![
            Entry {
                uid: 65532,
                gid: 65532,
                mode: 0o750,
                ..Entry::inline_file("/app/run.sh", b"#!/bin/sh\necho smoke ok\n".to_vec(), 0o750)
            },
            Entry::symlink("/app/latest", "run.sh"),
        ],
    };
    vec![base, job]
}

/// Adds a layer with a host file placed through the `/bin` symlink.
fn host_layer(host_file: &Path) -> LayerContent {
    let size = fs::metadata(host_file).unwrap().len();
    LayerContent {
        description: "host binaries".to_string(),
        entries: vec![Entry {
            path: "/bin/tool".to_string(),
            kind: EntryKind::File { content: Content::Host(host_file.to_path_buf()), size },
            mode: 0o755,
            uid: 0,
            gid: 0,
        }],
    }
}

/// Builds the test image with a host file into `layout_dir`, tagged `smoke`.
fn build_test_image(layout_dir: &Path, host_file: &Path) -> (Layout, BuiltImage) {
    let mut layers = inline_layers();
    layers.insert(1, host_layer(host_file));

    let layout = Layout::open_or_create(layout_dir).unwrap();
    let image = build(&layout, &layers, &settings(1_700_000_000), &SilentReporter).unwrap();
    layout.tag(&image, "smoke").unwrap();
    (layout, image)
}

fn write_host_file(dir: &Path) -> PathBuf {
    let path = dir.join("tool");
    let content: Vec<u8> = (0..200_000u32).map(|index| (index * 7 % 251) as u8).collect();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn skopeo_inspects_oci_layout() {
    let skopeo = require_tool("skopeo");
    let temp = tempfile::tempdir().unwrap();
    let (layout, image) = build_test_image(&temp.path().join("layout"), &write_host_file(temp.path()));

    let output = run(Command::new(skopeo).arg("inspect").arg(format!("oci:{}:smoke", layout.dir().display())));
    let inspected: serde_json::Value = serde_json::from_str(&output).unwrap();

    assert_eq!(inspected["Digest"], image.manifest.digest.as_str());
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Labels"]["dev.kuul.job"], "smoke");
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 3);
}

#[test]
fn umoci_unpacks_files_modes_owners() {
    let umoci = require_tool("umoci");
    let temp = tempfile::tempdir().unwrap();
    let host_file = write_host_file(temp.path());
    let (layout, _) = build_test_image(&temp.path().join("layout"), &host_file);
    let bundle = temp.path().join("bundle");

    run(Command::new(umoci).arg("unpack").arg("--image").arg(format!("{}:smoke", layout.dir().display())).arg(&bundle));
    let rootfs = bundle.join("rootfs");

    let tool = fs::symlink_metadata(rootfs.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o755);
    assert_eq!(fs::read(rootfs.join("usr/bin/tool")).unwrap(), fs::read(&host_file).unwrap());

    let script = fs::symlink_metadata(rootfs.join("app/run.sh")).unwrap();
    assert_eq!(script.mode() & 0o7777, 0o750);
    assert_eq!((script.uid(), script.gid()), (65532, 65532));
    assert_eq!(fs::read_to_string(rootfs.join("app/run.sh")).unwrap(), "#!/bin/sh\necho smoke ok\n");

    assert_eq!(fs::read_link(rootfs.join("bin")).unwrap(), Path::new("usr/bin"));
    assert_eq!(fs::read_link(rootfs.join("app/latest")).unwrap(), Path::new("run.sh"));

    let tmp = fs::symlink_metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);

    let app = fs::symlink_metadata(rootfs.join("app")).unwrap();
    assert!(app.is_dir());
    assert_eq!(app.mode() & 0o7777, 0o755);
    assert_eq!((app.uid(), app.gid()), (0, 0));
}

#[test]
fn skopeo_reads_docker_and_oci_archive() {
    let skopeo = require_tool("skopeo");
    let temp = tempfile::tempdir().unwrap();
    let (layout, image) = build_test_image(&temp.path().join("layout"), &write_host_file(temp.path()));
    let archive = temp.path().join("smoke.tar");

    write_docker_archive(&layout, &image, "localhost:5000/ops/smoke:1.0", &archive).unwrap();

    let docker = run(Command::new(&skopeo).arg("inspect").arg(format!("docker-archive:{}", archive.display())));
    let docker: serde_json::Value = serde_json::from_str(&docker).unwrap();
    assert_eq!(docker["Os"], "linux");
    assert_eq!(docker["Layers"].as_array().unwrap().len(), 3);

    let oci = run(Command::new(&skopeo).arg("inspect").arg(format!("oci-archive:{}", archive.display())));
    let oci: serde_json::Value = serde_json::from_str(&oci).unwrap();
    assert_eq!(oci["Digest"], image.manifest.digest.as_str());
    assert_eq!(oci["Labels"]["dev.kuul.job"], "smoke");
}

#[test]
fn docker_archive_is_deterministic() {
    let temp = tempfile::tempdir().unwrap();
    let (layout, image) = build_test_image(&temp.path().join("layout"), &write_host_file(temp.path()));
    let first = temp.path().join("first.tar");
    let second = temp.path().join("second.tar");

    write_docker_archive(&layout, &image, "smoke:1.0", &first).unwrap();
    write_docker_archive(&layout, &image, "smoke:1.0", &second).unwrap();

    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());
}

/// Pins the byte format: any change to tar headers, gzip settings or JSON
/// layout changes this digest and must be deliberate.
#[test]
fn inline_image_digest_is_pinned() {
    let temp = tempfile::tempdir().unwrap();
    let layout = Layout::open_or_create(temp.path()).unwrap();

    let image = build(&layout, &inline_layers(), &settings(0), &SilentReporter).unwrap();

    assert_eq!(image.manifest.digest, "sha256:edad523771ea04becad485ffab1643d8b2c82330aa4a25defb2cd9c1ffdbd467");
}
