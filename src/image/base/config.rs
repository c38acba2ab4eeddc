//! The base image's config and how it merges with kuul's settings.
//!
//! Precedence, documented in `docs/base-images.md`:
//! - `Env`: the base's variables, each replaced by kuul's variable of the
//!   same name. `PATH` is the base's `PATH` followed by kuul's directories
//!   that it lacks.
//! - `Labels`: the base's labels, overridden by `image.labels` and kuul's own.
//! - `User`, `Entrypoint`, `WorkingDir`: kuul's values, because the CronJob
//!   runs the user and command that kuul.toml sets. The base's `Cmd` is
//!   dropped so it is not appended to kuul's entrypoint as arguments.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::BaseError;

/// The parts of a base image config that kuul keeps or checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaseConfig {
    pub os: String,
    pub architecture: String,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub diff_ids: Vec<String>,
    /// The base's history entries, copied unchanged into the new config.
    pub history: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    config: Option<RawExecution>,
    rootfs: RawRootFs,
    #[serde(default)]
    history: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawExecution {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawRootFs {
    diff_ids: Vec<String>,
}

/// Parses a config blob (OCI or Docker, which share these fields) and
/// checks that it lists one diff ID per layer.
pub fn parse_config(bytes: &[u8], layer_count: usize) -> Result<BaseConfig, BaseError> {
    let raw: RawConfig =
        serde_json::from_slice(bytes).map_err(|source| BaseError::InvalidConfig { reason: source.to_string() })?;

    if raw.rootfs.diff_ids.len() != layer_count {
        return Err(BaseError::InvalidConfig {
            reason: format!("the config lists {} diff IDs for {layer_count} layers", raw.rootfs.diff_ids.len()),
        });
    }

    let execution = raw.config.unwrap_or(RawExecution { env: None, user: None, labels: None });
    Ok(BaseConfig {
        os: raw.os,
        architecture: raw.architecture,
        env: execution.env.unwrap_or_default(),
        user: execution.user.unwrap_or_default(),
        labels: execution.labels.unwrap_or_default(),
        diff_ids: raw.rootfs.diff_ids,
        history: raw.history,
    })
}

/// Returns the base's `PATH` followed by each directory of `kuul_path`
/// that it lacks, or `kuul_path` when the base sets no `PATH`.
pub fn merge_path(base_env: &[String], kuul_path: &str) -> String {
    let Some(base_path) = base_env.iter().find_map(|pair| pair.strip_prefix("PATH=")) else {
        return kuul_path.to_owned();
    };

    let mut directories: Vec<&str> = base_path.split(':').filter(|dir| !dir.is_empty()).collect();
    for directory in kuul_path.split(':') {
        if !directories.contains(&directory) {
            directories.push(directory);
        }
    }
    directories.join(":")
}

/// Returns the base's variables with kuul's variables of the same name put
/// in their place, followed by kuul's other variables in their order.
pub fn merge_env(base_env: &[String], kuul_env: &[String]) -> Vec<String> {
    let name = |pair: &str| pair.split_once('=').map_or(pair, |(name, _)| name).to_owned();
    let kuul_by_name: BTreeMap<String, &String> = kuul_env.iter().map(|pair| (name(pair), pair)).collect();

    let mut merged: Vec<String> = base_env
        .iter()
        .map(|pair| kuul_by_name.get(&name(pair)).map_or_else(|| pair.clone(), |kuul| (*kuul).clone()))
        .collect();
    let base_names: Vec<String> = base_env.iter().map(|pair| name(pair)).collect();
    merged.extend(kuul_env.iter().filter(|pair| !base_names.contains(&name(pair))).cloned());
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn merge_env_kuul_overrides_base() {
        let merged = merge_env(
            &strings(&["PATH=/bin", "LANG=C.UTF-8", "HOME=/root"]),
            &strings(&["PATH=/x", "HOME=/home/nonroot", "TZ=UTC"]),
        );
        assert_eq!(merged, strings(&["PATH=/x", "LANG=C.UTF-8", "HOME=/home/nonroot", "TZ=UTC"]));
    }

    #[test]
    fn merge_path_appends_missing_directories() {
        let merged =
            merge_path(&strings(&["PATH=/usr/local/sbin:/usr/bin:/bin"]), "/usr/local/bin:/usr/bin:/bin:/opt/tool");
        assert_eq!(merged, "/usr/local/sbin:/usr/bin:/bin:/usr/local/bin:/opt/tool");
    }

    #[test]
    fn merge_path_without_base_path() {
        assert_eq!(merge_path(&strings(&["LANG=C"]), "/usr/bin"), "/usr/bin");
    }

    #[test]
    fn parse_config_checks_diff_id_count() {
        let config = br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:a"]}}"#;
        let error = parse_config(config, 2).unwrap_err().to_string();
        assert!(error.contains("1 diff IDs for 2 layers"), "{error}");
    }

    #[test]
    fn parse_config_reads_execution_fields() {
        let config = br#"{"os":"linux","architecture":"amd64","config":{"Env":["A=1"],"User":"nonroot","Labels":{"x":"y"},"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let parsed = parse_config(config, 0).unwrap();
        assert_eq!(parsed.env, strings(&["A=1"]));
        assert_eq!(parsed.user, "nonroot");
        assert_eq!(parsed.labels.get("x").map(String::as_str), Some("y"));
    }
}
