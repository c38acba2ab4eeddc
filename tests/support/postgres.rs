//! A real PostgreSQL 15 server in a temporary directory, for the pg-backup
//! example.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{effective_uid, free_port, require, run_checked};

/// Where Debian's postgresql-15 package installs the server programs.
pub const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The system user that owns the data directory when the tests run as
/// root, because initdb and postgres exit with an error when run as root.
const SYSTEM_USER: &str = "postgres";

/// How many ports to try when the server fails to bind one.
const START_ATTEMPTS: usize = 5;

/// A PostgreSQL server listening on 127.0.0.1 only, with trust
/// authentication, the superuser `postgres` and one empty database. It is
/// stopped with `pg_ctl stop -m fast` and its directory removed on drop.
pub struct Postgres {
    dir: TempDir,
    port: u16,
    database: String,
}

impl Postgres {
    /// Runs initdb in a temporary directory, starts the server on a free
    /// port and creates the database `database`.
    pub fn start(database: &str) -> Postgres {
        require(&format!("{POSTGRES_BIN}/initdb"));
        require(&format!("{POSTGRES_BIN}/pg_ctl"));
        require("psql");

        let dir = tempfile::tempdir().expect("temporary directory");
        if effective_uid() == 0 {
            give_to_system_user(dir.path());
        }

        init_cluster(dir.path());

        let port = start_server(dir.path());
        let postgres = Postgres { dir, port, database: database.to_owned() };

        postgres.psql_in("postgres", &format!("CREATE DATABASE \"{database}\""));
        postgres
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &'static str {
        SYSTEM_USER
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs `sql` in the test database with `psql` and returns its unaligned,
    /// tuples-only output. Panics with psql's output when a statement fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in(&self.database, sql)
    }

    fn psql_in(&self, database: &str, sql: &str) -> String {
        let output = run_checked(
            "psql",
            Command::new("psql")
                .args(["--no-psqlrc", "--tuples-only", "--no-align"])
                .args(["--set", "ON_ERROR_STOP=1"])
                .args(["--host", self.host()])
                .args(["--port", &self.port.to_string()])
                .args(["--username", SYSTEM_USER])
                .args(["--dbname", database])
                .args(["--command", sql])
                .env_remove("PGPASSWORD")
                .env_remove("PGSERVICE"),
        );
        String::from_utf8(output.stdout).expect("psql output is UTF-8")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = data_dir(self.dir.path());
        let _ = as_data_owner(&format!("{POSTGRES_BIN}/pg_ctl"))
            .args(["stop", "--mode", "fast", "--wait", "--pgdata"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn log_file(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

/// Returns a command that runs `program` as the owner of the data
/// directory: the `postgres` system user when the tests run as root, else
/// the current user.
fn as_data_owner(program: &str) -> Command {
    if effective_uid() == 0 {
        require("runuser");
        let mut command = Command::new("runuser");
        command.args(["-u", SYSTEM_USER, "--", program]);
        command
    } else {
        Command::new(program)
    }
}

fn give_to_system_user(dir: &Path) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let entry = passwd
        .lines()
        .find(|line| line.starts_with(&format!("{SYSTEM_USER}:")))
        .unwrap_or_else(|| panic!("user `{SYSTEM_USER}` does not exist; run `scripts/setup-test-env` (as root)"));

    // The fields are name, password, uid, gid, ...
    let fields: Vec<&str> = entry.split(':').collect();
    let uid: u32 = fields[2].parse().expect("numeric uid in /etc/passwd");
    let gid: u32 = fields[3].parse().expect("numeric gid in /etc/passwd");
    chown(dir, Some(uid), Some(gid)).expect("chown the PostgreSQL directory");
}

fn init_cluster(dir: &Path) {
    run_checked(
        "initdb",
        as_data_owner(&format!("{POSTGRES_BIN}/initdb"))
            .args(["--auth", "trust", "--username", SYSTEM_USER])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-sync"])
            .arg("--pgdata")
            .arg(data_dir(dir)),
    );
}

/// Starts the server and returns its port. The Unix socket goes into `dir`
/// rather than /run/postgresql, so that no system directory is needed.
fn start_server(dir: &Path) -> u16 {
    let mut last_failure = String::new();

    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off", dir.display());

        let output = as_data_owner(&format!("{POSTGRES_BIN}/pg_ctl"))
            .args(["start", "--wait", "--timeout", "60"])
            .arg("--pgdata")
            .arg(data_dir(dir))
            .arg("--log")
            .arg(log_file(dir))
            .args(["-o", &options])
            .stdin(Stdio::null())
            .output()
            .expect("start pg_ctl");

        if output.status.success() {
            return port;
        }

        last_failure = format!(
            "pg_ctl start failed with {} on port {port}\nstderr:\n{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(log_file(dir)).unwrap_or_default(),
        );
    }

    panic!("PostgreSQL did not start after {START_ATTEMPTS} attempts: {last_failure}");
}
