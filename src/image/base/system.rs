//! The system-files layer on top of a base image: only what the base lacks,
//! with kuul's users merged into the base's `/etc/passwd` and `/etc/group`.

use crate::image::tree::ImageTree;
use crate::sources::{Content, Entry, EntryKind, system_files};

/// Returns the system-files entries to add on top of `tree`.
///
/// An entry whose path the base already has is left out, so the base keeps
/// its own `/tmp`, `/etc/nsswitch.conf` and directory layout (merged /usr or
/// not). `/etc/passwd` and `/etc/group` are the base's files with each of
/// kuul's lines appended whose user or group name the base lacks.
pub fn entries_on_base(tree: &ImageTree, uid: u32, gid: u32, architecture: &str) -> Vec<Entry> {
    let mut entries = Vec::new();

    for entry in system_files::collect(uid, gid, architecture) {
        let Some(existing) = tree.entry(&entry.path).or_else(|| tree.resolve(&entry.path).map(|(_, entry)| entry))
        else {
            entries.push(entry);
            continue;
        };

        if let (Some(ours), Some(theirs)) = (inline_text(&entry), inline_text(existing))
            && super::filesystem::MERGED_FILES.contains(&entry.path.as_str())
        {
            let merged = merge_name_lines(&theirs, &ours);
            if merged != theirs {
                let mode = existing.mode;
                entries.push(Entry { mode, ..Entry::inline_file(entry.path.clone(), merged.into_bytes(), mode) });
            }
        }
    }
    entries
}

fn inline_text(entry: &Entry) -> Option<String> {
    match &entry.kind {
        EntryKind::File { content: Content::Inline(bytes), .. } => String::from_utf8(bytes.clone()).ok(),
        _ => None,
    }
}

/// Appends each line of `ours` whose first field (the user or group name)
/// no line of `base` has.
fn merge_name_lines(base: &str, ours: &str) -> String {
    let field = |line: &str| line.split(':').next().unwrap_or_default().to_owned();
    let names: Vec<String> = base.lines().map(field).collect();

    let mut merged = base.to_owned();
    if !merged.is_empty() && !merged.ends_with('\n') {
        merged.push('\n');
    }
    for line in ours.lines().filter(|line| !names.contains(&field(line))) {
        merged.push_str(line);
        merged.push('\n');
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::NONROOT_ID;

    fn base_tree(passwd: &str) -> ImageTree {
        let mut tree = ImageTree::new();
        tree.insert_base_entry(Entry::directory("/etc"));
        tree.insert_base_entry(Entry::directory("/bin"));
        tree.insert_base_entry(Entry { mode: 0o1777, ..Entry::directory("/tmp") });
        tree.insert_base_entry(Entry::inline_file("/etc/passwd", passwd.as_bytes().to_vec(), 0o644));
        tree
    }

    fn find<'a>(entries: &'a [Entry], path: &str) -> Option<&'a Entry> {
        entries.iter().find(|entry| entry.path == path)
    }

    #[test]
    fn base_passwd_gains_nonroot() {
        let tree = base_tree("root:x:0:0:root:/root:/bin/sh\n");
        let entries = entries_on_base(&tree, NONROOT_ID, NONROOT_ID, "amd64");
        let passwd = inline_text(find(&entries, "/etc/passwd").unwrap()).unwrap();
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
    }

    #[test]
    fn base_passwd_with_nonroot_unchanged() {
        let tree = base_tree("root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/bin/sh\n");
        let entries = entries_on_base(&tree, NONROOT_ID, NONROOT_ID, "amd64");
        assert!(find(&entries, "/etc/passwd").is_none());
    }

    #[test]
    fn base_directory_not_replaced_by_symlink() {
        let tree = base_tree("root:x:0:0::/root:/bin/sh\n");
        let entries = entries_on_base(&tree, NONROOT_ID, NONROOT_ID, "amd64");
        assert!(find(&entries, "/bin").is_none());
        assert!(find(&entries, "/tmp").is_none());
        assert!(find(&entries, "/sbin").is_some());
    }

    #[test]
    fn missing_group_file_added_whole() {
        let tree = base_tree("root:x:0:0::/root:/bin/sh\n");
        let entries = entries_on_base(&tree, NONROOT_ID, NONROOT_ID, "amd64");
        let group = inline_text(find(&entries, "/etc/group").unwrap()).unwrap();
        assert!(group.contains("nonroot:x:65532:"), "{group}");
    }
}
