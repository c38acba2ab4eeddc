//! Validation of a deserialized `kuul.toml`: every rule that serde's types
//! cannot express. Each check adds findings and goes on, so one run reports
//! every problem.

use std::path::{Component, Path};

use super::locate::KeyPath;
use super::names;
use super::quantity::{self, Quantity};
use super::schedule;
use super::{Command, Image, Job, ResourceList, Resources, Spec};

/// Maximum length of `job.name`. The CronJob controller appends an
/// 11-character suffix (`-` and a timestamp in minutes) to the names of the
/// Jobs it creates, and a Job name is a DNS-1123 label of at most 63.
pub const MAX_JOB_NAME_LENGTH: usize = 52;

/// Maximum length of one `/`-separated part of a time zone name, as the
/// Kubernetes API server checks it.
const MAX_TIME_ZONE_PART_LENGTH: usize = 14;

/// One validation problem, before its line is looked up.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub path: KeyPath,
    pub message: String,
    pub hint: Option<String>,
}

/// The findings of one validation run.
#[derive(Debug, Default)]
pub struct Findings {
    pub list: Vec<Finding>,
}

impl Findings {
    pub fn add(&mut self, path: &KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        self.list.push(Finding { path: path.clone(), message: message.into(), hint: Some(hint.into()) });
    }
}

/// Checks every rule and returns all problems found, in document order of
/// the tables.
pub fn validate(spec: &Spec) -> Vec<Finding> {
    let mut findings = Findings::default();
    let root = KeyPath::default();

    check_job(&spec.job, &root.key("job"), &mut findings);
    check_image(&spec.image, &root.key("image"), &mut findings);
    check_resources(&spec.resources, &root.key("resources"), &mut findings);
    super::placement::check_placement(&spec.placement, &root.key("placement"), &mut findings);
    super::fragment::check_kubernetes(spec, &root.key("kubernetes"), &mut findings);
    super::debian::check_debian(spec, &mut findings);
    super::deploy::check_deploy(&spec.deploy, &root.key("deploy"), &mut findings);

    findings.list
}

fn check_job(job: &Job, path: &KeyPath, findings: &mut Findings) {
    check_job_name(&job.name, &path.key("name"), findings);
    check_schedule(&job.schedule, &path.key("schedule"), findings);
    check_timezone(&job.timezone, &path.key("timezone"), findings);
    check_command(&job.command, &path.key("command"), findings);
    super::settings::check_job_settings(job, path, findings);

    let env_path = path.key("env");
    for name in job.env.keys() {
        if !is_env_name(name) {
            findings.add(
                &env_path.key(name),
                format!("invalid environment variable name `{name}`"),
                "use letters, digits, `_`, `.` and `-`, starting with a letter or `_`",
            );
        }
    }
}

fn check_job_name(name: &str, path: &KeyPath, findings: &mut Findings) {
    if !names::is_dns1123_label(name) {
        findings.add(
            path,
            format!("invalid job name `{name}`: it must be a DNS-1123 label"),
            "use lowercase letters, digits and `-`, starting and ending with a letter or digit, such as `pg-backup`",
        );
    }
    if name.len() > MAX_JOB_NAME_LENGTH {
        findings.add(
            path,
            format!(
                "job name `{name}` is {} characters long, more than the maximum of {MAX_JOB_NAME_LENGTH}",
                name.len()
            ),
            "shorten it: the CronJob controller appends 11 characters to the names of the Jobs it creates, and Kubernetes limits those to 63",
        );
    }
}

fn check_schedule(expr: &str, path: &KeyPath, findings: &mut Findings) {
    let schedule = match schedule::parse(expr) {
        Ok(schedule) => schedule,
        Err(error) => {
            findings.list.push(Finding {
                path: path.clone(),
                message: format!("invalid schedule `{expr}`: {error}"),
                hint: error.hint(),
            });
            return;
        }
    };

    // Kubernetes accepts these, but the job then runs every second or never,
    // which is almost never intended, so kuul rejects them.
    for warning in schedule.warnings() {
        if warning.is_error() {
            findings.add(path, format!("invalid schedule `{expr}`: {warning}"), warning.hint());
        }
    }

    if !schedule.has_matching_day() {
        findings.add(
            path,
            format!("schedule `{expr}` never runs: none of its months has one of its days"),
            "check the day-of-month and month fields; Kubernetes accepts this schedule but never starts a Job",
        );
    }
}

fn check_timezone(name: &str, path: &KeyPath, findings: &mut Findings) {
    if name.is_empty() {
        findings.add(
            path,
            "empty time zone",
            "set an IANA name such as `Europe/Berlin`, or remove `job.timezone` to use `Etc/UTC`",
        );
        return;
    }
    if name.eq_ignore_ascii_case("Local") {
        findings.add(
            path,
            format!("time zone `{name}` is not an explicit time zone"),
            "set an IANA name such as `Europe/Berlin`; Kubernetes rejects `Local` because the controller's zone is unknown",
        );
        return;
    }

    let valid_parts = name.split('/').all(is_time_zone_part);
    if !valid_parts {
        findings.add(
            path,
            format!("invalid time zone `{name}`"),
            format!(
                "each `/`-separated part must be 1 to {MAX_TIME_ZONE_PART_LENGTH} characters from `A-Z a-z 0-9 . _ + -`, must not start with `-` and must not be `.` or `..`"
            ),
        );
        return;
    }

    match jiff::tz::db().get(name) {
        Ok(zone) => {
            // jiff looks names up in any case, but the controller loads
            // them from case-sensitive zoneinfo files.
            if let Some(canonical) = zone.iana_name()
                && canonical != name
                && canonical.eq_ignore_ascii_case(name)
            {
                findings.add(
                    path,
                    format!("unknown time zone `{name}`"),
                    format!("time zone names are case-sensitive: use `{canonical}`"),
                );
            }
        }
        Err(_) => findings.add(
            path,
            format!("unknown time zone `{name}`"),
            "use an IANA time zone name such as `Europe/Berlin` or `Etc/UTC`",
        ),
    }
}

fn is_time_zone_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_TIME_ZONE_PART_LENGTH
        && part != "."
        && part != ".."
        && !part.starts_with('-')
        && part.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'+' | b'-'))
}

fn check_command(command: &Command, path: &KeyPath, findings: &mut Findings) {
    let argv = command.argv();
    let program_path = match command {
        Command::Program(_) => path.clone(),
        Command::Argv(_) => path.index(0),
    };

    match argv.first() {
        None => findings.add(path, "empty command", "set the program to run, such as `command = [\"/job/backup.sh\"]`"),
        Some(program) if program.is_empty() => {
            findings.add(&program_path, "empty program path", "set the program to run, such as `/job/backup.sh`")
        }
        Some(_) => {}
    }

    for (index, argument) in argv.iter().enumerate() {
        if argument.contains('\0') {
            let argument_path = match command {
                Command::Program(_) => path.clone(),
                Command::Argv(_) => path.index(index),
            };
            findings.add(
                &argument_path,
                "command contains a NUL byte",
                "remove the `\\u0000`; the kernel ends each argument at a NUL byte",
            );
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_.-]*`: a C identifier plus `.` and `-`. Kubernetes
/// 1.34 accepts any printable ASCII except `=`, but shells and older
/// clusters do not.
fn is_env_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|byte| byte.is_ascii_alphabetic() || *byte == b'_')
        && bytes.iter().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

fn check_image(image: &Image, path: &KeyPath, findings: &mut Findings) {
    if image.base != "scratch"
        && let Err(error) = crate::registry::parse_base(&image.base)
    {
        let reason = match &error {
            crate::registry::RegistryError::InvalidReference { reason, .. } => reason.clone(),
            other => other.to_string().lines().next().unwrap_or_default().to_owned(),
        };
        findings.add(
            &path.key("base"),
            format!("invalid base image `{}`: {reason}", image.base),
            "use `scratch` or `REGISTRY/REPOSITORY:TAG` (optionally with `@sha256:DIGEST`), such as `localhost:5000/ops/base:1`"
                .to_owned(),
        );
    }

    let files_path = path.key("files");
    for (index, file) in image.files.iter().flatten().enumerate() {
        check_job_file(file, &files_path.index(index), findings);
    }

    let binaries_path = path.key("binaries");
    for (index, binary) in image.binaries.iter().enumerate() {
        check_binary(binary, &binaries_path.index(index), findings);
    }

    let symlinks_path = path.key("symlinks");
    for (link, target) in &image.symlinks {
        check_symlink(link, target, &symlinks_path.key(link), findings);
    }

    if let Some(user) = &image.user
        && names::parse_user(user).is_none()
    {
        findings.add(
            &path.key("user"),
            format!("invalid user `{user}`"),
            format!(
                "use `nonroot` (id {}), `root`, a numeric id such as `1000`, or `UID:GID` such as `1000:1000`, with ids up to {}",
                super::NONROOT_ID,
                names::MAX_ID
            ),
        );
    }

    check_workdir(&image.workdir, &path.key("workdir"), findings);

    let labels_path = path.key("labels");
    if image.labels.contains_key("") {
        findings.add(&labels_path.key(""), "empty label key", "give the label a name such as `org.example.team`");
    }

    if let Some(repository) = &image.repository
        && !names::is_repository(repository)
    {
        findings.add(
            &path.key("repository"),
            format!("invalid repository `{repository}`"),
            "use lowercase letters and digits joined by `.`, `_`, `__` or `-`, in components separated by `/`, such as `ops/pg-backup`",
        );
    }

    if let Some(tag) = &image.tag
        && !names::is_tag(tag)
    {
        findings.add(
            &path.key("tag"),
            format!("invalid tag `{tag}`"),
            "use 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        );
    }

    let pull_secrets_path = path.key("pull_secrets");
    for (index, secret) in image.pull_secrets.iter().enumerate() {
        if !names::is_dns1123_subdomain(secret) {
            findings.add(
                &pull_secrets_path.index(index),
                format!("invalid Secret name `{secret}`"),
                "Secret names are DNS-1123 subdomains: lowercase letters, digits, `-` and `.`, such as `registry-credentials`",
            );
        }
    }
}

fn check_job_file(file: &str, path: &KeyPath, findings: &mut Findings) {
    if file.is_empty() {
        findings.add(path, "empty path", "name a file or directory in the job directory, such as `backup.sh`");
        return;
    }
    if file.starts_with('/') {
        findings.add(
            path,
            format!("absolute path `{file}`"),
            "write paths relative to the job directory, such as `backup.sh` or `lib/`",
        );
        return;
    }

    // Walk the components and reject any `..` that climbs above the job
    // directory, even if later components come back into it.
    let mut depth = 0_usize;
    for component in Path::new(file).components() {
        match component {
            Component::ParentDir if depth == 0 => {
                findings.add(
                    path,
                    format!("path `{file}` leaves the job directory"),
                    "move the file into the job directory and name it relative to it",
                );
                return;
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
}

fn check_binary(binary: &str, path: &KeyPath, findings: &mut Findings) {
    if binary.is_empty() {
        findings.add(path, "empty program name", "name a host program, such as `pg_dump` or `/usr/bin/pg_dump`");
    } else if !binary.starts_with('/') && binary.contains('/') {
        findings.add(
            path,
            format!("relative program path `{binary}`"),
            "use an absolute path such as `/usr/bin/pg_dump`, or a bare name to search `PATH`",
        );
    }
}

fn check_symlink(link: &str, target: &str, path: &KeyPath, findings: &mut Findings) {
    if !link.starts_with('/') {
        findings.add(
            path,
            format!("link path `{link}` is not absolute"),
            "write the link as an absolute path in the image, such as `/bin/sh`",
        );
    } else if link.trim_end_matches('/').is_empty() {
        findings.add(
            path,
            "link path `/` is the root directory",
            "write the link as a file path in the image, such as `/bin/sh`",
        );
    }

    if target.is_empty() {
        findings.add(
            path,
            format!("empty target for link `{link}`"),
            "set the path the link points to, such as `busybox` or `/bin/busybox`",
        );
    }
}

fn check_workdir(workdir: &str, path: &KeyPath, findings: &mut Findings) {
    if !workdir.starts_with('/') {
        findings.add(
            path,
            format!("working directory `{workdir}` is not absolute"),
            "use an absolute path such as `/job`",
        );
    } else if workdir == "/" {
        findings.add(
            path,
            "working directory `/` is the root directory",
            "use a directory such as `/job`, so job files do not mix with the image's own",
        );
    } else if !is_normalized_absolute(workdir) {
        findings.add(
            path,
            format!("working directory `{workdir}` is not normalized"),
            "remove `.` and `..` parts, repeated `/` and the trailing `/`, as in `/job`",
        );
    }
}

fn is_normalized_absolute(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|relative| relative.split('/').all(|part| !part.is_empty() && part != "." && part != ".."))
}

fn check_resources(resources: &Resources, path: &KeyPath, findings: &mut Findings) {
    let requests_path = path.key("requests");
    let limits_path = path.key("limits");
    let requests = parse_resource_list(&resources.requests, &requests_path, findings);
    let limits = parse_resource_list(&resources.limits, &limits_path, findings);

    for (resource, request, limit) in
        [("cpu", &requests.cpu, &limits.cpu), ("memory", &requests.memory, &limits.memory)]
    {
        if let (Some(request), Some(limit)) = (request, limit)
            && request > limit
        {
            findings.add(
                &requests_path.key(resource),
                format!("request `{request}` is greater than the limit `{limit}`"),
                format!(
                    "lower the request or raise `resources.limits.{resource}`; Kubernetes rejects a request above its limit"
                ),
            );
        }
    }
}

struct ParsedResources {
    cpu: Option<Quantity>,
    memory: Option<Quantity>,
}

/// Parses each quantity of a list, adding a finding for each invalid or
/// negative one and leaving it out.
fn parse_resource_list(list: &ResourceList, path: &KeyPath, findings: &mut Findings) -> ParsedResources {
    let mut parse_one = |resource: &str, text: &Option<String>| -> Option<Quantity> {
        let text = text.as_ref()?;
        let value_path = path.key(resource);
        match quantity::parse(text) {
            Err(error) => {
                findings.add(&value_path, error.to_string(), error.hint());
                None
            }
            Ok(value) if value.is_negative() => {
                findings.add(
                    &value_path,
                    format!("negative quantity `{text}`"),
                    "resource quantities must be zero or more",
                );
                None
            }
            Ok(value) => Some(value),
        }
    };

    ParsedResources { cpu: parse_one("cpu", &list.cpu), memory: parse_one("memory", &list.memory) }
}
