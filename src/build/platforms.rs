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
        "`debian.architecture` is `{architecture}`, but `--platform` requests `{platform}`, which runs `{expected}` packages\nhint: remove `debian.architecture` from kuul.toml, so each platform installs packages of its own architecture"
    )]
    DebianArchitecture { architecture: String, platform: String, expected: String },

    #[error(
        "platforms `{first}` and `{second}` both install Debian packages of architecture `{architecture}`\nhint: list one of them in `--platform`"
    )]
    SameDebianArchitecture { first: String, second: String, architecture: String },
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
/// `debian.architecture` differs, and packages for two platforms that
/// share one Debian architecture, which kuul.lock could not tell apart.
pub fn resolve(
    spec: &Spec,
    requested: &[Platform],
    default_architecture: &str,
) -> Result<Vec<Platform>, PlatformError> {
    if requested.is_empty() {
        if !spec.image.packages.is_empty()
            && let Some(architecture) = &spec.debian.architecture
        {
            return Ok(vec![debian_platform(architecture)]);
        }
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
    for (position, platform) in requested.iter().enumerate() {
        if let Some(architecture) = &spec.debian.architecture
            && debian_architecture(platform) != architecture
        {
            return Err(PlatformError::DebianArchitecture {
                architecture: architecture.clone(),
                platform: platform.to_string(),
                expected: debian_architecture(platform).to_owned(),
            });
        }

        let architecture = debian_architecture(platform);
        if let Some(first) = requested[..position].iter().find(|first| debian_architecture(first) == architecture) {
            return Err(PlatformError::SameDebianArchitecture {
                first: first.to_string(),
                second: platform.to_string(),
                architecture: architecture.to_owned(),
            });
        }
    }
    Ok(())
}

/// Returns the Debian architecture of the packages a job installs for
/// `platform`: `debian.architecture` when kuul.toml sets it (which
/// [`resolve`] has checked against the platform), else the platform's.
pub fn package_architecture(spec: &Spec, platform: &Platform) -> String {
    spec.debian.architecture.clone().unwrap_or_else(|| debian_architecture(platform).to_owned())
}

/// Returns the Debian architecture whose packages run on `platform`.
/// Debian builds `armel` for ARMv5 (which ARMv6 runs too) and `armhf`
/// for ARMv7, so `linux/arm/v5` and `linux/arm/v6` get `armel`, and any
/// other `arm` gets `armhf`.
pub fn debian_architecture(platform: &Platform) -> &str {
    match (platform.architecture.as_str(), platform.variant.as_deref()) {
        ("arm", Some("v5" | "v6")) => "armel",
        (architecture, _) => debian::debian_architecture(architecture),
    }
}

/// Returns the platform whose images install packages of the Debian
/// `architecture`; the inverse of [`debian_architecture`].
pub fn debian_platform(architecture: &str) -> Platform {
    let variant = match architecture {
        "armel" => Some("v5".to_owned()),
        "armhf" => Some("v7".to_owned()),
        _ => None,
    };
    Platform { variant, ..Platform::linux(debian::oci_architecture(architecture)) }
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
    fn resolve_accepts_packages_on_two_platforms() {
        let requested = [Platform::linux("amd64"), Platform::linux("arm64")];

        let platforms = resolve(&spec("packages = [\"busybox\"]"), &requested, "amd64").unwrap();

        assert_eq!(platforms, requested);
    }

    #[test]
    fn resolve_rejects_debian_architecture_on_two_platforms() {
        let requested = [Platform::linux("amd64"), Platform::linux("arm64")];
        let text = "packages = [\"busybox\"]\n\n[debian]\narchitecture = \"amd64\"";

        let result = resolve(&spec(text), &requested, "amd64");

        assert!(matches!(result, Err(PlatformError::DebianArchitecture { .. })), "{result:?}");
    }

    #[test]
    fn resolve_rejects_platforms_sharing_debian_architecture() {
        let requested = parse("linux/arm/v7,linux/arm").unwrap();

        let error = resolve(&spec("packages = [\"busybox\"]"), &requested, "amd64").unwrap_err().to_string();

        assert!(error.contains("`linux/arm/v7` and `linux/arm` both install"), "{error}");
        assert!(error.contains("architecture `armhf`"), "{error}");
    }

    #[test]
    fn resolve_accepts_two_arm_variants_without_packages() {
        let requested = parse("linux/arm/v7,linux/arm").unwrap();

        let platforms = resolve(&spec(""), &requested, "amd64").unwrap();

        assert_eq!(platforms, requested);
    }

    #[test]
    fn debian_architecture_splits_arm_variants() {
        let platforms = parse("linux/arm/v5,linux/arm/v6,linux/arm/v7,linux/arm,linux/386,linux/arm64/v8").unwrap();

        let names: Vec<&str> = platforms.iter().map(debian_architecture).collect();

        assert_eq!(names, ["armel", "armel", "armhf", "armhf", "i386", "arm64"]);
    }

    #[test]
    fn debian_platform_inverts_debian_architecture() {
        for architecture in ["amd64", "arm64", "armel", "armhf", "i386", "ppc64el", "s390x", "riscv64"] {
            let platform = debian_platform(architecture);

            assert_eq!(debian_architecture(&platform), architecture, "{platform}");
        }
    }

    #[test]
    fn resolve_rejects_debian_architecture_of_other_variant() {
        let requested = parse("linux/arm/v6").unwrap();
        let text = "packages = [\"busybox\"]\n\n[debian]\narchitecture = \"armhf\"";

        let result = resolve(&spec(text), &requested, "amd64");

        assert!(matches!(result, Err(PlatformError::DebianArchitecture { .. })), "{result:?}");
    }

    #[test]
    fn resolve_defaults_to_debian_architecture_platform() {
        let text = "packages = [\"busybox\"]\n\n[debian]\narchitecture = \"armel\"";

        let platforms = resolve(&spec(text), &[], "amd64").unwrap();

        assert_eq!(platforms, parse("linux/arm/v5").unwrap());
    }
}
