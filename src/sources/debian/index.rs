//! Packages indexes: choosing, verifying and decompressing them, and
//! parsing their stanzas into [`Package`] records.

use std::io::Read;

use debversion::Version;

use super::DebianError;
use super::control::{self, Relations};
use super::fetch::{Fetcher, sha256_hex};
use super::release::Release;

/// A package's `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MultiArch {
    No,
    Same,
    Foreign,
    Allowed,
}

/// One binary package stanza from a Packages index.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    /// `required`, `important`, `standard`, `optional` or `extra`.
    pub priority: String,
    pub pre_depends: Relations,
    pub depends: Relations,
    pub provides: Relations,
    pub conflicts: Relations,
    pub breaks: Relations,
    /// Path of the `.deb` below the repository base.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// Compressed forms of a Packages index, in the order kuul prefers them.
const INDEX_VARIANTS: [&str; 3] = ["Packages.xz", "Packages.gz", "Packages"];

/// Fetches the Packages index of each component for `architecture` (and
/// for `all` when the repository keeps it separately), checks each against
/// the Release checksums and returns the decompressed texts.
pub fn fetch_indexes(
    fetcher: &Fetcher,
    suite: &str,
    release: &Release,
    components: &[String],
    architecture: &str,
) -> Result<Vec<String>, DebianError> {
    let mut architectures = vec![architecture.to_owned()];
    if release.separate_all_index && architecture != "all" {
        architectures.push("all".to_owned());
    }

    let mut texts = Vec::new();
    for component in components {
        for architecture in &architectures {
            let directory = format!("{component}/binary-{architecture}");
            let Some((name, (sha256, size))) = INDEX_VARIANTS
                .iter()
                .find_map(|variant| release.sha256.get_key_value(&format!("{directory}/{variant}")))
            else {
                if architecture == "all" {
                    continue;
                }
                return Err(DebianError::NoIndex {
                    url: fetcher.url(&format!("dists/{suite}/{directory}/")),
                    architecture: architecture.clone(),
                    available: release.architectures.join(" "),
                });
            };

            let path = format!("dists/{suite}/{name}");
            let url = fetcher.url(&path);
            let bytes = fetcher.get(&path)?.ok_or_else(|| DebianError::Fetch {
                url: url.clone(),
                reason: "not found, although Release lists it".to_owned(),
            })?;

            let actual = sha256_hex(&bytes);
            if &actual != sha256 || bytes.len() as u64 != *size {
                return Err(DebianError::ChecksumMismatch {
                    what: format!("index `{url}`"),
                    expected: format!("{sha256} ({size} bytes)"),
                    actual: format!("{actual} ({} bytes)", bytes.len()),
                });
            }
            texts.push(decompress(name, &bytes).map_err(|reason| DebianError::InvalidIndex { url, reason })?);
        }
    }
    Ok(texts)
}

/// Decompresses an index by the extension of its name.
pub fn decompress(name: &str, bytes: &[u8]) -> Result<String, String> {
    let mut text = String::new();
    let result = if name.ends_with(".xz") {
        lzma_rust2::XzReader::new(bytes, true).read_to_string(&mut text)
    } else if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes).read_to_string(&mut text)
    } else {
        std::str::from_utf8(bytes).map(|plain| text.push_str(plain)).map(|_| 0).map_err(std::io::Error::other)
    };
    result.map(|_| text).map_err(|error| format!("failed to decompress: {error}"))
}

/// Parses every stanza of a Packages index. Stanzas that lack a name,
/// version, architecture, filename, size or SHA256, or that have a relation
/// field apt could not parse either, are returned as errors in `invalid`.
pub fn parse_packages(text: &str, packages: &mut Vec<Package>, invalid: &mut Vec<String>) {
    control::for_each_stanza(text, |fields| match parse_stanza(fields) {
        Ok(package) => packages.push(package),
        Err(reason) => invalid.push(reason),
    });
}

fn parse_stanza(fields: &[(&str, &str)]) -> Result<Package, String> {
    let name = control::field(fields, "Package").ok_or("stanza without `Package`")?;
    let required =
        |field: &str| control::field(fields, field).ok_or_else(|| format!("package `{name}` has no `{field}`"));
    let relations = |field: &str| -> Result<Relations, String> {
        control::field(fields, field)
            .map(control::parse_relations)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|part| format!("package `{name}` has an invalid `{field}` entry `{part}`"))
    };

    let version = required("Version")?;
    let version: Version =
        version.parse().map_err(|_| format!("package `{name}` has an invalid version `{version}`"))?;
    let size = required("Size")?;
    let size = size.parse().map_err(|_| format!("package `{name}` has an invalid size `{size}`"))?;

    let multi_arch = match control::field(fields, "Multi-Arch") {
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        _ => MultiArch::No,
    };

    Ok(Package {
        name: name.to_owned(),
        version,
        architecture: required("Architecture")?.to_owned(),
        multi_arch,
        essential: control::field(fields, "Essential") == Some("yes"),
        priority: control::field(fields, "Priority").unwrap_or("optional").to_owned(),
        pre_depends: relations("Pre-Depends")?,
        depends: relations("Depends")?,
        provides: relations("Provides")?,
        conflicts: relations("Conflicts")?,
        breaks: relations("Breaks")?,
        filename: required("Filename")?.to_owned(),
        size,
        sha256: required("SHA256")?.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANZA: &str = "Package: libpq5\nVersion: 15.8-0+deb12u1\nArchitecture: amd64\nMulti-Arch: same\nPriority: optional\nDepends: libc6 (>= 2.34), libssl3 (>= 3.0.0)\nProvides: libpq (= 15)\nFilename: pool/main/p/postgresql-15/libpq5_15.8-0+deb12u1_amd64.deb\nSize: 190000\nSHA256: ABCDEF\nDescription: PostgreSQL C client library\n more text\n";

    #[test]
    fn stanza_fields_parsed() {
        let (mut packages, mut invalid) = (Vec::new(), Vec::new());
        parse_packages(STANZA, &mut packages, &mut invalid);

        assert!(invalid.is_empty(), "{invalid:?}");
        let package = &packages[0];
        assert_eq!(package.name, "libpq5");
        assert_eq!(package.version.to_string(), "15.8-0+deb12u1");
        assert_eq!(package.multi_arch, MultiArch::Same);
        assert_eq!(package.depends.len(), 2);
        assert_eq!(package.provides[0][0].name, "libpq");
        assert_eq!(package.sha256, "abcdef");
        assert_eq!(package.size, 190000);
    }

    #[test]
    fn stanza_without_filename_is_invalid() {
        let (mut packages, mut invalid) = (Vec::new(), Vec::new());
        parse_packages("Package: x\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: 00\n", &mut packages, &mut invalid);

        assert!(packages.is_empty());
        assert_eq!(invalid, ["package `x` has no `Filename`"]);
    }

    #[test]
    fn decompress_gzip_and_xz() {
        use std::io::Write;

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"Package: a\n").unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        xz.write_all(b"Package: b\n").unwrap();
        let xz = xz.finish().unwrap();

        assert_eq!(decompress("Packages.gz", &gz).unwrap(), "Package: a\n");
        assert_eq!(decompress("Packages.xz", &xz).unwrap(), "Package: b\n");
        assert_eq!(decompress("Packages", b"Package: c\n").unwrap(), "Package: c\n");
    }
}
