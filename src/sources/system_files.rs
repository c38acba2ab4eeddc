//! Files every image needs: `/etc/passwd`, `/etc/group`, `/tmp` and the merged-/usr symlinks.
//!
//! The layout follows Debian 12, so host binaries copied with their
//! `/lib64/...` and `/bin/...` paths resolve the same way in the image.

use super::Entry;

/// The `nonroot` user and group that distroless images also use.
const NONROOT_ID: u32 = crate::spec::NONROOT_ID;

/// The home directory of the `job` user, added when the job runs as neither
/// root nor `nonroot`.
pub const JOB_HOME: &str = "/home/job";

/// Returns the base filesystem entries for an image that runs as
/// `uid`:`gid` on `architecture` (a GOARCH name such as `amd64`, or
/// `x86_64`), sorted by path.
pub fn collect(uid: u32, gid: u32, architecture: &str) -> Vec<Entry> {
    let has_lib64 = matches!(architecture, "amd64" | "x86_64");
    let job_user = uid != 0 && uid != NONROOT_ID;

    let mut entries = vec![
        Entry::symlink("/bin", "usr/bin"),
        Entry::symlink("/sbin", "usr/sbin"),
        Entry::symlink("/lib", "usr/lib"),
        Entry::directory("/usr/bin"),
        Entry::directory("/usr/sbin"),
        Entry::directory("/usr/lib"),
        Entry::directory("/etc"),
        Entry { mode: 0o1777, ..Entry::directory("/tmp") },
        Entry { uid: NONROOT_ID, gid: NONROOT_ID, ..Entry::directory("/home/nonroot") },
        Entry { mode: 0o700, ..Entry::directory("/root") },
        Entry::inline_file("/etc/passwd", passwd(uid, gid).into_bytes(), 0o644),
        Entry::inline_file("/etc/group", group(gid).into_bytes(), 0o644),
        Entry::inline_file("/etc/nsswitch.conf", NSSWITCH_CONF.as_bytes().to_vec(), 0o644),
    ];

    if has_lib64 {
        entries.push(Entry::symlink("/lib64", "usr/lib64"));
        entries.push(Entry::directory("/usr/lib64"));
    }
    if job_user {
        entries.push(Entry { uid, gid, ..Entry::directory(JOB_HOME) });
    }

    entries.sort_by(|left, right| left.path.cmp(&right.path));
    entries
}

/// Name service sources for glibc programs: users and groups from the
/// files above, host names from `/etc/hosts` and then DNS.
const NSSWITCH_CONF: &str = "passwd: files\ngroup: files\nhosts: files dns\n";

/// Builds `/etc/passwd` with `root`, `nonroot` and, when `uid` is neither,
/// a `job` user.
fn passwd(uid: u32, gid: u32) -> String {
    let mut passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\n\
         nonroot:x:{NONROOT_ID}:{NONROOT_ID}:nonroot:/home/nonroot:/sbin/nologin\n"
    );

    if uid != 0 && uid != NONROOT_ID {
        passwd.push_str(&format!("job:x:{uid}:{gid}:job:{JOB_HOME}:/sbin/nologin\n"));
    }
    passwd
}

/// Builds `/etc/group` with `root`, `nonroot` and, when `gid` is neither,
/// a `job` group.
fn group(gid: u32) -> String {
    let mut group = format!("root:x:0:\nnonroot:x:{NONROOT_ID}:\n");

    if gid != 0 && gid != NONROOT_ID {
        group.push_str(&format!("job:x:{gid}:\n"));
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Content, EntryKind};

    fn find<'a>(entries: &'a [Entry], path: &str) -> &'a Entry {
        entries.iter().find(|entry| entry.path == path).unwrap_or_else(|| panic!("no entry `{path}`"))
    }

    fn text(entry: &Entry) -> &str {
        match &entry.kind {
            EntryKind::File { content: Content::Inline(bytes), .. } => std::str::from_utf8(bytes).unwrap(),
            other => panic!("`{}` is not an inline file: {other:?}", entry.path),
        }
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.path.as_str()).collect()
    }

    #[test]
    fn amd64_has_merged_usr_layout() {
        let entries = collect(NONROOT_ID, NONROOT_ID, "amd64");

        assert_eq!(
            paths(&entries),
            [
                "/bin",
                "/etc",
                "/etc/group",
                "/etc/nsswitch.conf",
                "/etc/passwd",
                "/home/nonroot",
                "/lib",
                "/lib64",
                "/root",
                "/sbin",
                "/tmp",
                "/usr/bin",
                "/usr/lib",
                "/usr/lib64",
                "/usr/sbin",
            ]
        );
        assert_eq!(find(&entries, "/bin").kind, EntryKind::Symlink { target: "usr/bin".to_string() });
        assert_eq!(find(&entries, "/sbin").kind, EntryKind::Symlink { target: "usr/sbin".to_string() });
        assert_eq!(find(&entries, "/lib").kind, EntryKind::Symlink { target: "usr/lib".to_string() });
        assert_eq!(find(&entries, "/lib64").kind, EntryKind::Symlink { target: "usr/lib64".to_string() });
    }

    #[test]
    fn arm64_has_no_lib64() {
        let entries = collect(NONROOT_ID, NONROOT_ID, "arm64");

        assert!(!paths(&entries).contains(&"/lib64"));
        assert!(!paths(&entries).contains(&"/usr/lib64"));
    }

    #[test]
    fn directory_modes_and_owners() {
        let entries = collect(NONROOT_ID, NONROOT_ID, "amd64");

        assert_eq!(find(&entries, "/tmp").mode, 0o1777);
        assert_eq!(find(&entries, "/root").mode, 0o700);
        assert_eq!(find(&entries, "/home/nonroot").mode, 0o755);
        assert_eq!((find(&entries, "/home/nonroot").uid, find(&entries, "/home/nonroot").gid), (65532, 65532));
        assert_eq!((find(&entries, "/etc").uid, find(&entries, "/etc").gid), (0, 0));
    }

    #[test]
    fn passwd_for_nonroot_user() {
        let entries = collect(NONROOT_ID, NONROOT_ID, "amd64");

        assert_eq!(
            text(find(&entries, "/etc/passwd")),
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        assert_eq!(text(find(&entries, "/etc/group")), "root:x:0:\nnonroot:x:65532:\n");
    }

    #[test]
    fn passwd_for_root_user() {
        let entries = collect(0, 0, "amd64");

        assert!(!text(find(&entries, "/etc/passwd")).contains("job:"));
        assert!(!text(find(&entries, "/etc/group")).contains("job:"));
        assert!(!paths(&entries).contains(&JOB_HOME));
    }

    #[test]
    fn passwd_adds_job_user() {
        let entries = collect(1000, 1001, "amd64");

        assert!(text(find(&entries, "/etc/passwd")).ends_with("job:x:1000:1001:job:/home/job:/sbin/nologin\n"));
        assert!(text(find(&entries, "/etc/group")).ends_with("nonroot:x:65532:\njob:x:1001:\n"));
        assert_eq!((find(&entries, JOB_HOME).uid, find(&entries, JOB_HOME).gid), (1000, 1001));
    }

    #[test]
    fn job_group_without_job_user() {
        let entries = collect(NONROOT_ID, 2000, "amd64");

        assert!(!text(find(&entries, "/etc/passwd")).contains("job:"));
        assert!(text(find(&entries, "/etc/group")).ends_with("job:x:2000:\n"));
    }

    #[test]
    fn config_files_root_owned_0644() {
        let entries = collect(1000, 1000, "amd64");

        for path in ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf"] {
            let entry = find(&entries, path);
            assert_eq!(entry.mode, 0o644, "{path}");
            assert_eq!((entry.uid, entry.gid), (0, 0), "{path}");
        }
    }

    #[test]
    fn nsswitch_uses_files_and_dns() {
        let entries = collect(NONROOT_ID, NONROOT_ID, "amd64");

        assert_eq!(text(find(&entries, "/etc/nsswitch.conf")), "passwd: files\ngroup: files\nhosts: files dns\n");
    }
}
