//! The platforms a build targets: `--platform` parsed and checked against the
//! job's sources before anything is pulled or collected.

use crate::image::base::manifest::Platform;
use crate::sources::debian;
use crate::spec::Spec;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "invalid platform `{value}`: expected `OS/ARCHITECTURE` or `OS/ARCHITECTURE/VARIANT`\nhint: write platforms such as `linux/amd64,linux/arm64`"
    )]
    Invalid { value: String },

    #[error("unsupported platform `{value}`: kuul builds Linux images only\nhint: use a `linux/...` platform")]
    UnsupportedOs { value: String },

    #[error("platform `{platform}` is listed twice in `--platform`\nhint: list each platform once")]
    Duplicate { platform: String },

    #[error(
        "`image.binaries` cannot be built for platform `{platform}`: host binaries exist only for the build machine's platform `{host}`\nhint: install the programs from Debian packages in `image.packages`, which kuul resolves for each architecture, or build for `{host}` only"
    )]
    HostBinaries { platform: String, host: String },

    #[error(
        "`debian.architecture` is `{architecture}` but `--platform` asks for `{platform}`\nhint: remove `debian.architecture` from kuul.toml, so each platform installs packages of its own architecture"
    )]
    DebianArchitecture { architecture: String, platform: String },

    // TODO: kuul.lock records the packages of one architecture. A lock per
    // architecture would let a multi-platform build install `image.packages`.
    #[error(
        "`image.packages` can be built for one platform at a time, but `--platform` lists {count}\nhint: kuul.lock records the packages of one architecture; build each platform separately"
    )]
    PackagesMultiPlatform { count: usize },
}

/// Parses a comma-separated `--platform` value such as
/// `linux/amd64,linux/arm64/v8`.
pub fn parse(text: &str) -> Result<Vec<Platform>, PlatformError> {
    let mut platforms = Vec::new();
    for value in text.split(',').map(str::trim) {
        let platform = parse_one(value)?;
        if platforms.contains(&platform) {
            return Err(PlatformError::Duplicate { platform: platform.to_string() });
        }
        platforms.push(platform);
    }
    Ok(platforms)
}

fn parse_one(value: &str) -> Result<Platform, PlatformError> {
    let invalid = || PlatformError::Invalid { value: value.to_owned() };
    let parts: Vec<&str> = value.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|part| !is_name(part)) {
        return Err(invalid());
    }

    if parts[0] != "linux" {
        return Err(PlatformError::UnsupportedOs { value: value.to_owned() });
    }
    Ok(Platform {
        os: parts[0].to_owned(),
        architecture: parts[1].to_owned(),
        variant: parts.get(2).map(|variant| (*variant).to_owned()),
    })
}

/// Checks that a platform part is a lowercase name, as GOOS, GOARCH and the
/// OCI variants (`v7`, `v8`) are.
fn is_name(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// Returns the platforms to build: `requested`, or when it is empty the one
/// platform that `debian.architecture` or the build machine implies.
///
/// # Errors
///
/// Fails when a source cannot supply a requested platform: host binaries
/// on any platform but the build machine's, packages whose
/// `debian.architecture` differs, and packages on several platforms.
pub fn resolve(
    spec: &Spec,
    requested: &[Platform],
    default_architecture: &str,
) -> Result<Vec<Platform>, PlatformError> {
    if requested.is_empty() {
        return Ok(vec![Platform::linux(default_architecture)]);
    }

    let host = Platform::linux(crate::build::host_architecture());
    if !spec.image.binaries.is_empty()
        && let Some(foreign) = requested.iter().find(|platform| !same_machine(platform, &host))
    {
        return Err(PlatformError::HostBinaries { platform: foreign.to_string(), host: host.to_string() });
    }

    if !spec.image.packages.is_empty() {
        check_packages(spec, requested)?;
    }
    Ok(requested.to_vec())
}

/// Compares OS and architecture only: the build machine's variant is not
/// known, and binaries that run on it run on any variant it accepts.
fn same_machine(platform: &Platform, host: &Platform) -> bool {
    platform.os == host.os && platform.architecture == host.architecture
}

fn check_packages(spec: &Spec, requested: &[Platform]) -> Result<(), PlatformError> {
    if requested.len() > 1 {
        return Err(PlatformError::PackagesMultiPlatform { count: requested.len() });
    }

    let platform = &requested[0];
    if let Some(architecture) = &spec.debian.architecture
        && debian::oci_architecture(architecture) != platform.architecture
    {
        return Err(PlatformError::DebianArchitecture {
            architecture: architecture.clone(),
            platform: platform.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Spec {
        let text =
            format!("[job]\nname = \"backup\"\nschedule = \"@daily\"\ncommand = [\"run.sh\"]\n\n[image]\n{extra}\n");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn parse_two_platforms() {
        let platforms = parse("linux/amd64,linux/arm64/v8").unwrap();

        assert_eq!(platforms[0], Platform::linux("amd64"));
        assert_eq!(platforms[1], Platform { variant: Some("v8".to_owned()), ..Platform::linux("arm64") });
    }

    #[test]
    fn parse_rejects_malformed_values() {
        for value in ["amd64", "linux/", "linux/amd64/v8/x", "linux/AMD64", ""] {
            let result = parse(value);
            assert!(matches!(result, Err(PlatformError::Invalid { .. })), "{value}: {result:?}");
        }
    }

    #[test]
    fn parse_rejects_other_os() {
        let result = parse("windows/amd64");

        assert!(matches!(result, Err(PlatformError::UnsupportedOs { .. })), "{result:?}");
    }

    #[test]
    fn parse_rejects_duplicate_platform() {
        let result = parse("linux/amd64,linux/amd64");

        assert!(matches!(result, Err(PlatformError::Duplicate { .. })), "{result:?}");
    }

    #[test]
    fn resolve_defaults_to_one_platform() {
        let platforms = resolve(&spec(""), &[], "riscv64").unwrap();

        assert_eq!(platforms, [Platform::linux("riscv64")]);
    }

    #[test]
    fn resolve_rejects_foreign_host_binaries() {
        let foreign = if crate::build::host_architecture() == "arm64" { "amd64" } else { "arm64" };
        let requested = [Platform::linux(crate::build::host_architecture()), Platform::linux(foreign)];

        let error = resolve(&spec("binaries = [\"busybox\"]"), &requested, "amd64").unwrap_err().to_string();

        assert!(error.contains(&format!("platform `linux/{foreign}`")), "{error}");
        assert!(error.contains("exist only for the build machine's platform"), "{error}");
        assert!(error.contains("hint: install the programs from Debian packages"), "{error}");
    }

    #[test]
    fn resolve_accepts_host_binaries_on_host() {
        let requested = [Platform::linux(crate::build::host_architecture())];

        let platforms = resolve(&spec("binaries = [\"busybox\"]"), &requested, "amd64").unwrap();

        assert_eq!(platforms, requested);
    }

    #[test]
    fn resolve_rejects_packages_on_two_platforms() {
        let requested = [Platform::linux("amd64"), Platform::linux("arm64")];

        let result = resolve(&spec("packages = [\"busybox\"]"), &requested, "amd64");

        assert!(matches!(result, Err(PlatformError::PackagesMultiPlatform { count: 2 })), "{result:?}");
    }
}
