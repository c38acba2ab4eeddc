//! The signed local Debian repository that `scripts/make-test-debian-repo`
//! builds, a loopback HTTP server for it, and apt's own resolution against
//! it for comparison.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require, run_checked};

/// Where `scripts/setup-test-env` builds the repository, unless
/// `KUUL_TEST_DEBIAN_REPO` names another directory.
const DEFAULT_REPO_DIR: &str = "/var/cache/kuul-test/debian-repo";

/// The test repository: `repo()` is the mirror root, `keyring()` signs it.
pub struct DebianRepo {
    dir: PathBuf,
}

impl DebianRepo {
    /// Returns the repository, panicking with the setup command when it was
    /// not built.
    pub fn get() -> DebianRepo {
        let dir = std::env::var_os("KUUL_TEST_DEBIAN_REPO")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_REPO_DIR));
        if !dir.join("complete").exists() {
            panic!(
                "the test Debian repository `{}` is missing; run `scripts/setup-test-env` (as root), which calls `scripts/make-test-debian-repo`",
                dir.display()
            );
        }
        DebianRepo { dir }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    pub fn keyring(&self) -> PathBuf {
        self.dir.join("keyring.gpg")
    }

    pub fn wrong_keyring(&self) -> PathBuf {
        self.dir.join("wrong-keyring.gpg")
    }

    /// Returns the package set the repository was built for.
    pub fn requested_packages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("packages.txt")).expect("read packages.txt");
        text.lines().map(str::to_owned).collect()
    }

    /// Returns the Debian name of the architecture that the repository has
    /// besides the build machine's: `arm64`, or `amd64` on an arm64 machine.
    pub fn foreign_architecture(&self) -> String {
        let path = self.dir.join("foreign-architecture");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "cannot read `{}` ({error}), so an older `scripts/make-test-debian-repo` built the test Debian repository\nhint: run `scripts/setup-test-env` (as root) to rebuild it",
                path.display()
            )
        });
        text.trim().to_owned()
    }

    /// Returns the package set fetched for [`DebianRepo::foreign_architecture`].
    pub fn foreign_packages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("foreign-packages.txt")).expect("read foreign-packages.txt");
        text.lines().map(str::to_owned).collect()
    }

    pub fn file_url(&self) -> String {
        format!("file://{}", self.repo().display())
    }

    /// Copies the repository into `destination` for tampering: `dists/` is
    /// copied, and every pool file becomes a symlink to the original, so a
    /// test can replace single files.
    pub fn writable_copy(&self, destination: &Path) -> PathBuf {
        let copy = destination.join("repo");
        super::copy_dir(&self.repo().join("dists"), &copy.join("dists"));

        for component in ["main", "evil"] {
            let source = self.repo().join("pool").join(component);
            let target = copy.join("pool").join(component);
            std::fs::create_dir_all(&target).expect("create pool directory");
            for entry in std::fs::read_dir(&source).expect("read pool") {
                let entry = entry.expect("pool entry");
                std::os::unix::fs::symlink(entry.path(), target.join(entry.file_name())).expect("link pool file");
            }
        }
        copy
    }
}

/// `python3 -m http.server` serving a directory on 127.0.0.1; stopped on drop.
pub struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    pub fn start(directory: &Path) -> HttpServer {
        require("python3");

        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1"])
                .arg(port.to_string())
                .arg("--directory")
                .arg(directory)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start python3 -m http.server");

            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpServer { child, port };
                }
                if child.try_wait().expect("poll http.server").is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("python3 -m http.server did not start on 127.0.0.1");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `apt-get install --no-install-recommends --simulate PACKAGES`
/// against the repository at `mirror` with an empty dpkg status, so that
/// apt plans a fresh install, and returns the `(name, version)` pairs it
/// would install, sorted.
pub fn apt_simulate(mirror: &str, keyring: &Path, packages: &[String]) -> Vec<(String, String)> {
    apt_simulate_for_architecture(mirror, keyring, packages, &dpkg_architecture())
}

/// Runs [`apt_simulate`] with `architecture` (a Debian name) as apt's only
/// architecture.
pub fn apt_simulate_for_architecture(
    mirror: &str,
    keyring: &Path,
    packages: &[String],
    architecture: &str,
) -> Vec<(String, String)> {
    require("apt-get");

    let work = tempfile::tempdir().expect("temporary directory");
    let root = work.path();
    for sub in ["lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d"]
    {
        std::fs::create_dir_all(root.join(sub)).expect("create apt directory");
    }
    std::fs::write(root.join("status"), "").expect("write empty status");
    std::fs::write(
        root.join("etc/sources.list"),
        format!("deb [signed-by={}] {mirror} bookworm main\n", keyring.display()),
    )
    .expect("write sources.list");

    let options: Vec<String> = vec![
        format!("Dir::State::status={}", root.join("status").display()),
        format!("Dir::State::Lists={}", root.join("lists").display()),
        format!("Dir::Cache={}", root.join("cache").display()),
        format!("Dir::Etc={}", root.join("etc").display()),
        "Debug::NoLocking=1".to_owned(),
        format!("APT::Architecture={architecture}"),
        format!("APT::Architectures::={architecture}"),
    ];
    let apt = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        for option in &options {
            command.arg("-o").arg(option);
        }
        command.args(args);
        command
    };

    run_checked("apt-get update", &mut apt(&["update"]));
    let mut install = apt(&["install", "--no-install-recommends", "--simulate"]);
    install.args(packages);
    let output = run_checked("apt-get install --simulate", &mut install);

    // Lines look like `Inst libc6 (2.36-9+deb12u10 kuul-test:bookworm [amd64])`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut planned: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("Inst "))
        .filter_map(|rest| {
            let (name, rest) = rest.split_once(" (")?;
            let version = rest.split_whitespace().next()?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect();
    planned.sort();
    planned
}

fn dpkg_architecture() -> String {
    let output = run_checked("dpkg --print-architecture", Command::new("dpkg").arg("--print-architecture"));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
