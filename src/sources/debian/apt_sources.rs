//! The machine's apt sources, read to find a mirror when kuul.toml names
//! none: `sources.list` and `sources.list.d/*.list` in the one-line format,
//! and `sources.list.d/*.sources` in the deb822 format (sources.list(5)).

use std::path::{Path, PathBuf};

use super::control;

/// The locations of apt's source lists. Tests point these at temporary files.
#[derive(Debug, Clone)]
pub struct AptSourcePaths {
    pub list_file: PathBuf,
    pub list_dir: PathBuf,
}

impl Default for AptSourcePaths {
    fn default() -> Self {
        AptSourcePaths {
            list_file: PathBuf::from("/etc/apt/sources.list"),
            list_dir: PathBuf::from("/etc/apt/sources.list.d"),
        }
    }
}

/// One `deb` line, or one suite of a deb822 stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
    /// The `arch=` / `Architectures:` option; empty when unrestricted.
    pub architectures: Vec<String>,
    /// The `signed-by=` / `Signed-By:` option, when it names a file.
    pub signed_by: Option<PathBuf>,
    /// The file the entry was read from, for messages.
    pub origin: PathBuf,
}

/// Reads every `deb` entry under `paths`, in the order apt reads them:
/// `sources.list` first, then the directory's files sorted by name.
/// Unreadable or missing files are skipped, as apt skips missing ones.
pub fn read(paths: &AptSourcePaths) -> Vec<AptSource> {
    let mut sources = Vec::new();
    if let Ok(text) = std::fs::read_to_string(&paths.list_file) {
        sources.extend(parse_one_line(&text, &paths.list_file));
    }

    let mut files: Vec<PathBuf> = std::fs::read_dir(&paths.list_dir)
        .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.sort();

    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|extension| extension.to_str()) {
            Some("list") => sources.extend(parse_one_line(&text, &file)),
            Some("sources") => sources.extend(parse_deb822(&text, &file)),
            _ => {}
        }
    }
    sources
}

/// Returns the first entry that serves `suite` with every component in
/// `components` for `architecture`.
pub fn find<'a>(
    sources: &'a [AptSource],
    suite: &str,
    components: &[String],
    architecture: &str,
) -> Option<&'a AptSource> {
    sources.iter().find(|source| {
        source.suite == suite
            && components.iter().all(|component| source.components.contains(component))
            && (source.architectures.is_empty() || source.architectures.iter().any(|a| a == architecture))
    })
}

/// Parses `deb [options] URI SUITE COMPONENT...` lines; `deb-src` lines and
/// comments are skipped.
fn parse_one_line(text: &str, origin: &Path) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("deb ").or_else(|| line.strip_prefix("deb\t")) else {
            continue;
        };

        let mut rest = rest.trim_start();
        let mut architectures = Vec::new();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                match option.split_once('=') {
                    Some(("arch", value)) => architectures = value.split(',').map(str::to_owned).collect(),
                    Some(("signed-by", value)) if value.starts_with('/') => signed_by = Some(PathBuf::from(value)),
                    _ => {}
                }
            }
            rest = after.trim_start();
        }

        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(AptSource {
            uri: uri.to_owned(),
            suite: suite.to_owned(),
            components: words.map(str::to_owned).collect(),
            architectures,
            signed_by,
            origin: origin.to_owned(),
        });
    }
    sources
}

/// Parses deb822 stanzas. A stanza with several URIs or suites yields one
/// entry for each pair; `Enabled: no` stanzas and `deb-src` types are
/// skipped. An inline `Signed-By` key block is ignored.
fn parse_deb822(text: &str, origin: &Path) -> Vec<AptSource> {
    let mut sources = Vec::new();
    control::for_each_stanza(text, |fields| {
        let words = |name: &str| -> Vec<String> {
            control::field(fields, name).unwrap_or_default().split_whitespace().map(str::to_owned).collect()
        };

        if !words("Types").iter().any(|kind| kind == "deb") {
            return;
        }
        if control::field(fields, "Enabled").is_some_and(|value| value.eq_ignore_ascii_case("no")) {
            return;
        }

        let signed_by = control::field(fields, "Signed-By")
            .map(str::trim)
            .filter(|value| value.starts_with('/') && !value.contains('\n'))
            .map(PathBuf::from);
        for uri in words("URIs") {
            for suite in words("Suites") {
                sources.push(AptSource {
                    uri: uri.clone(),
                    suite,
                    components: words("Components"),
                    architectures: words("Architectures"),
                    signed_by: signed_by.clone(),
                    origin: origin.to_owned(),
                });
            }
        }
    });
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths_with(list: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, AptSourcePaths) {
        let dir = tempfile::tempdir().unwrap();
        let list_file = dir.path().join("sources.list");
        let list_dir = dir.path().join("sources.list.d");
        std::fs::write(&list_file, list).unwrap();
        std::fs::create_dir(&list_dir).unwrap();
        for (name, text) in files {
            std::fs::write(list_dir.join(name), text).unwrap();
        }
        (dir, AptSourcePaths { list_file, list_dir })
    }

    fn main_only() -> Vec<String> {
        vec!["main".to_owned()]
    }

    #[test]
    fn one_line_entry_with_options() {
        let (_dir, paths) = paths_with(
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.test/debian bookworm main contrib\n",
            &[],
        );
        let sources = read(&paths);

        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].uri, "http://mirror.test/debian");
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(sources[0].architectures, ["amd64"]);
        assert_eq!(sources[0].signed_by, Some(PathBuf::from("/k.gpg")));
    }

    #[test]
    fn deb_src_lines_skipped() {
        let (_dir, paths) = paths_with("deb-src http://mirror.test/debian bookworm main\n", &[]);

        assert!(read(&paths).is_empty());
    }

    #[test]
    fn deb822_entry_expands_suites() {
        let stanza = "Types: deb deb-src\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
        let (_dir, paths) = paths_with("", &[("debian.sources", stanza)]);
        let sources = read(&paths);

        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].suite, "bookworm-updates");
        assert_eq!(sources[0].signed_by, Some(PathBuf::from("/usr/share/keyrings/debian-archive-keyring.gpg")));
    }

    #[test]
    fn deb822_disabled_stanza_skipped() {
        let stanza = "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n";
        let (_dir, paths) = paths_with("", &[("debian.sources", stanza)]);

        assert!(read(&paths).is_empty());
    }

    #[test]
    fn unknown_extensions_ignored() {
        let (_dir, paths) = paths_with("", &[("old.list.disabled", "deb http://mirror.test/debian bookworm main\n")]);

        assert!(read(&paths).is_empty());
    }

    #[test]
    fn find_matches_suite_and_components() {
        let (_dir, paths) = paths_with(
            "deb http://one.test/debian bookworm-updates main\ndeb http://two.test/debian bookworm contrib\ndeb http://three.test/debian bookworm main contrib\n",
            &[],
        );
        let sources = read(&paths);
        let found = find(&sources, "bookworm", &main_only(), "amd64").unwrap();

        assert_eq!(found.uri, "http://three.test/debian");
    }

    #[test]
    fn find_respects_architecture_option() {
        let (_dir, paths) = paths_with("deb [arch=arm64] http://one.test/debian bookworm main\n", &[]);
        let sources = read(&paths);

        assert!(find(&sources, "bookworm", &main_only(), "amd64").is_none());
    }
}
