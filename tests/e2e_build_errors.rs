//! End-to-end tests of the inputs `kuul build` rejects, and of the error text
//! for each. The cases are a missing or non-executable command, a missing
//! interpreter, a job file that escapes the job directory, a wrapper script
//! listed as a binary, and invalid kuul.toml content.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes a job directory with `kuul.toml` holding `spec` and each
/// `(path, content, mode)` file.
fn write_job(dir: &Path, spec: &str, files: &[(&str, &str, u32)]) {
    std::fs::create_dir_all(dir).expect("create the job directory");
    std::fs::write(dir.join("kuul.toml"), spec).expect("write kuul.toml");
    for (path, content, mode) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("create the parent");
        std::fs::write(&path, content).expect("write a job file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("set the mode");
    }
}

/// Runs `kuul build` on `dir`, expects exit code 1, and returns stderr.
fn build_fails(dir: &Path) -> String {
    let output = support::kuul()
        .arg("build")
        .arg(dir)
        .arg("--layout")
        .arg(dir.with_extension("layout"))
        .output()
        .expect("start kuul build");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("error: "), "stderr:\n{stderr}");
    stderr
}

const JOB_HEADER: &str = "[job]\nname = \"broken\"\nschedule = \"0 3 * * *\"\n";

#[test]
fn shebang_shell_missing_from_image() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(&dir, &format!("{JOB_HEADER}command = [\"run.sh\"]\n"), &[("run.sh", "#!/bin/sh\necho hi\n", 0o755)]);

    let stderr = build_fails(&dir);

    assert!(stderr.contains("interpreter `/bin/sh` of command `/job/run.sh` is not in the image"), "{stderr}");
    assert!(stderr.contains("hint: add `busybox` to `image.binaries`"), "{stderr}");
}

#[test]
fn env_shebang_program_missing() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        &format!(
            "{JOB_HEADER}command = [\"run.py\"]\n[image]\nbinaries = [\"busybox\"]\n\
             symlinks = {{ \"/usr/bin/env\" = \"busybox\" }}\n"
        ),
        &[("run.py", "#!/usr/bin/env python3\nprint('hi')\n", 0o755)],
    );

    let stderr = build_fails(&dir);

    assert!(stderr.contains("interpreter `/usr/bin/env python3`"), "{stderr}");
    assert!(stderr.contains("`python3` must be on the image PATH"), "{stderr}");
}

#[test]
fn env_shebang_program_present_builds() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        &format!(
            "{JOB_HEADER}command = [\"run.sh\"]\n[image]\nbinaries = [\"busybox\"]\n\
             symlinks = {{ \"/usr/bin/env\" = \"busybox\", \"/bin/sh\" = \"busybox\" }}\n"
        ),
        &[("run.sh", "#!/usr/bin/env sh\necho hi\n", 0o755)],
    );

    let output = support::kuul()
        .arg("build")
        .arg(&dir)
        .arg("--layout")
        .arg(work.path().join("layout"))
        .output()
        .expect("start kuul build");

    assert!(output.status.success(), "stderr:\n{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn command_not_executable_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(&dir, &format!("{JOB_HEADER}command = [\"run.sh\"]\n"), &[("run.sh", "#!/job/run.sh\n", 0o644)]);

    let stderr = build_fails(&dir);

    assert!(stderr.contains("command `/job/run.sh` is not executable"), "{stderr}");
    assert!(stderr.contains("hint: run `chmod +x`"), "{stderr}");
}

#[test]
fn command_missing_from_image() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(&dir, &format!("{JOB_HEADER}command = [\"backup\"]\n"), &[("run.sh", "#!/job/run.sh\n", 0o755)]);

    let stderr = build_fails(&dir);

    assert!(stderr.contains("command `backup` from `job.command` is not in the image"), "{stderr}");
    assert!(stderr.contains("hint: list the script in `image.files`"), "{stderr}");
}

#[test]
fn elf_command_without_loader_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(&dir, &format!("{JOB_HEADER}command = [\"tool\"]\n"), &[]);
    std::fs::copy("/usr/bin/busybox", dir.join("tool")).expect("copy busybox into the job directory");

    let stderr = build_fails(&dir);

    assert!(stderr.contains("interpreter `/lib64/ld-linux-x86-64.so.2` of command `/job/tool`"), "{stderr}");
    assert!(stderr.contains("hint: add the program to `image.binaries`"), "{stderr}");
}

#[test]
fn job_symlink_escaping_directory_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(&dir, &format!("{JOB_HEADER}command = [\"run.sh\"]\n"), &[("run.sh", "#!/job/run.sh\n", 0o755)]);
    std::fs::write(work.path().join("secret"), "outside").expect("write a file outside the job");
    std::os::unix::fs::symlink("../secret", dir.join("secret")).expect("create the symlink");

    let stderr = build_fails(&dir);

    assert!(stderr.contains("secret"), "{stderr}");
    assert!(stderr.contains("outside the job directory"), "{stderr}");
}

#[test]
fn listed_file_outside_job_rejected() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        &format!("{JOB_HEADER}command = [\"run.sh\"]\n[image]\nfiles = [\"run.sh\", \"../outside\"]\n"),
        &[("run.sh", "#!/job/run.sh\n", 0o755)],
    );

    let stderr = build_fails(&dir);

    assert!(stderr.contains("image.files"), "{stderr}");
    assert!(stderr.contains("../outside"), "{stderr}");
}

#[test]
fn wrapper_script_binary_names_real_program() {
    support::require("/usr/lib/postgresql/15/bin/pg_dump");
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        &format!("{JOB_HEADER}command = [\"run.sh\"]\n[image]\nbinaries = [\"/usr/bin/pg_dump\"]\n"),
        &[("run.sh", "#!/job/run.sh\n", 0o755)],
    );

    let stderr = build_fails(&dir);

    assert!(stderr.contains("`/usr/bin/pg_dump`"), "{stderr}");
    assert!(stderr.contains("script"), "{stderr}");
    assert!(stderr.contains("/usr/lib/postgresql/15/bin/pg_dump"), "{stderr}");
}

#[test]
fn unknown_key_lists_valid_keys() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        &format!("{JOB_HEADER}command = [\"run.sh\"]\n[image]\nbinary = [\"busybox\"]\n"),
        &[("run.sh", "#!/job/run.sh\n", 0o755)],
    );

    let stderr = build_fails(&dir);

    assert!(stderr.contains("kuul.toml:6"), "{stderr}");
    assert!(stderr.contains("`binary`"), "{stderr}");
    assert!(stderr.contains("`binaries`"), "{stderr}");
}

#[test]
fn invalid_values_each_reported() {
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path().join("job");
    write_job(
        &dir,
        "[job]\nname = \"Nightly_Backup\"\nschedule = \"0 3 * * 7\"\ntimezone = \"Mars/Olympus\"\n\
         command = [\"run.sh\"]\n[resources.requests]\nmemory = \"Mi\"\n",
        &[("run.sh", "#!/job/run.sh\n", 0o755)],
    );

    let stderr = build_fails(&dir);

    for (line, key, value) in [
        (2, "job.name", "Nightly_Backup"),
        (3, "job.schedule", "7"),
        (4, "job.timezone", "Mars/Olympus"),
        (7, "resources.requests.memory", "Mi"),
    ] {
        assert!(stderr.contains(&format!("kuul.toml:{line}: `{key}`")), "no line {line} for `{key}`:\n{stderr}");
        assert!(stderr.contains(&format!("`{value}`")), "no value `{value}`:\n{stderr}");
    }
    assert!(stderr.matches("hint: ").count() >= 4, "a hint for each problem:\n{stderr}");
}
