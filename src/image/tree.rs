//! A view of every path an image will contain, across its layers.
//!
//! [`ImageTree::add_layer`] checks each layer against the layers added before
//! it and rewrites it into the form that tar layers need. In that form, no
//! parent of a path is a symlink, every parent directory is listed, each path
//! occurs once, and a hard link comes after the file it points to.

use std::collections::{BTreeMap, VecDeque};

use crate::sources::{Entry, EntryKind, LayerContent};

/// Maximum number of symlinks followed while resolving one path, the same
/// limit as Linux (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// An invalid layer, or a layer that conflicts with an earlier one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error(
        "invalid image path `{path}`: {reason}\nhint: use an absolute path without `.`, `..`, `//` or a trailing `/`"
    )]
    InvalidPath { path: String, reason: &'static str },

    #[error(
        "conflicting entries for `{path}`: `{first}` and `{second}` differ\nhint: keep one of them, or make both identical"
    )]
    Conflict { path: String, first: String, second: String },

    #[error(
        "parent `{parent}` of `{path}` is not a directory\nhint: place the entry under a directory, or remove `{parent}`"
    )]
    ParentNotDirectory { path: String, parent: String },

    #[error("symlink `{link}` has an empty target or a target with a NUL byte\nhint: set the target to a path")]
    InvalidSymlinkTarget { link: String },

    #[error("symlink `{link}` points to `{target}`, which is outside `/`\nhint: make the target stay inside the image")]
    SymlinkEscapesRoot { link: String, target: String },

    #[error(
        "`{path}` lies under a symlink that the same layer only creates at a later path\nhint: write `{path}` under the symlink's target instead"
    )]
    SymlinkOrder { path: String },

    #[error("too many levels of symlinks while resolving `{path}`\nhint: check the symlinks on that path for a loop")]
    SymlinkLoop { path: String },

    #[error(
        "`{path}` is a directory in an earlier layer and cannot be replaced by a {kind}\nhint: put the entry at another path"
    )]
    DirectoryReplaced { path: String, kind: &'static str },

    #[error(
        "`{path}` is a symlink in an earlier layer and cannot be replaced by a directory\nhint: place the entries under the symlink's target instead"
    )]
    SymlinkReplacedByDirectory { path: String },

    #[error(
        "hard link `{path}` points to `{target}`, which is not a file in the same layer\nhint: add `{target}` to the layer, or use a symlink"
    )]
    HardlinkTargetMissing { path: String, target: String },
}

/// Every path the image contains, with the entry from the last layer that
/// wrote it.
#[derive(Debug, Default, Clone)]
pub struct ImageTree {
    entries: BTreeMap<String, Entry>,
}

/// Reason a path walk failed, before it is tied to an entry for the error.
enum WalkError {
    NotDirectory { parent: String },
    Escape { link: String, target: String },
    Loop,
}

/// An entry staged for the layer being added, with the path the caller gave.
#[derive(Clone)]
struct Staged {
    entry: Entry,
    original_path: String,
}

impl ImageTree {
    pub fn new() -> ImageTree {
        ImageTree::default()
    }

    /// Validates one layer against the layers added before it, records its
    /// entries and returns the layer to write.
    ///
    /// Paths are rewritten through symlinked parents, so `/bin/sh` becomes
    /// `/usr/bin/sh` when `/bin` links to `usr/bin`. Missing parent
    /// directories are added as root-owned 0755 directories, and identical
    /// duplicates are merged. In each group of hard links, the first path in
    /// byte order becomes the file and the others link to it. The returned
    /// entries are sorted by path in byte order. On error the tree is unchanged.
    pub fn add_layer(&mut self, layer: LayerContent) -> Result<LayerContent, TreeError> {
        let mut entries = layer.entries;
        for entry in &entries {
            validate_path(&entry.path)?;
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));

        // Symlinks are staged first, so every other entry resolves its
        // parents through all of them.
        let (symlinks, others): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|entry| matches!(entry.kind, EntryKind::Symlink { .. }));

        let mut staged = BTreeMap::new();
        for entry in symlinks.into_iter().chain(others) {
            self.stage(&mut staged, entry)?;
        }

        self.check_symlink_parents_stable(&staged)?;
        self.check_replacements(&staged)?;
        self.add_missing_parents(&mut staged)?;
        normalize_hardlinks(&mut staged)?;

        let entries: Vec<Entry> = staged.into_values().map(|staged| staged.entry).collect();
        for entry in &entries {
            self.entries.insert(entry.path.clone(), entry.clone());
        }

        Ok(LayerContent { description: layer.description, entries })
    }

    /// Follows symlinks inside the image and returns the final path and its
    /// entry.
    ///
    /// Relative targets resolve against the link's directory, absolute ones
    /// against `/`. Returns `None` when the path is missing, when a parent is
    /// not a directory, when more than 40 symlinks are followed (a loop), or
    /// when a target climbs above `/`.
    pub fn resolve(&self, path: &str) -> Option<(String, &Entry)> {
        let empty = BTreeMap::new();
        let resolved = self.walk(&empty, path).ok()?;
        let entry = self.entries.get(&resolved)?;
        Some((resolved, entry))
    }

    /// Reports whether `path` exists after following symlinks.
    pub fn contains(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    /// Returns the entry recorded at exactly `path`, without following
    /// symlinks.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Records an entry of a base image layer as a runtime extracts it:
    /// the entry replaces whatever was at its path, and replacing a
    /// directory with anything else drops the directory's contents. No
    /// checks run, because the base image is taken as it is.
    pub fn insert_base_entry(&mut self, entry: Entry) {
        let replaces_directory =
            self.entries.get(&entry.path).is_some_and(|previous| matches!(previous.kind, EntryKind::Directory))
                && !matches!(entry.kind, EntryKind::Directory);
        if replaces_directory {
            self.clear_directory(&entry.path);
        }
        self.entries.insert(entry.path.clone(), entry);
    }

    /// Removes `path` and everything below it, as a whiteout file does.
    pub fn remove(&mut self, path: &str) {
        self.clear_directory(path);
        self.entries.remove(path);
    }

    /// Removes everything below `path` but keeps `path` itself, as an opaque
    /// whiteout does.
    pub fn clear_directory(&mut self, path: &str) {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let below: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .map(|(key, _)| key.clone())
            .take_while(|key| key.starts_with(&prefix))
            .collect();
        for key in below {
            self.entries.remove(&key);
        }
    }

    /// Returns every recorded path with its entry, in byte order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Resolves the entry's parent, checks for a duplicate and adds the entry
    /// under its canonical path.
    fn stage(&self, staged: &mut BTreeMap<String, Staged>, entry: Entry) -> Result<(), TreeError> {
        let original_path = entry.path.clone();
        let canonical = self.canonical_path(staged, &original_path)?;

        if let EntryKind::Symlink { target } = &entry.kind {
            check_symlink_target(&canonical, target)?;
        }

        let mut entry = entry;
        entry.path = canonical.clone();

        if let EntryKind::Hardlink { target } = &entry.kind {
            validate_path(target)?;
            let target = self.canonical_path(staged, target)?;
            entry.kind = EntryKind::Hardlink { target };
        }

        if let Some(existing) = staged.get(&canonical) {
            if existing.entry == entry {
                return Ok(());
            }
            return Err(TreeError::Conflict {
                path: canonical,
                first: existing.original_path.clone(),
                second: original_path,
            });
        }

        staged.insert(canonical, Staged { entry, original_path });
        Ok(())
    }

    /// Returns `path` with its parent directory resolved through symlinks.
    /// The last component is kept as is, because the entry replaces whatever
    /// is at that path.
    fn canonical_path(&self, staged: &BTreeMap<String, Staged>, path: &str) -> Result<String, TreeError> {
        let (parent, name) = split_parent(path);
        let parent = self.walk(staged, parent).map_err(|error| walk_error(path, error))?;

        let existing = staged.get(&parent).map(|staged| &staged.entry).or_else(|| self.entries.get(&parent));
        if let Some(entry) = existing
            && !matches!(entry.kind, EntryKind::Directory)
        {
            return Err(TreeError::ParentNotDirectory { path: path.to_string(), parent });
        }

        Ok(join(&parent, name))
    }

    /// Rejects a layer where a symlink's own parent resolves differently once
    /// all the layer's symlinks are known, because its entries would land on
    /// a path that is itself a symlink.
    fn check_symlink_parents_stable(&self, staged: &BTreeMap<String, Staged>) -> Result<(), TreeError> {
        for staged_entry in staged.values() {
            let canonical = self.canonical_path(staged, &staged_entry.entry.path)?;
            if canonical != staged_entry.entry.path {
                return Err(TreeError::SymlinkOrder { path: staged_entry.original_path.clone() });
            }
        }
        Ok(())
    }

    /// Rejects entries that replace an earlier layer's directory with a
    /// non-directory, or an earlier symlink with a directory.
    fn check_replacements(&self, staged: &BTreeMap<String, Staged>) -> Result<(), TreeError> {
        for (path, staged_entry) in staged {
            let Some(previous) = self.entries.get(path) else {
                continue;
            };
            match (&previous.kind, &staged_entry.entry.kind) {
                (EntryKind::Directory, EntryKind::Directory) => {}
                (EntryKind::Directory, kind) => {
                    return Err(TreeError::DirectoryReplaced { path: path.clone(), kind: kind_name(kind) });
                }
                (EntryKind::Symlink { .. }, EntryKind::Directory) => {
                    return Err(TreeError::SymlinkReplacedByDirectory { path: path.clone() });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds a root-owned 0755 directory for every ancestor that neither this
    /// layer nor an earlier one contains.
    fn add_missing_parents(&self, staged: &mut BTreeMap<String, Staged>) -> Result<(), TreeError> {
        let paths: Vec<String> = staged.keys().cloned().collect();
        for path in paths {
            let mut ancestor = split_parent(&path).0;
            while ancestor != "/" {
                let existing = staged.get(ancestor).map(|staged| &staged.entry).or_else(|| self.entries.get(ancestor));
                match existing {
                    Some(entry) if matches!(entry.kind, EntryKind::Directory) => {}
                    Some(_) => {
                        return Err(TreeError::ParentNotDirectory { path: path.clone(), parent: ancestor.to_string() });
                    }
                    None => {
                        let directory = Entry::directory(ancestor);
                        staged.insert(
                            ancestor.to_string(),
                            Staged { entry: directory, original_path: ancestor.to_string() },
                        );
                    }
                }
                ancestor = split_parent(ancestor).0;
            }
        }
        Ok(())
    }

    /// Walks `path` component by component from `/`, following symlinks in
    /// `staged` first and then in the tree. Missing components are treated as
    /// directories that will be created. A symlink as the last component is
    /// followed too.
    fn walk(&self, staged: &BTreeMap<String, Staged>, path: &str) -> Result<String, WalkError> {
        let mut pending: VecDeque<String> = components(path).map(str::to_string).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;

        while let Some(component) = pending.pop_front() {
            if component == "." {
                continue;
            }
            if component == ".." {
                // Only a symlink target can bring `..`, because entry paths
                // are validated first.
                if resolved.pop().is_none() {
                    return Err(WalkError::Escape { link: path.to_string(), target: path.to_string() });
                }
                continue;
            }

            let current = join_components(&resolved, &component);
            let is_last = pending.is_empty();
            let existing = staged.get(&current).map(|staged| &staged.entry).or_else(|| self.entries.get(&current));

            match existing.map(|entry| &entry.kind) {
                Some(EntryKind::Symlink { target }) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(WalkError::Loop);
                    }
                    if escapes_root(&resolved, target) {
                        return Err(WalkError::Escape { link: current, target: target.clone() });
                    }
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for target_component in components(target).rev() {
                        pending.push_front(target_component.to_string());
                    }
                }
                Some(EntryKind::Directory) | None => resolved.push(component),
                Some(EntryKind::File { .. } | EntryKind::Hardlink { .. }) if is_last => resolved.push(component),
                Some(EntryKind::File { .. } | EntryKind::Hardlink { .. }) => {
                    return Err(WalkError::NotDirectory { parent: current });
                }
            }
        }

        Ok(join_components(&resolved, ""))
    }
}

/// Rewrites each group of hard links so that the first path in byte order is
/// the regular file and the others link to it, because a tar reader can only
/// link to an entry it has already extracted.
fn normalize_hardlinks(staged: &mut BTreeMap<String, Staged>) -> Result<(), TreeError> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, staged_entry) in staged.iter() {
        if let EntryKind::Hardlink { target } = &staged_entry.entry.kind {
            let file = follow_hardlinks(staged, path, target)?;
            groups.entry(file).or_default().push(path.clone());
        }
    }

    for (file, links) in groups {
        let first = links.iter().chain([&file]).min().cloned().unwrap_or_else(|| file.clone());
        let file_entry = staged[&file].entry.clone();

        for path in links.iter().chain([&file]) {
            let staged_entry = staged.get_mut(path).expect("grouped paths are staged");
            if *path == first {
                staged_entry.entry = Entry { path: path.clone(), ..file_entry.clone() };
            } else {
                staged_entry.entry.kind = EntryKind::Hardlink { target: first.clone() };
                staged_entry.entry.mode = file_entry.mode;
                staged_entry.entry.uid = file_entry.uid;
                staged_entry.entry.gid = file_entry.gid;
            }
        }
    }
    Ok(())
}

/// Follows a chain of hard links within the layer to the regular file at its
/// end and returns that file's path.
fn follow_hardlinks(staged: &BTreeMap<String, Staged>, link: &str, target: &str) -> Result<String, TreeError> {
    let missing = || TreeError::HardlinkTargetMissing { path: link.to_string(), target: target.to_string() };
    let mut current = target.to_string();

    for _ in 0..=staged.len() {
        match staged.get(&current).map(|staged| &staged.entry.kind) {
            Some(EntryKind::File { .. }) => return Ok(current),
            Some(EntryKind::Hardlink { target: next }) => current = next.clone(),
            _ => return Err(missing()),
        }
    }
    Err(missing())
}

/// Checks that `path` is absolute and normal: starts with `/`, is not `/`
/// itself, has no empty, `.` or `..` component, no trailing `/` and no NUL.
fn validate_path(path: &str) -> Result<(), TreeError> {
    let invalid = |reason| Err(TreeError::InvalidPath { path: path.to_string(), reason });

    if !path.starts_with('/') {
        return invalid("the path is not absolute");
    }
    if path == "/" {
        return invalid("the root directory is implicit and cannot be an entry");
    }
    if path.ends_with('/') {
        return invalid("the path ends with `/`");
    }
    if path.contains('\0') {
        return invalid("the path contains a NUL byte");
    }
    for component in path[1..].split('/') {
        match component {
            "" => return invalid("the path contains `//`"),
            "." | ".." => return invalid("the path contains a `.` or `..` component"),
            _ => {}
        }
    }
    Ok(())
}

/// Rejects a symlink whose target, read as a path from the link's directory,
/// climbs above `/`. Only the target's own components are counted, because
/// symlinks inside the target may not exist yet.
fn check_symlink_target(link: &str, target: &str) -> Result<(), TreeError> {
    let escape = || TreeError::SymlinkEscapesRoot { link: link.to_string(), target: target.to_string() };

    if target.is_empty() || target.contains('\0') {
        return Err(TreeError::InvalidSymlinkTarget { link: link.to_string() });
    }

    let parent: Vec<String> = components(split_parent(link).0).map(str::to_string).collect();
    if escapes_root(&parent, target) {
        return Err(escape());
    }
    Ok(())
}

/// Reports whether `target`, read from the directory `base`, goes above `/`.
fn escapes_root(base: &[String], target: &str) -> bool {
    let mut depth = if target.starts_with('/') { 0 } else { base.len() };
    for component in components(target) {
        match component {
            "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

fn walk_error(path: &str, error: WalkError) -> TreeError {
    match error {
        WalkError::NotDirectory { parent } => TreeError::ParentNotDirectory { path: path.to_string(), parent },
        WalkError::Escape { link, target } => TreeError::SymlinkEscapesRoot { link, target },
        WalkError::Loop => TreeError::SymlinkLoop { path: path.to_string() },
    }
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Directory => "directory",
        EntryKind::File { .. } => "file",
        EntryKind::Symlink { .. } => "symlink",
        EntryKind::Hardlink { .. } => "hard link",
    }
}

/// Returns the non-empty components of a path, so `//` and a trailing `/` in
/// a symlink target are ignored as the kernel does.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|component| !component.is_empty())
}

/// Splits a normal absolute path into its parent (`/` for top-level paths)
/// and its last component.
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(index) => (&path[..index], &path[index + 1..]),
        None => ("/", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// Builds an absolute path from resolved components plus one more (empty for
/// none).
fn join_components(resolved: &[String], last: &str) -> String {
    let mut path = String::new();
    for component in resolved.iter().map(String::as_str).chain([last]) {
        if !component.is_empty() {
            path.push('/');
            path.push_str(component);
        }
    }
    if path.is_empty() { "/".to_string() } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: Vec<Entry>) -> LayerContent {
        LayerContent { description: "test".to_string(), entries }
    }

    fn file(path: &str, bytes: &[u8]) -> Entry {
        Entry::inline_file(path, bytes.to_vec(), 0o644)
    }

    fn hardlink(path: &str, target: &str) -> Entry {
        Entry {
            path: path.to_string(),
            kind: EntryKind::Hardlink { target: target.to_string() },
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn paths(layer: &LayerContent) -> Vec<&str> {
        layer.entries.iter().map(|entry| entry.path.as_str()).collect()
    }

    fn usr_merged_tree() -> ImageTree {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![
            Entry::directory("/usr/bin"),
            Entry::directory("/usr/lib64"),
            Entry::symlink("/bin", "usr/bin"),
            Entry::symlink("/lib64", "/usr/lib64"),
        ]))
        .unwrap();
        tree
    }

    #[test]
    fn add_layer_rejects_abnormal_paths() {
        for path in ["usr/bin/sh", "/", "/usr/bin/", "/usr//bin", "/usr/./bin", "/usr/../bin", "/a\0b"] {
            let result = ImageTree::new().add_layer(layer(vec![file(path, b"x")]));
            assert!(matches!(result, Err(TreeError::InvalidPath { .. })), "path {path:?} gave {result:?}");
        }
    }

    #[test]
    fn add_layer_resolves_relative_symlink_parent() {
        let mut tree = usr_merged_tree();

        let written = tree.add_layer(layer(vec![file("/bin/sh", b"shell")])).unwrap();

        assert_eq!(paths(&written), ["/usr/bin/sh"]);
    }

    #[test]
    fn add_layer_resolves_absolute_symlink_parent() {
        let mut tree = usr_merged_tree();

        let written = tree.add_layer(layer(vec![file("/lib64/ld-linux-x86-64.so.2", b"ld")])).unwrap();

        assert_eq!(paths(&written), ["/usr/lib64/ld-linux-x86-64.so.2"]);
    }

    #[test]
    fn add_layer_resolves_symlink_in_same_layer() {
        let mut tree = ImageTree::new();

        let written =
            tree.add_layer(layer(vec![file("/bin/sh", b"shell"), Entry::symlink("/bin", "usr/bin")])).unwrap();

        assert_eq!(paths(&written), ["/bin", "/usr", "/usr/bin", "/usr/bin/sh"]);
    }

    #[test]
    fn add_layer_resolves_chained_symlinks() {
        let mut tree = ImageTree::new();

        let written = tree
            .add_layer(layer(vec![Entry::symlink("/a", "b"), Entry::symlink("/b", "/c/d"), file("/a/x", b"x")]))
            .unwrap();

        assert!(paths(&written).contains(&"/c/d/x"));
    }

    #[test]
    fn add_layer_rejects_symlink_escaping_root() {
        let result = ImageTree::new().add_layer(layer(vec![Entry::symlink("/usr/up", "../../etc")]));

        assert_eq!(
            result.unwrap_err(),
            TreeError::SymlinkEscapesRoot { link: "/usr/up".to_string(), target: "../../etc".to_string() }
        );
    }

    #[test]
    fn add_layer_rejects_empty_symlink_target() {
        let result = ImageTree::new().add_layer(layer(vec![Entry::symlink("/usr/empty", "")]));

        assert_eq!(result.unwrap_err(), TreeError::InvalidSymlinkTarget { link: "/usr/empty".to_string() });
    }

    #[test]
    fn add_layer_accepts_symlink_to_root() {
        let result = ImageTree::new().add_layer(layer(vec![Entry::symlink("/usr/root", "../")]));

        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn add_layer_rejects_symlink_loop_in_parent() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![Entry::symlink("/a", "b"), Entry::symlink("/b", "a")])).unwrap();

        let result = tree.add_layer(layer(vec![file("/a/x", b"x")]));

        assert_eq!(result.unwrap_err(), TreeError::SymlinkLoop { path: "/a/x".to_string() });
    }

    #[test]
    fn add_layer_adds_missing_parents() {
        let mut tree = ImageTree::new();

        let written = tree.add_layer(layer(vec![file("/usr/share/doc/kuul", b"doc")])).unwrap();

        assert_eq!(paths(&written), ["/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/kuul"]);
        for parent in &written.entries[..3] {
            assert_eq!(*parent, Entry::directory(parent.path.clone()));
        }
    }

    #[test]
    fn add_layer_skips_parents_from_earlier_layer() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![Entry::directory("/etc")])).unwrap();

        let written = tree.add_layer(layer(vec![file("/etc/passwd", b"root:x:0:0::/:/bin/sh\n")])).unwrap();

        assert_eq!(paths(&written), ["/etc/passwd"]);
    }

    #[test]
    fn add_layer_keeps_explicit_directory_mode() {
        let mut tree = ImageTree::new();
        let tmp = Entry { mode: 0o1777, ..Entry::directory("/tmp") };

        let written = tree.add_layer(layer(vec![file("/tmp/x", b"x"), tmp.clone()])).unwrap();

        assert_eq!(written.entries[0], tmp);
    }

    #[test]
    fn add_layer_merges_identical_duplicates() {
        let mut tree = usr_merged_tree();

        let written = tree.add_layer(layer(vec![file("/bin/sh", b"shell"), file("/usr/bin/sh", b"shell")])).unwrap();

        assert_eq!(paths(&written), ["/usr/bin/sh"]);
    }

    #[test]
    fn add_layer_rejects_different_duplicates() {
        let mut tree = usr_merged_tree();

        let result = tree.add_layer(layer(vec![file("/bin/sh", b"dash"), file("/usr/bin/sh", b"bash")]));

        assert_eq!(
            result.unwrap_err(),
            TreeError::Conflict {
                path: "/usr/bin/sh".to_string(),
                first: "/bin/sh".to_string(),
                second: "/usr/bin/sh".to_string(),
            }
        );
    }

    #[test]
    fn add_layer_replaces_earlier_file() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![file("/etc/motd", b"old")])).unwrap();

        tree.add_layer(layer(vec![file("/etc/motd", b"new")])).unwrap();

        assert_eq!(tree.resolve("/etc/motd").unwrap().1, &file("/etc/motd", b"new"));
    }

    #[test]
    fn add_layer_rejects_file_over_directory() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![Entry::directory("/etc")])).unwrap();

        let result = tree.add_layer(layer(vec![file("/etc", b"x")]));

        assert_eq!(result.unwrap_err(), TreeError::DirectoryReplaced { path: "/etc".to_string(), kind: "file" });
    }

    #[test]
    fn add_layer_rejects_symlink_over_directory() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![Entry::directory("/etc")])).unwrap();

        let result = tree.add_layer(layer(vec![Entry::symlink("/etc", "usr/etc")]));

        assert_eq!(result.unwrap_err(), TreeError::DirectoryReplaced { path: "/etc".to_string(), kind: "symlink" });
    }

    #[test]
    fn add_layer_rejects_directory_over_symlink() {
        let mut tree = usr_merged_tree();

        let result = tree.add_layer(layer(vec![Entry::directory("/bin")]));

        assert_eq!(result.unwrap_err(), TreeError::SymlinkReplacedByDirectory { path: "/bin".to_string() });
    }

    #[test]
    fn add_layer_rejects_file_as_parent() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![file("/etc", b"x")])).unwrap();

        let result = tree.add_layer(layer(vec![file("/etc/passwd", b"x")]));

        assert_eq!(
            result.unwrap_err(),
            TreeError::ParentNotDirectory { path: "/etc/passwd".to_string(), parent: "/etc".to_string() }
        );
    }

    #[test]
    fn add_layer_rejects_hardlink_without_target() {
        let result = ImageTree::new().add_layer(layer(vec![hardlink("/usr/bin/ls", "/usr/bin/busybox")]));

        assert_eq!(
            result.unwrap_err(),
            TreeError::HardlinkTargetMissing {
                path: "/usr/bin/ls".to_string(),
                target: "/usr/bin/busybox".to_string()
            }
        );
    }

    #[test]
    fn add_layer_rejects_hardlink_to_earlier_layer() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![file("/usr/bin/busybox", b"bb")])).unwrap();

        let result = tree.add_layer(layer(vec![hardlink("/usr/bin/ls", "/usr/bin/busybox")]));

        assert!(matches!(result, Err(TreeError::HardlinkTargetMissing { .. })), "{result:?}");
    }

    #[test]
    fn add_layer_puts_hardlink_file_first() {
        let mut tree = usr_merged_tree();

        let written = tree.add_layer(layer(vec![file("/usr/bin/sh", b"bb"), hardlink("/bin/ash", "/bin/sh")])).unwrap();

        assert_eq!(written.entries[0], file("/usr/bin/ash", b"bb"));
        assert_eq!(written.entries[1].kind, EntryKind::Hardlink { target: "/usr/bin/ash".to_string() });
    }

    #[test]
    fn add_layer_leaves_tree_unchanged_on_error() {
        let mut tree = ImageTree::new();

        let result = tree.add_layer(layer(vec![file("/etc/motd", b"x"), file("/etc/motd", b"y")]));

        assert!(result.is_err());
        assert!(!tree.contains("/etc"));
    }

    #[test]
    fn add_layer_is_idempotent_on_output() {
        let mut tree = usr_merged_tree();
        let written = tree
            .add_layer(layer(vec![file("/bin/sh", b"bb"), hardlink("/bin/ash", "/bin/sh"), file("/opt/x/y", b"y")]))
            .unwrap();

        let mut fresh = usr_merged_tree();
        let again = fresh.add_layer(written.clone()).unwrap();

        assert_eq!(again, written);
    }

    #[test]
    fn resolve_follows_relative_and_absolute() {
        let mut tree = usr_merged_tree();
        tree.add_layer(layer(vec![
            file("/usr/bin/busybox", b"bb"),
            Entry::symlink("/usr/bin/sh", "busybox"),
            Entry::symlink("/usr/local/bin/sh", "/bin/sh"),
        ]))
        .unwrap();

        let (path, entry) = tree.resolve("/usr/local/bin/sh").unwrap();

        assert_eq!(path, "/usr/bin/busybox");
        assert_eq!(entry, &file("/usr/bin/busybox", b"bb"));
    }

    #[test]
    fn resolve_follows_dot_dot_targets() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![
            file("/opt/tool/bin/tool", b"t"),
            Entry::symlink("/usr/bin/tool", "../../opt/tool/bin/tool"),
        ]))
        .unwrap();

        assert_eq!(tree.resolve("/usr/bin/tool").unwrap().0, "/opt/tool/bin/tool");
    }

    #[test]
    fn resolve_returns_none_for_missing() {
        let tree = usr_merged_tree();

        assert!(tree.resolve("/bin/python3").is_none());
    }

    #[test]
    fn resolve_returns_none_for_loop() {
        let mut tree = ImageTree::new();
        tree.add_layer(layer(vec![Entry::symlink("/a", "b"), Entry::symlink("/b", "a")])).unwrap();

        assert!(tree.resolve("/a").is_none());
    }

    #[test]
    fn resolve_follows_forty_hops_not_more() {
        let mut entries = vec![file("/target", b"t")];
        entries.push(Entry::symlink("/link0", "target"));
        for index in 1..=40 {
            entries.push(Entry::symlink(format!("/link{index}"), format!("link{}", index - 1)));
        }
        let mut tree = ImageTree::new();
        tree.add_layer(layer(entries)).unwrap();

        assert!(tree.resolve("/link39").is_some());
        assert!(tree.resolve("/link40").is_none());
    }

    #[test]
    fn contains_follows_symlinked_parent() {
        let mut tree = usr_merged_tree();
        tree.add_layer(layer(vec![file("/usr/bin/env", b"env")])).unwrap();

        assert!(tree.contains("/bin/env"));
        assert!(!tree.contains("/bin/python3"));
    }
}
