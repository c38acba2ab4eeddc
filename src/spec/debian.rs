//! The `[debian]` table and `image.packages`: which Debian repository the
//! image's packages come from, and how it is trusted.

use std::path::PathBuf;

use serde::Deserialize;

use super::Spec;
use super::locate::KeyPath;
use super::validate::Findings;

/// The suite used when `debian.suite` is not set.
pub const DEFAULT_SUITE: &str = "bookworm";

/// The `[debian]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debian {
    /// The suite or codename under `dists/`, such as `bookworm`.
    #[serde(default = "default_suite")]
    pub suite: String,
    /// The archive areas whose Packages indexes are searched, in order.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// A Debian architecture name such as `amd64` or `arm64`; the build
    /// machine's architecture when absent.
    pub architecture: Option<String>,
    /// The repository's base URL (`http://`, `https://` or `file://`), the
    /// directory that contains `dists/` and `pool/`. When absent, kuul takes
    /// the matching entry of the machine's apt sources.
    pub mirror: Option<String>,
    /// An OpenPGP keyring (binary or ASCII-armored) that signs the
    /// repository. When absent: the apt source's `Signed-By` keyring, else
    /// the machine's Debian archive keyring.
    pub keyring: Option<PathBuf>,
    /// Accepts the repository without checking its signature, as apt's
    /// `trusted=yes` does. Checksums are still verified.
    #[serde(default)]
    pub trusted: bool,
    /// Rejects a Release file whose `Valid-Until` has passed, as apt does;
    /// `false` accepts it, as apt's `check-valid-until=no` does, for
    /// archive snapshots.
    #[serde(default = "default_true")]
    pub check_valid_until: bool,
}

impl Default for Debian {
    fn default() -> Self {
        Debian {
            suite: default_suite(),
            components: default_components(),
            architecture: None,
            mirror: None,
            keyring: None,
            trusted: false,
            check_valid_until: true,
        }
    }
}

fn default_suite() -> String {
    DEFAULT_SUITE.to_owned()
}

fn default_true() -> bool {
    true
}

fn default_components() -> Vec<String> {
    vec!["main".to_owned()]
}

/// Reports whether `name` is a valid Debian package name: lowercase letters,
/// digits, `+`, `-` and `.`, at least two characters, starting with a letter
/// or digit (Debian Policy 5.6.7).
pub fn is_package_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };

    name.len() >= 2
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// Checks `image.packages` and the `[debian]` table.
pub(super) fn check_debian(spec: &Spec, findings: &mut Findings) {
    let root = KeyPath::default();
    let packages_path = root.key("image").key("packages");

    for name in &spec.image.packages {
        if !is_package_name(name) {
            findings.add(
                &packages_path,
                format!("invalid Debian package name `{name}`"),
                "use the name `apt-cache show` prints, such as `postgresql-client-15`",
            );
        }
    }

    let debian = &spec.debian;
    let path = root.key("debian");
    if debian.suite.is_empty() || debian.suite.contains(['/', ' ']) {
        findings.add(
            &path.key("suite"),
            format!("invalid suite `{}`", debian.suite),
            "use a suite or codename such as `bookworm`",
        );
    }
    if debian.components.is_empty() {
        findings.add(&path.key("components"), "no components given", "list at least one, such as `[\"main\"]`");
    }
    for component in &debian.components {
        if component.is_empty() || component.contains(' ') || component.starts_with('/') {
            findings.add(
                &path.key("components"),
                format!("invalid component `{component}`"),
                "use an archive area such as `main`",
            );
        }
    }
    if let Some(architecture) = &debian.architecture
        && !is_package_name(architecture)
    {
        findings.add(
            &path.key("architecture"),
            format!("invalid architecture `{architecture}`"),
            "use a Debian architecture name such as `amd64` or `arm64`",
        );
    }
    if let Some(mirror) = &debian.mirror
        && !["http://", "https://", "file://"].iter().any(|scheme| mirror.starts_with(scheme))
    {
        findings.add(
            &path.key("mirror"),
            format!("unsupported mirror URL `{mirror}`"),
            "give an `http://`, `https://` or `file://` URL of the directory that contains `dists/`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_name_accepts_policy_names() {
        for name in ["postgresql-client-15", "libc6", "g++", "libstdc++6", "python3.11", "0ad"] {
            assert!(is_package_name(name), "{name}");
        }
    }

    #[test]
    fn package_name_rejects_invalid_names() {
        for name in ["", "a", "Busybox", "-foo", "foo bar", "foo_bar", "foo:amd64"] {
            assert!(!is_package_name(name), "{name}");
        }
    }
}
