//! Checks that every example job and template is a valid `kuul.toml` for the
//! library's parser, and that their scripts are executable and start with
//! `#!/bin/sh`. These run without any external program.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The job directories to check, with the script that each one runs.
const JOBS: [(&str, &str); 4] = [
    ("images/hello", "hello.sh"),
    ("images/pg-backup", "backup.sh"),
    ("templates/shell", "job.sh"),
    ("templates/pg-backup", "backup.sh"),
];

#[test]
fn examples_and_templates_parse() {
    for (dir, script) in JOBS {
        let path = repo_root().join(dir).join("kuul.toml");
        let text = std::fs::read_to_string(&path).expect("read kuul.toml");

        // Templates carry `{{name}}` for `kuul init` to fill in.
        let text = text.replace("{{name}}", "template-job");
        let spec = kuul::spec::parse(&text, &path).unwrap_or_else(|error| panic!("{error}"));

        assert_eq!(spec.job.command.argv(), vec![script.to_owned()], "{dir}");
        assert_eq!(spec.image.files.as_deref(), Some(&[script.to_owned()][..]), "{dir}");
    }
}

#[test]
fn job_scripts_are_executable() {
    for (dir, script) in JOBS {
        let path = repo_root().join(dir).join(script);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|error| panic!("`{}`: {error}", path.display()))
            .permissions()
            .mode();

        assert_eq!(mode & 0o111, 0o111, "`{}` has mode {mode:o}", path.display());
    }
}

#[test]
fn job_scripts_start_with_bin_sh() {
    for (dir, script) in JOBS {
        let path = repo_root().join(dir).join(script);
        let text = std::fs::read_to_string(&path).expect("read script");

        assert!(text.starts_with("#!/bin/sh\n"), "`{}` does not start with `#!/bin/sh`", path.display());
        assert!(
            has_link(&repo_root().join(dir), "/bin/sh"),
            "`{dir}/kuul.toml` links no `/bin/sh` for the script's interpreter"
        );
    }
}

fn has_link(job_dir: &Path, link: &str) -> bool {
    let path = job_dir.join("kuul.toml");
    let text = std::fs::read_to_string(&path).expect("read kuul.toml");
    let text = text.replace("{{name}}", "template-job");
    let spec = kuul::spec::parse(&text, &path).expect("valid kuul.toml");
    spec.image.symlinks.contains_key(link)
}
