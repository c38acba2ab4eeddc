//! Grammars of the names in `kuul.toml`: Kubernetes object names, label
//! keys and values, OCI repository names and tags, and image users.
//!
//! The Kubernetes rules are those the API server applies to object names,
//! label keys and label values. The OCI rules are those of the OCI
//! distribution specification.

/// Maximum length of a DNS-1123 label and of a label name or value.
pub const MAX_LABEL_LENGTH: usize = 63;

/// Maximum length of a DNS-1123 subdomain, such as a label key prefix.
pub const MAX_SUBDOMAIN_LENGTH: usize = 253;

/// Maximum user or group id: Kubernetes rejects `runAsUser` values above
/// 2^31-1.
pub const MAX_ID: u32 = i32::MAX as u32;

/// Returns whether `name` is a DNS-1123 label: lowercase letters, digits and
/// `-`, starting and ending with a letter or digit. Length is not checked.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let is_alphanumeric = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();

    !bytes.is_empty()
        && bytes.iter().all(|byte| is_alphanumeric(byte) || *byte == b'-')
        && bytes.first().is_some_and(is_alphanumeric)
        && bytes.last().is_some_and(is_alphanumeric)
}

/// Returns whether `name` is a DNS-1123 subdomain: dot-separated DNS-1123
/// labels, at most 253 characters in all.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= MAX_SUBDOMAIN_LENGTH && name.split('.').all(is_dns1123_label)
}

/// Checks a label value: at most 63 characters from `[A-Za-z0-9._-]`,
/// starting and ending with a letter or digit, or empty. The error
/// describes the first rule broken.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_LABEL_LENGTH {
        return Err(format!("is {} characters long, more than the maximum of {MAX_LABEL_LENGTH}", value.len()));
    }
    if !value.is_empty() && !is_label_name_charset(value) {
        return Err(
            "must consist of letters, digits, `-`, `_` and `.`, and start and end with a letter or digit".to_owned()
        );
    }
    Ok(())
}

/// Checks a label key: an optional DNS-1123 subdomain prefix and `/`,
/// then a name of at most 63 characters from `[A-Za-z0-9._-]` that starts
/// and ends with a letter or digit. The error describes the first rule
/// broken.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };

    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(format!(
            "has an invalid prefix `{prefix}`: it must be a lowercase DNS subdomain such as `example.com`, at most {MAX_SUBDOMAIN_LENGTH} characters"
        ));
    }
    if name.is_empty() {
        return Err("has an empty name".to_owned());
    }
    if name.len() > MAX_LABEL_LENGTH {
        return Err(format!("has a name of {} characters, more than the maximum of {MAX_LABEL_LENGTH}", name.len()));
    }
    if !is_label_name_charset(name) {
        return Err(
            "must be a name of letters, digits, `-`, `_` and `.` that starts and ends with a letter or digit, with an optional `prefix/`"
                .to_owned(),
        );
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_label_name_charset(name: &str) -> bool {
    let bytes = name.as_bytes();
    let allowed = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');

    !bytes.is_empty()
        && bytes.iter().all(allowed)
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Returns whether `name` is an OCI repository name: `/`-separated
/// components of lowercase letters and digits, joined inside a component by
/// `.`, `_`, `__` or a run of `-`.
pub fn is_repository(name: &str) -> bool {
    name.split('/').all(is_repository_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_repository_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let is_alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();

    let mut index = 0;
    loop {
        // One run of letters and digits.
        let run_start = index;
        while index < bytes.len() && is_alphanumeric(bytes[index]) {
            index += 1;
        }
        if index == run_start {
            return false;
        }
        if index == bytes.len() {
            return true;
        }

        // One separator.
        let separator_start = index;
        while index < bytes.len() && matches!(bytes[index], b'.' | b'_' | b'-') {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let valid_separator = matches!(separator, "." | "_" | "__") || separator.bytes().all(|byte| byte == b'-');
        if !valid_separator {
            return false;
        }
    }
}

/// Returns whether `tag` is an OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let is_word = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'_';

    bytes.len() <= 128
        && bytes.first().is_some_and(is_word)
        && bytes.iter().all(|byte| is_word(byte) || matches!(byte, b'.' | b'-'))
}

/// Parses `image.user` into a user and group id: `nonroot` is 65532:65532,
/// `root` is 0:0, a bare id is used for both, and `UID:GID` sets each.
pub fn parse_user(user: &str) -> Option<(u32, u32)> {
    match user {
        "nonroot" => return Some((super::NONROOT_ID, super::NONROOT_ID)),
        "root" => return Some((0, 0)),
        _ => {}
    }

    match user.split_once(':') {
        Some((uid, gid)) => Some((parse_id(uid)?, parse_id(gid)?)),
        None => {
            let id = parse_id(user)?;
            Some((id, id))
        }
    }
}

fn parse_id(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse::<u32>().ok().filter(|id| *id <= MAX_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_label_cases() {
        for name in ["a", "backup", "pg-backup-2", "0a"] {
            assert!(is_dns1123_label(name), "`{name}` should be valid");
        }
        for name in ["", "-a", "a-", "A", "a_b", "a.b", "ä"] {
            assert!(!is_dns1123_label(name), "`{name}` should be invalid");
        }
    }

    #[test]
    fn label_key_cases() {
        for key in ["app", "kuul.dev/pool", "example.com/a_b.c-d", "A9"] {
            assert!(check_label_key(key).is_ok(), "`{key}` should be valid");
        }
        let long_name = "a".repeat(64);
        for key in ["", "/a", "a/", "Example.com/a", "a/b/c", "-a", "a b", long_name.as_str()] {
            assert!(check_label_key(key).is_err(), "`{key}` should be invalid");
        }
    }

    #[test]
    fn label_value_cases() {
        for value in ["", "a", "A.b_c-9"] {
            assert!(check_label_value(value).is_ok(), "`{value}` should be valid");
        }
        let long_value = "a".repeat(64);
        for value in ["-a", "a_", "a/b", long_value.as_str()] {
            assert!(check_label_value(value).is_err(), "`{value}` should be invalid");
        }
    }

    #[test]
    fn repository_cases() {
        for name in ["backup", "ops/pg-backup", "a.b/c__d/e--f", "a_b"] {
            assert!(is_repository(name), "`{name}` should be valid");
        }
        for name in ["", "Ops/backup", "a//b", "/a", "a/", "a___b", "a.-b", "-a", "a:b"] {
            assert!(!is_repository(name), "`{name}` should be invalid");
        }
    }

    #[test]
    fn tag_cases() {
        let longest = format!("a{}", "b".repeat(127));
        for tag in ["latest", "v1.2.3", "_x", "A-b", longest.as_str()] {
            assert!(is_tag(tag), "`{tag}` should be valid");
        }
        let too_long = "a".repeat(129);
        for tag in ["", ".a", "-a", "a/b", "a+b", too_long.as_str()] {
            assert!(!is_tag(tag), "`{tag}` should be invalid");
        }
    }

    #[test]
    fn parse_user_cases() {
        assert_eq!(parse_user("nonroot"), Some((65532, 65532)));
        assert_eq!(parse_user("root"), Some((0, 0)));
        assert_eq!(parse_user("1000"), Some((1000, 1000)));
        assert_eq!(parse_user("1000:2000"), Some((1000, 2000)));
        assert_eq!(parse_user("2147483647"), Some((MAX_ID, MAX_ID)));
        for user in ["", "2147483648", "-1", "+1", "1000:", ":1", "1:2:3", "alice", "Root"] {
            assert_eq!(parse_user(user), None, "`{user}` should be invalid");
        }
    }
}
