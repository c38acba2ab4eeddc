//! Stand-ins for the maintainer-script work a job relies on, since kuul
//! runs no maintainer scripts:
//!
//! - `/etc/ssl/certs/ca-certificates.crt`, the bundle `update-ca-certificates`
//!   builds from the packaged certificates, and `SSL_CERT_FILE` pointing at it;
//! - the symlinks that `update-alternatives --install` calls in `postinst`
//!   scripts register, such as `/usr/bin/awk`;
//! - `LD_LIBRARY_PATH` for library directories that packages add through
//!   `/etc/ld.so.conf.d/`, because no `ld.so.cache` is generated;
//! - `/var/lib/dpkg/status.d/NAME` and `NAME.md5sums`, the per-package
//!   records that distroless images carry, so image scanners see the packages.
//!
//! `/etc/passwd`, `/etc/group` (with `nonroot`) and `/etc/nsswitch.conf`
//! come from the system files every image has.

use std::collections::BTreeMap;

use super::DebianError;
use super::fetch::Cache;
use super::unpack::{PackageEntryKind, Unpacked};
use crate::sources::Entry;

/// The path of the bundle that `update-ca-certificates` writes.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Returns the directories Debian's `ld.so` searches without a cache, for
/// the multiarch triplet `triplet`.
fn default_library_dirs(triplet: &str) -> Vec<String> {
    vec![format!("/lib/{triplet}"), format!("/usr/lib/{triplet}"), "/lib".to_owned(), "/usr/lib".to_owned()]
}

/// Generated entries and environment variables.
#[derive(Debug, Default)]
pub struct StandIns {
    pub entries: Vec<Entry>,
    pub env: Vec<(String, String)>,
}

/// Builds every stand-in for the unpacked packages, given as
/// `(package name, contents)` pairs sorted by name.
pub fn build(cache: &Cache, packages: &[(String, Unpacked)], architecture: &str) -> Result<StandIns, DebianError> {
    let mut stand_ins = StandIns::default();

    if packages.iter().any(|(name, _)| name == "ca-certificates") {
        let bundle = ca_bundle(cache, packages)?;
        stand_ins.entries.push(Entry::inline_file(CA_BUNDLE, bundle, 0o644));
        stand_ins.env.push(("SSL_CERT_FILE".to_owned(), CA_BUNDLE.to_owned()));
    }

    stand_ins.entries.extend(alternatives(packages));

    let extra_dirs = extra_library_dirs(cache, packages, &multiarch_triplet(architecture))?;
    if !extra_dirs.is_empty() {
        stand_ins.env.push(("LD_LIBRARY_PATH".to_owned(), extra_dirs.join(":")));
    }

    for (name, unpacked) in packages {
        stand_ins.entries.push(Entry::inline_file(
            format!("/var/lib/dpkg/status.d/{name}"),
            status_record(&unpacked.control),
            0o644,
        ));
        if let Some(md5sums) = &unpacked.md5sums {
            stand_ins.entries.push(Entry::inline_file(
                format!("/var/lib/dpkg/status.d/{name}.md5sums"),
                md5sums.as_bytes().to_vec(),
                0o644,
            ));
        }
    }
    Ok(stand_ins)
}

/// Returns the control stanza with one trailing newline, as distroless
/// writes it.
fn status_record(control: &str) -> Vec<u8> {
    let mut record = control.trim_end().to_owned();
    record.push('\n');
    record.into_bytes()
}

/// Concatenates every `*.crt` under `/usr/share/ca-certificates/`, sorted
/// by path. `update-ca-certificates` (ca-certificates 20230311) includes
/// the certificates that `/etc/ca-certificates.conf` enables; a fresh install
/// enables all of them, in the same sorted order.
fn ca_bundle(cache: &Cache, packages: &[(String, Unpacked)]) -> Result<Vec<u8>, DebianError> {
    let mut certificates = BTreeMap::new();
    for (_, unpacked) in packages {
        for entry in &unpacked.entries {
            if let PackageEntryKind::File { sha256, .. } = &entry.kind
                && entry.path.starts_with("/usr/share/ca-certificates/")
                && entry.path.ends_with(".crt")
            {
                certificates.insert(entry.path.clone(), sha256.clone());
            }
        }
    }

    let mut bundle = Vec::new();
    for sha256 in certificates.values() {
        let path = cache.file_path(sha256);
        let mut pem = std::fs::read(&path).map_err(|source| DebianError::Io { path, source })?;
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        bundle.extend_from_slice(&pem);
    }
    Ok(bundle)
}

/// One `update-alternatives --install` call found in a postinst script.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    link: String,
    name: String,
    path: String,
    priority: i64,
    slaves: Vec<(String, String, String)>,
}

/// Creates `/etc/alternatives/NAME -> PATH` and `LINK -> /etc/alternatives/NAME`
/// for the highest-priority alternative of each name whose path a package
/// ships, as `update-alternatives` does in automatic mode. Calls that use
/// shell variables are skipped, since their values are only known when the
/// script runs.
fn alternatives(packages: &[(String, Unpacked)]) -> Vec<Entry> {
    let shipped: std::collections::HashSet<&str> =
        packages.iter().flat_map(|(_, unpacked)| unpacked.entries.iter().map(|entry| entry.path.as_str())).collect();

    let mut best: BTreeMap<String, Alternative> = BTreeMap::new();
    for (_, unpacked) in packages {
        let Some(script) = &unpacked.postinst else {
            continue;
        };
        for alternative in parse_alternatives(script) {
            if !shipped.contains(alternative.path.as_str()) || shipped.contains(alternative.link.as_str()) {
                continue;
            }
            let better = best.get(&alternative.name).is_none_or(|current| alternative.priority > current.priority);
            if better {
                best.insert(alternative.name.clone(), alternative);
            }
        }
    }

    let mut entries = Vec::new();
    for alternative in best.values() {
        let links = std::iter::once((&alternative.link, &alternative.name, &alternative.path))
            .chain(alternative.slaves.iter().map(|(link, name, path)| (link, name, path)));
        for (link, name, path) in links {
            if !shipped.contains(path.as_str()) || shipped.contains(link.as_str()) {
                continue;
            }
            entries.push(Entry::symlink(format!("/etc/alternatives/{name}"), path.clone()));
            entries.push(Entry::symlink(link.clone(), format!("/etc/alternatives/{name}")));
        }
    }
    entries
}

fn parse_alternatives(script: &str) -> Vec<Alternative> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();

    for line in joined.lines() {
        let Some(start) = line.find("update-alternatives") else {
            continue;
        };
        let words: Vec<&str> = line[start..].split_whitespace().collect();
        let Some(install) = words.iter().position(|word| *word == "--install") else {
            continue;
        };
        let [link, name, path, priority] = match words.get(install + 1..install + 5) {
            Some(&[link, name, path, priority]) => [link, name, path, priority],
            _ => continue,
        };
        let Ok(priority) = priority.parse() else {
            continue;
        };

        let mut slaves = Vec::new();
        let mut rest = &words[install + 5..];
        while let [flag, link, name, path, tail @ ..] = rest {
            if *flag != "--slave" {
                break;
            }
            slaves.push((link.to_string(), name.to_string(), path.to_string()));
            rest = tail;
        }

        let literal = |word: &str| word.starts_with('/') && !word.contains('$');
        if literal(link) && literal(path) && !name.contains('$') {
            slaves.retain(|(link, name, path)| literal(link) && literal(path) && !name.contains('$'));
            found.push(Alternative {
                link: link.to_owned(),
                name: name.to_owned(),
                path: path.to_owned(),
                priority,
                slaves,
            });
        }
    }
    found
}

/// Returns the library directories listed in packaged
/// `/etc/ld.so.conf.d/*.conf` files that `ld.so` does not search by default.
fn extra_library_dirs(
    cache: &Cache,
    packages: &[(String, Unpacked)],
    triplet: &str,
) -> Result<Vec<String>, DebianError> {
    let defaults = default_library_dirs(triplet);
    let mut dirs = Vec::new();

    for (_, unpacked) in packages {
        for entry in &unpacked.entries {
            let PackageEntryKind::File { sha256, .. } = &entry.kind else {
                continue;
            };
            if !(entry.path.starts_with("/etc/ld.so.conf.d/") && entry.path.ends_with(".conf")) {
                continue;
            }
            let path = cache.file_path(sha256);
            let text = std::fs::read_to_string(&path).map_err(|source| DebianError::Io { path, source })?;
            for line in text.lines().map(str::trim) {
                if line.starts_with('/')
                    && !defaults.iter().any(|dir| dir == line)
                    && !dirs.iter().any(|dir| dir == line)
                {
                    dirs.push(line.to_owned());
                }
            }
        }
    }
    Ok(dirs)
}

/// Returns the multiarch triplet of a Debian architecture, as in
/// `dpkg-architecture -qDEB_HOST_MULTIARCH`.
pub fn multiarch_triplet(architecture: &str) -> String {
    match architecture {
        "amd64" => "x86_64-linux-gnu",
        "arm64" => "aarch64-linux-gnu",
        "armhf" => "arm-linux-gnueabihf",
        "armel" => "arm-linux-gnueabi",
        "i386" => "i386-linux-gnu",
        "ppc64el" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "mips64el" => "mips64el-linux-gnuabi64",
        other => return format!("{other}-linux-gnu"),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_parsed_with_slaves() {
        let script = "if [ \"$1\" = configure ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\nfi\n";
        let found = parse_alternatives(script);

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].link, "/usr/bin/awk");
        assert_eq!(found[0].path, "/usr/bin/mawk");
        assert_eq!(found[0].priority, 5);
        assert_eq!(found[0].slaves.len(), 1);
    }

    #[test]
    fn alternatives_with_variables_skipped() {
        let found = parse_alternatives("update-alternatives --install /usr/bin/$name $name /usr/bin/x 10\n");

        assert!(found.is_empty());
    }

    #[test]
    fn status_record_ends_with_one_newline() {
        assert_eq!(status_record("Package: a\nVersion: 1\n\n"), b"Package: a\nVersion: 1\n");
    }

    #[test]
    fn triplet_for_common_architectures() {
        assert_eq!(multiarch_triplet("amd64"), "x86_64-linux-gnu");
        assert_eq!(multiarch_triplet("arm64"), "aarch64-linux-gnu");
    }
}
