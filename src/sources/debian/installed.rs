//! The packages a base image already has, read from its dpkg database:
//! `/var/lib/dpkg/status` on Debian and Ubuntu, and one file per package
//! under `/var/lib/dpkg/status.d/` on distroless images (and on kuul's own
//! images). The resolver treats these packages as installed.

use debversion::Version;

use super::control;
use super::index::{MultiArch, Package};
use crate::image::tree::ImageTree;
use crate::sources::{Content, EntryKind};

/// The dpkg status database of a Debian or Ubuntu system.
pub const STATUS_FILE: &str = "/var/lib/dpkg/status";

/// The directory of per-package status files that distroless images use.
pub const STATUS_DIRECTORY: &str = "/var/lib/dpkg/status.d";

/// The `Status` value of a fully installed package.
const INSTALLED_STATUS: &str = "install ok installed";

/// Reports whether the base-image reader must keep the whole content of
/// `path`, because [`from_tree`] parses it.
pub fn is_status_file(path: &str) -> bool {
    path == STATUS_FILE
        || path
            .strip_prefix(STATUS_DIRECTORY)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| !name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums"))
}

/// Returns the packages installed in `tree`, sorted by name, with the
/// reasons for any stanza that was skipped as invalid.
///
/// A package whose status file a whiteout removed is absent from the tree,
/// so it counts as not installed.
pub fn from_tree(tree: &ImageTree) -> (Vec<Package>, Vec<String>) {
    let mut packages = Vec::new();
    let mut invalid = Vec::new();

    for entry in tree.entries() {
        if !is_status_file(&entry.path) {
            continue;
        }
        let EntryKind::File { content: Content::Inline(bytes), .. } = &entry.kind else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        parse_status(&text, &mut packages, &mut invalid);
    }

    packages.sort_by(|a, b| a.name.cmp(&b.name));
    (packages, invalid)
}

/// Parses the stanzas of a dpkg status file and appends each installed
/// package to `packages`.
///
/// A stanza with a `Status` other than `install ok installed` (removed,
/// half-configured, config files only) is left out. A stanza without
/// `Status` counts as installed, because distroless status files carry
/// the package's control stanza without one.
pub fn parse_status(text: &str, packages: &mut Vec<Package>, invalid: &mut Vec<String>) {
    control::for_each_stanza(text, |fields| match parse_stanza(fields) {
        Ok(Some(package)) => packages.push(package),
        Ok(None) => {}
        Err(reason) => invalid.push(reason),
    });
}

fn parse_stanza(fields: &[(&str, &str)]) -> Result<Option<Package>, String> {
    let name = control::field(fields, "Package").ok_or("status stanza without `Package`")?;
    if control::field(fields, "Status").is_some_and(|status| status != INSTALLED_STATUS) {
        return Ok(None);
    }

    let version = control::field(fields, "Version").ok_or_else(|| format!("package `{name}` has no `Version`"))?;
    let version: Version =
        version.parse().map_err(|_| format!("package `{name}` has an invalid version `{version}`"))?;
    let architecture =
        control::field(fields, "Architecture").ok_or_else(|| format!("package `{name}` has no `Architecture`"))?;
    let provides = control::field(fields, "Provides")
        .map(control::parse_relations)
        .transpose()
        .map_err(|part| format!("package `{name}` has an invalid `Provides` entry `{part}`"))?
        .unwrap_or_default();
    let multi_arch = match control::field(fields, "Multi-Arch") {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    };

    // Only the fields that decide whether a dependency is satisfied matter
    // here; the download fields stay empty because nothing is downloaded.
    Ok(Some(Package {
        name: name.to_owned(),
        version,
        architecture: architecture.to_owned(),
        multi_arch,
        essential: control::field(fields, "Essential") == Some("yes"),
        priority: control::field(fields, "Priority").unwrap_or("optional").to_owned(),
        pre_depends: Vec::new(),
        depends: Vec::new(),
        provides,
        conflicts: Vec::new(),
        breaks: Vec::new(),
        filename: String::new(),
        size: 0,
        sha256: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Entry;

    const DEBIAN_STATUS: &str = "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9+deb12u4\nProvides: libc6-dev-compat (= 2.36)\nDescription: GNU C Library\n shared libraries\n\nPackage: oldlib\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\nPackage: mawk\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.3.4-1\nProvides: awk\n";

    fn parse(text: &str) -> (Vec<Package>, Vec<String>) {
        let (mut packages, mut invalid) = (Vec::new(), Vec::new());
        parse_status(text, &mut packages, &mut invalid);
        (packages, invalid)
    }

    fn tree_with(files: &[(&str, &str)]) -> ImageTree {
        let mut tree = ImageTree::new();
        for (path, text) in files {
            tree.insert_base_entry(Entry::inline_file(*path, text.as_bytes().to_vec(), 0o644));
        }
        tree
    }

    #[test]
    fn status_installed_stanzas_kept() {
        let (packages, invalid) = parse(DEBIAN_STATUS);
        let names: Vec<&str> = packages.iter().map(|package| package.name.as_str()).collect();

        assert!(invalid.is_empty(), "{invalid:?}");
        assert_eq!(names, ["libc6", "mawk"]);
    }

    #[test]
    fn status_fields_parsed() {
        let (packages, _) = parse(DEBIAN_STATUS);
        let libc = &packages[0];

        assert_eq!(libc.version.to_string(), "2.36-9+deb12u4");
        assert_eq!(libc.architecture, "amd64");
        assert_eq!(libc.multi_arch, MultiArch::Same);
        assert_eq!(libc.provides[0][0].name, "libc6-dev-compat");
    }

    #[test]
    fn status_without_status_field_installed() {
        let (packages, _) = parse("Package: base-files\nVersion: 12.4\nArchitecture: amd64\n");

        assert_eq!(packages.len(), 1);
    }

    #[test]
    fn status_invalid_version_reported() {
        let (packages, invalid) = parse("Package: x\nStatus: install ok installed\nVersion: !\nArchitecture: all\n");

        assert!(packages.is_empty());
        assert_eq!(invalid, ["package `x` has an invalid version `!`"]);
    }

    #[test]
    fn status_file_paths_recognized() {
        assert!(is_status_file("/var/lib/dpkg/status"));
        assert!(is_status_file("/var/lib/dpkg/status.d/libc6"));
        assert!(is_status_file("/var/lib/dpkg/status.d/python3.11-minimal"));
        assert!(!is_status_file("/var/lib/dpkg/status.d/libc6.md5sums"));
        assert!(!is_status_file("/var/lib/dpkg/status-old"));
        assert!(!is_status_file("/var/lib/dpkg/status.d"));
    }

    #[test]
    fn tree_reads_both_databases() {
        let tree = tree_with(&[
            (STATUS_FILE, "Package: mawk\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"),
            ("/var/lib/dpkg/status.d/busybox", "Package: busybox\nVersion: 1.35\nArchitecture: amd64\n"),
            ("/var/lib/dpkg/status.d/busybox.md5sums", "00  bin/busybox\n"),
        ]);
        let (packages, invalid) = from_tree(&tree);
        let names: Vec<&str> = packages.iter().map(|package| package.name.as_str()).collect();

        assert!(invalid.is_empty(), "{invalid:?}");
        assert_eq!(names, ["busybox", "mawk"]);
    }

    #[test]
    fn tree_whiteout_uninstalls_package() {
        let mut tree = tree_with(&[
            ("/var/lib/dpkg/status.d/busybox", "Package: busybox\nVersion: 1.35\nArchitecture: amd64\n"),
            ("/var/lib/dpkg/status.d/libc6", "Package: libc6\nVersion: 2.36\nArchitecture: amd64\n"),
        ]);
        tree.remove("/var/lib/dpkg/status.d/busybox");
        let (packages, _) = from_tree(&tree);

        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "libc6");
    }
}
