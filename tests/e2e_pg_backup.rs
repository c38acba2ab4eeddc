//! End-to-end tests of the pg-backup example: publish the image, run it
//! under runc on the host network against a real PostgreSQL 15, and check
//! the dump it writes.

mod support;

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use support::{Postgres, Registry, copy_example, publish, pull_and_unpack, runc_run};

/// The uid and gid that kuul images run as.
const NONROOT_ID: u32 = 65532;

#[test]
fn pg_backup_dumps_table_rows() {
    support::require_root();
    let postgres = Postgres::start("shop");
    postgres.psql("CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL)");
    postgres.psql("INSERT INTO orders VALUES (1, 'ada-lovelace'), (2, 'grace-hopper')");

    let work = tempfile::tempdir().expect("temporary directory");
    let bundle = publish_and_unpack(work.path());
    let backup_dir = create_backup_dir(work.path());

    let server = connection(postgres.user(), postgres.port(), postgres.database());
    let output = run_backup(&bundle, &server, &backup_dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "the backup exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    let dumps = files_in(&backup_dir);
    assert_eq!(dumps.len(), 1, "expected one dump in the backup directory, found {dumps:?}");

    let name = dumps[0].file_name().expect("file name").to_string_lossy().into_owned();
    assert!(name.starts_with("shop-"), "dump file is named `{name}`");
    assert!(name.ends_with(".sql"), "dump file is named `{name}`");
    assert!(stdout.contains(&format!("wrote /backup/{name} (")), "stdout does not name the dump:\n{stdout}");

    let dump = std::fs::read_to_string(&dumps[0]).expect("read the dump");
    assert!(dump.contains("CREATE TABLE public.orders"), "dump:\n{dump}");
    assert!(dump.contains("1\tada-lovelace\n"), "dump:\n{dump}");
    assert!(dump.contains("2\tgrace-hopper\n"), "dump:\n{dump}");
}

#[test]
fn pg_backup_fails_without_server() {
    support::require_root();
    let work = tempfile::tempdir().expect("temporary directory");
    let bundle = publish_and_unpack(work.path());
    let backup_dir = create_backup_dir(work.path());

    // free_port releases the port before returning, so nothing listens on it.
    let closed_port = support::free_port();
    let output = run_backup(&bundle, &connection("postgres", closed_port, "shop"), &backup_dir);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success(), "the backup succeeded without a server\nstderr:\n{stderr}");
    assert!(stderr.contains("error: pg_dump of database `shop`"), "stderr:\n{stderr}");
    assert_eq!(files_in(&backup_dir), Vec::<PathBuf>::new(), "a failed backup left files behind");
}

/// Publishes a copy of the pg-backup example to a fresh registry and
/// returns the runc bundle of the pushed image.
fn publish_and_unpack(work: &Path) -> PathBuf {
    let registry = Registry::start();
    let job_dir = copy_example("pg-backup", work);

    let published = publish(&job_dir, &format!("{}/e2e", registry.host_port()));
    pull_and_unpack(&published.image, work)
}

/// Creates the host directory that is mounted at `/backup`, owned by the
/// image's user because the container cannot write anywhere else.
fn create_backup_dir(work: &Path) -> PathBuf {
    let backup_dir = work.join("backup");
    std::fs::create_dir(&backup_dir).expect("create the backup directory");
    chown(&backup_dir, Some(NONROOT_ID), Some(NONROOT_ID)).expect("chown the backup directory");
    backup_dir
}

/// Returns the libpq variables for a server on 127.0.0.1, as `NAME=value`
/// entries.
fn connection(user: &str, port: u16, database: &str) -> Vec<String> {
    vec![
        "PGHOST=127.0.0.1".to_owned(),
        format!("PGPORT={port}"),
        format!("PGUSER={user}"),
        format!("PGDATABASE={database}"),
    ]
}

/// Runs the backup image on the host network with `connection` and
/// `BACKUP_DIR=/backup`, with `backup_dir` mounted at `/backup`.
fn run_backup(bundle: &Path, connection: &[String], backup_dir: &Path) -> std::process::Output {
    let mut env: Vec<&str> = connection.iter().map(String::as_str).collect();
    env.push("BACKUP_DIR=/backup");

    runc_run(bundle, &[], &env, &[(backup_dir, "/backup")], true)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the backup directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}
