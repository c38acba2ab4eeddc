//! The repository's `Release` file: fetching it, checking its OpenPGP
//! signature against a keyring, and reading the checksums of the indexes.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};

use super::fetch::Fetcher;
use super::{DebianError, control};

/// The keyring used when neither kuul.toml nor the apt source names one.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The verified fields of a `Release` file that kuul uses.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// SHA256 and size of each index file, by path relative to
    /// `dists/SUITE/`.
    pub sha256: BTreeMap<String, (String, u64)>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Whether `Architecture: all` packages have their own
    /// `binary-all/Packages` instead of appearing in each architecture's
    /// index. `No-Support-for-Architecture-all: Packages` means they do not.
    pub separate_all_index: bool,
    /// The `Valid-Until` time, after which apt and kuul reject the file.
    pub valid_until: Option<jiff::Timestamp>,
}

/// The trust check for the Release file.
pub enum Trust<'a> {
    /// Check the signature against the keys in this keyring file.
    Keyring(&'a Path),
    /// Accept the Release file without a signature check.
    Trusted,
}

/// Fetches and verifies `dists/SUITE/InRelease`, or `Release` with
/// `Release.gpg` when there is no InRelease. With `check_valid_until`, a
/// file whose `Valid-Until` has passed is rejected, as apt does, because a
/// mirror or an attacker could otherwise keep serving an old signed file
/// that lacks security updates.
///
/// NOTE: key and signature expiry are not checked.
pub fn fetch(fetcher: &Fetcher, suite: &str, trust: &Trust, check_valid_until: bool) -> Result<Release, DebianError> {
    let (text, url) = fetch_signed_text(fetcher, suite, trust)?;
    let release = parse(&text).map_err(|reason| DebianError::InvalidIndex { url: url.clone(), reason })?;

    if check_valid_until
        && let Some(valid_until) = release.valid_until
        && valid_until < jiff::Timestamp::now()
    {
        return Err(DebianError::ReleaseExpired { url, valid_until: valid_until.to_string() });
    }
    Ok(release)
}

/// Fetches the Release file, verifies its signature, and returns its signed
/// text with its URL.
fn fetch_signed_text(fetcher: &Fetcher, suite: &str, trust: &Trust) -> Result<(String, String), DebianError> {
    let dists = format!("dists/{suite}");

    if let Some(inline) = fetcher.get(&format!("{dists}/InRelease"))? {
        let url = fetcher.url(&format!("{dists}/InRelease"));
        let text = String::from_utf8(inline)
            .map_err(|_| DebianError::InvalidIndex { url: url.clone(), reason: "not UTF-8 text".to_owned() })?;
        let signed = match trust {
            Trust::Trusted => strip_cleartext_frame(&text).unwrap_or(text),
            Trust::Keyring(keyring) => verify_inline(&text, keyring, &url)?,
        };
        return Ok((signed, url));
    }

    let release_url = fetcher.url(&format!("{dists}/Release"));
    let Some(release) = fetcher.get(&format!("{dists}/Release"))? else {
        return Err(DebianError::NoRelease { url: fetcher.url(&dists) });
    };

    if let Trust::Keyring(keyring) = trust {
        let Some(signature) = fetcher.get(&format!("{dists}/Release.gpg"))? else {
            return Err(DebianError::Unsigned { url: release_url });
        };
        verify_detached(&release, &signature, keyring, &release_url)?;
    }

    let text = String::from_utf8(release)
        .map_err(|_| DebianError::InvalidIndex { url: release_url.clone(), reason: "not UTF-8 text".to_owned() })?;
    Ok((text, release_url))
}

/// Reads every public key in a binary or ASCII-armored keyring file.
pub fn load_keyring(path: &Path) -> Result<Vec<SignedPublicKey>, DebianError> {
    let bytes = std::fs::read(path)
        .map_err(|source| DebianError::Keyring { path: path.to_owned(), reason: source.to_string() })?;

    let parsed: Vec<_> = if bytes.starts_with(b"-----BEGIN") {
        let (keys, _) = SignedPublicKey::from_armor_many(BufReader::new(bytes.as_slice()))
            .map_err(|error| DebianError::Keyring { path: path.to_owned(), reason: error.to_string() })?;
        keys.collect()
    } else {
        SignedPublicKey::from_bytes_many(BufReader::new(bytes.as_slice()))
            .map_err(|error| DebianError::Keyring { path: path.to_owned(), reason: error.to_string() })?
            .collect()
    };

    // Keyrings often carry keys with algorithms or packets this parser does
    // not know; those keys are skipped rather than failing the whole file.
    let keys: Vec<SignedPublicKey> = parsed.into_iter().filter_map(Result::ok).collect();
    if keys.is_empty() {
        return Err(DebianError::Keyring { path: path.to_owned(), reason: "no usable public key".to_owned() });
    }
    Ok(keys)
}

fn verify_inline(text: &str, keyring: &Path, url: &str) -> Result<String, DebianError> {
    let keys = load_keyring(keyring)?;
    let (message, _) = CleartextSignedMessage::from_string(text).map_err(|error| DebianError::BadSignature {
        url: url.to_owned(),
        keyring: keyring.to_owned(),
        reason: error.to_string(),
    })?;

    let verified = keys.iter().any(|key| {
        message.verify(key).is_ok() || key.public_subkeys.iter().any(|subkey| message.verify(subkey).is_ok())
    });
    if !verified {
        return Err(DebianError::BadSignature {
            url: url.to_owned(),
            keyring: keyring.to_owned(),
            reason: "no key in the keyring made a valid signature".to_owned(),
        });
    }

    // Only the signed text is used, never anything around the armor.
    Ok(dash_unescape(message.text()))
}

fn verify_detached(data: &[u8], signature: &[u8], keyring: &Path, url: &str) -> Result<(), DebianError> {
    let keys = load_keyring(keyring)?;
    let bad = |reason: String| DebianError::BadSignature { url: url.to_owned(), keyring: keyring.to_owned(), reason };

    let signatures: Vec<DetachedSignature> = if signature.starts_with(b"-----BEGIN") {
        let (signatures, _) =
            DetachedSignature::from_armor_many(BufReader::new(signature)).map_err(|error| bad(error.to_string()))?;
        signatures.filter_map(Result::ok).collect()
    } else {
        DetachedSignature::from_bytes_many(BufReader::new(signature))
            .map_err(|error| bad(error.to_string()))?
            .filter_map(Result::ok)
            .collect()
    };

    let verified = signatures.iter().any(|signature| {
        keys.iter().any(|key| {
            signature.verify(key, data).is_ok()
                || key.public_subkeys.iter().any(|subkey| signature.verify(subkey, data).is_ok())
        })
    });
    if verified { Ok(()) } else { Err(bad("no key in the keyring made a valid signature".to_owned())) }
}

/// Undoes the dash-escaping of the cleartext signature framework
/// (RFC 9580, section 7.1): a line starting with `- ` loses that prefix.
fn dash_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
    }
    out
}

/// Returns the text between the cleartext header and the signature block,
/// for trusted repositories whose signature is not checked.
fn strip_cleartext_frame(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN PGP SIGNED MESSAGE-----")?;
    let body = &text[start..];
    let body = &body[body.find("\n\n")? + 2..];
    let end = body.find("-----BEGIN PGP SIGNATURE-----")?;
    Some(dash_unescape(&body[..end]))
}

/// Parses the fields of a Release file that kuul uses.
/// Parses a Release file. Fails only on a `Valid-Until` that is not a
/// date.
pub fn parse(text: &str) -> Result<Release, String> {
    let mut release = Release::default();
    let mut invalid = None;
    control::for_each_stanza(text, |fields| {
        let words = |name: &str| -> Vec<String> {
            control::field(fields, name).unwrap_or_default().split_whitespace().map(str::to_owned).collect()
        };
        release.architectures = words("Architectures");
        release.components = words("Components");
        release.separate_all_index = words("Architectures").iter().any(|architecture| architecture == "all")
            && control::field(fields, "No-Support-for-Architecture-all") != Some("Packages");

        for line in control::field(fields, "SHA256").unwrap_or_default().lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [hash, size, path] = parts[..]
                && let Ok(size) = size.parse()
            {
                release.sha256.insert(path.to_owned(), (hash.to_ascii_lowercase(), size));
            }
        }

        if let Some(value) = control::field(fields, "Valid-Until") {
            match parse_date(value) {
                Some(timestamp) => release.valid_until = Some(timestamp),
                None => invalid = Some(format!("invalid `Valid-Until` date `{value}`")),
            }
        }
    });
    match invalid {
        Some(reason) => Err(reason),
        None => Ok(release),
    }
}

/// Parses a Release date such as `Sat, 12 Dec 2026 08:14:11 UTC`: RFC 2822,
/// except that Debian's archive tools write the zone as `UTC`, which RFC
/// 2822 does not list.
fn parse_date(value: &str) -> Option<jiff::Timestamp> {
    let value = value.trim();
    let normalized = match value.strip_suffix(" UTC") {
        Some(rest) => format!("{rest} +0000"),
        None => value.to_owned(),
    };
    jiff::fmt::rfc2822::parse(&normalized).ok().map(|zoned| zoned.timestamp())
}

/// Returns the keyring path for the repository: the configured one, else
/// the apt source's `Signed-By`, else [`DEFAULT_KEYRING`].
pub fn keyring_path(configured: Option<&Path>, signed_by: Option<&Path>) -> PathBuf {
    configured.or(signed_by).map(Path::to_owned).unwrap_or_else(|| PathBuf::from(DEFAULT_KEYRING))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "Origin: Debian\nSuite: stable\nCodename: bookworm\nArchitectures: all amd64 arm64\nComponents: main contrib\nNo-Support-for-Architecture-all: Packages\nSHA256:\n 0123abcd 1234 main/binary-amd64/Packages\n 4567EF01 99 main/binary-amd64/Packages.xz\n";

    #[test]
    fn release_lists_sha256_entries() {
        let release = parse(RELEASE).unwrap();

        assert_eq!(release.sha256.get("main/binary-amd64/Packages"), Some(&("0123abcd".to_owned(), 1234)));
        assert_eq!(release.sha256.get("main/binary-amd64/Packages.xz"), Some(&("4567ef01".to_owned(), 99)));
        assert_eq!(release.components, ["main", "contrib"]);
    }

    #[test]
    fn release_without_separate_all_index() {
        assert!(!parse(RELEASE).unwrap().separate_all_index);
    }

    #[test]
    fn release_with_separate_all_index() {
        assert!(parse("Architectures: all amd64\n").unwrap().separate_all_index);
    }

    #[test]
    fn dash_unescape_strips_prefix() {
        assert_eq!(dash_unescape("- -----X\nplain\n"), "-----X\nplain\n");
    }

    #[test]
    fn keyring_path_prefers_configured() {
        let configured = PathBuf::from("/a.gpg");
        let signed_by = PathBuf::from("/b.gpg");

        assert_eq!(keyring_path(Some(&configured), Some(&signed_by)), configured);
        assert_eq!(keyring_path(None, Some(&signed_by)), signed_by);
        assert_eq!(keyring_path(None, None), PathBuf::from(DEFAULT_KEYRING));
    }

    #[test]
    fn valid_until_with_utc_zone_parses() {
        let release = parse(&format!("{RELEASE}Valid-Until: Sat, 12 Dec 2026 08:14:11 UTC\n")).unwrap();

        assert_eq!(release.valid_until, Some("2026-12-12T08:14:11Z".parse().unwrap()));
    }

    #[test]
    fn valid_until_with_offset_parses() {
        let release = parse(&format!("{RELEASE}Valid-Until: Sat, 12 Dec 2026 09:14:11 +0100\n")).unwrap();

        assert_eq!(release.valid_until, Some("2026-12-12T08:14:11Z".parse().unwrap()));
    }

    #[test]
    fn invalid_valid_until_is_rejected() {
        let result = parse(&format!("{RELEASE}Valid-Until: next week\n"));

        assert_eq!(result.unwrap_err(), "invalid `Valid-Until` date `next week`");
    }

    #[test]
    fn release_without_valid_until_parses() {
        assert_eq!(parse(RELEASE).unwrap().valid_until, None);
    }
}
