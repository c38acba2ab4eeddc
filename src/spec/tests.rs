//! Tests of `parse`: errors with lines and keys, and each validation rule.

use std::path::Path;

use super::{Problem, Spec, SpecError, parse};

const MINIMAL: &str = r#"
[job]
name = "pg-backup"
schedule = "30 2 * * *"
command = "/job/backup.sh"
"#;

fn parse_ok(text: &str) -> Spec {
    parse(text, Path::new("kuul.toml")).unwrap_or_else(|error| panic!("should parse:\n{error}"))
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, Path::new("kuul.toml")) {
        Ok(_) => panic!("should be rejected:\n{text}"),
        Err(SpecError::Invalid { problems, .. }) => problems,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

/// Parses `MINIMAL` plus `extra` and returns its single problem.
fn problem_with(extra: &str) -> Problem {
    let found = problems(&format!("{MINIMAL}{extra}"));
    assert_eq!(found.len(), 1, "expected one problem, found {found:#?}");
    found.into_iter().next().unwrap()
}

/// Asserts that `MINIMAL` plus `extra` has one problem at `key` whose
/// message contains `message`.
fn assert_rejected(extra: &str, key: &str, message: &str) {
    let problem = problem_with(extra);
    assert_eq!(problem.key, key, "key for:\n{extra}");
    assert!(problem.message.contains(message), "message `{}` should contain `{message}`", problem.message);
    assert!(problem.hint.is_some(), "problem at `{key}` has no hint");
}

/// Replaces one line of `MINIMAL`'s `[job]` table.
fn job_with(key: &str, value: &str) -> String {
    MINIMAL
        .lines()
        .map(|line| if line.starts_with(&format!("{key} =")) { format!("{key} = {value}") } else { line.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_job_rejected(key: &str, value: &str, message: &str) {
    let text = if MINIMAL.contains(&format!("\n{key} =")) {
        job_with(key, value)
    } else {
        MINIMAL.replace("[job]\n", &format!("[job]\n{key} = {value}\n"))
    };
    let found = problems(&text);
    assert_eq!(found.len(), 1, "expected one problem, found {found:#?}");
    assert_eq!(found[0].key, format!("job.{key}"));
    assert!(found[0].message.contains(message), "message `{}` should contain `{message}`", found[0].message);
}

#[test]
fn minimal_spec_defaults() {
    let spec = parse_ok(MINIMAL);
    assert_eq!(spec.job.timezone, "Etc/UTC");
    assert_eq!(spec.image.base, "scratch");
    assert_eq!(spec.image.workdir, "/job");
    assert_eq!(spec.job.command.argv(), ["/job/backup.sh"]);
    assert_eq!(spec.image.user_ids(), (65532, 65532));
}

const COMPLETE: &str = r#"
[job]
name = "pg-backup"
schedule = "30 2 * * MON-FRI"
timezone = "Europe/Berlin"
command = ["/job/backup.sh", "--verbose"]

[job.env]
PGHOST = "db.internal"
"backup.retention-days" = "14"

[image]
base = "scratch"
files = ["backup.sh", "lib/", "./a/../b"]
binaries = ["pg_dump", "/usr/bin/gzip"]
symlinks = { "/bin/sh" = "busybox" }
user = "1000:2000"
workdir = "/srv/job"
labels = { "org.example.team" = "ops" }
repository = "ops/pg-backup"
tag = "v1.2.3"

[resources.requests]
cpu = "250m"
memory = "128Mi"

[resources.limits]
cpu = "1"
memory = "128Mi"

[placement]
pool = "internal"
node_selector = { "kubernetes.io/arch" = "amd64", "kuul.dev/pool" = "internal" }

[[placement.tolerations]]
key = "dedicated"
operator = "Equal"
value = "backup"
effect = "NoExecute"
tolerationSeconds = 60

[[placement.tolerations]]
operator = "Exists"

[placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution]
nodeSelectorTerms = [
  { matchExpressions = [
      { key = "disktype", operator = "In", values = ["ssd"] },
      { key = "cores", operator = "Gt", values = ["4"] },
      { key = "gpu", operator = "DoesNotExist" },
    ], matchFields = [{ key = "metadata.name", operator = "NotIn", values = ["node-1"] }] },
]

[[placement.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution]]
weight = 100
preference = { matchExpressions = [{ key = "zone", operator = "NotIn", values = ["a"] }] }

[[placement.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution]]
topologyKey = "kubernetes.io/hostname"
labelSelector = { matchLabels = { app = "db" }, matchExpressions = [{ key = "tier", operator = "Exists" }] }
namespaces = ["default"]

[[placement.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution]]
weight = 1
podAffinityTerm = { topologyKey = "topology.kubernetes.io/zone", namespaceSelector = {} }
"#;

#[test]
fn complete_spec_parses() {
    let spec = parse_ok(COMPLETE);
    assert_eq!(spec.job.command.argv(), ["/job/backup.sh", "--verbose"]);
    assert_eq!(spec.job.env.len(), 2);
    assert_eq!(spec.image.user_ids(), (1000, 2000));
    assert_eq!(spec.placement.tolerations.len(), 2);
    assert_eq!(spec.placement.pool.as_deref(), Some("internal"));
}

// Unknown keys: toml's message names the key and lists the valid ones.

/// Asserts that `text` has one unknown-key problem at `key` and `line`
/// whose message lists `valid_key`.
fn assert_unknown_key(text: &str, key: &str, line: usize, valid_key: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, found {found:#?}");
    let problem = &found[0];
    assert!(problem.message.starts_with("unknown field"), "message: {}", problem.message);
    assert!(problem.message.contains(&format!("`{valid_key}`")), "message: {}", problem.message);
    assert_eq!(problem.key, key);
    assert_eq!(problem.line, Some(line));
}

#[test]
fn unknown_key_at_top_level() {
    assert_unknown_key(&format!("jobs = 1\n{MINIMAL}"), "jobs", 1, "job");
}

#[test]
fn unknown_key_in_job() {
    assert_unknown_key(&format!("{MINIMAL}scedule = 1\n"), "job.scedule", 6, "schedule");
}

#[test]
fn unknown_key_in_image() {
    assert_unknown_key(&format!("{MINIMAL}[image]\nuserr = 1\n"), "image.userr", 7, "user");
}

#[test]
fn unknown_key_in_resource_limits() {
    assert_unknown_key(&format!("{MINIMAL}[resources.limits]\nmem = \"1Gi\"\n"), "resources.limits.mem", 7, "memory");
}

#[test]
fn unknown_key_in_placement() {
    assert_unknown_key(
        &format!("{MINIMAL}[placement]\nnodeSelector = {{}}\n"),
        "placement.nodeSelector",
        7,
        "node_selector",
    );
}

#[test]
fn unknown_key_in_toleration() {
    assert_unknown_key(
        &format!("{MINIMAL}[[placement.tolerations]]\nkey = \"a\"\ntoleration_seconds = 5\n"),
        "placement.tolerations[0].toleration_seconds",
        8,
        "tolerationSeconds",
    );
}

#[test]
fn unknown_key_in_affinity_term() {
    let text = format!(
        "{MINIMAL}[[placement.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution]]\ntopologyKey = \"zone\"\ntopology = \"x\"\n"
    );
    assert_unknown_key(
        &text,
        "placement.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topology",
        8,
        "topologyKey",
    );
}

#[test]
fn unknown_key_rendered_with_file_and_line() {
    let error = parse(&format!("{MINIMAL}scedule = 1\n"), Path::new("jobs/kuul.toml")).unwrap_err();
    let rendered = error.to_string();
    assert!(
        rendered.starts_with("jobs/kuul.toml:6: `job.scedule`: unknown field `scedule`, expected one of"),
        "rendered: {rendered}"
    );
    assert!(rendered.contains("\n  hint: "), "rendered: {rendered}");
}

#[test]
fn missing_key_named_with_hint() {
    let problem = &problems("[job]\nname = \"a\"\nschedule = \"@daily\"\n")[0];
    assert_eq!(problem.message, "missing field `command`");
    assert_eq!(problem.hint.as_deref(), Some("add `command` to `[job]`"));
}

#[test]
fn wrong_type_names_array_item() {
    let problem = &problems(&job_with("command", "[\"a\", 5]"))[0];
    assert_eq!(problem.key, "job.command[1]");
    assert_eq!(problem.message, "invalid type: integer `5`, expected a string");
}

#[test]
fn wrong_command_type_explained() {
    let problem = &problems(&job_with("command", "5"))[0];
    assert!(problem.message.contains("expected a program path or an array of strings"));
}

#[test]
fn syntax_errors_all_reported_with_lines() {
    let found = problems("[job]\nname = \"a\nschedule = 1\nfoo = = 1\n");
    assert!(found.len() >= 2, "found {found:#?}");
    assert_eq!(found[0].line, Some(2));
    assert!(found.iter().any(|problem| problem.line == Some(4)));
}

#[test]
fn all_validation_problems_collected() {
    let text = format!(
        "{}\n[image]\nuser = \"alice\"\n[resources.requests]\ncpu = \"1K\"\n",
        job_with("name", "\"Bad_Name\"")
    );
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().map(|problem| problem.key.as_str()).collect();
    assert_eq!(keys, ["job.name", "image.user", "resources.requests.cpu"]);
}

#[test]
fn validation_problem_has_line() {
    let problem = problem_with("[image]\nbase = \"debian\"\n");
    assert_eq!(problem.line, Some(7));
}

#[test]
fn array_item_problem_has_line() {
    let problem = problem_with(
        "[[placement.tolerations]]\nkey = \"a\"\n[[placement.tolerations]]\n\nkey = \"b\"\neffect = \"Never\"\n",
    );
    assert_eq!(problem.key, "placement.tolerations[1].effect");
    assert_eq!(problem.line, Some(11));
}

// job

#[test]
fn job_name_not_dns_label() {
    assert_job_rejected("name", "\"Backup_Job\"", "invalid job name `Backup_Job`");
}

#[test]
fn job_name_too_long() {
    let name = "a".repeat(53);
    assert_job_rejected("name", &format!("\"{name}\""), "is 53 characters long, more than the maximum of 52");
}

#[test]
fn job_name_of_52_accepted() {
    parse_ok(&job_with("name", &format!("\"{}\"", "a".repeat(52))));
}

#[test]
fn schedule_invalid() {
    assert_job_rejected("schedule", "\"* * * * 7\"", "invalid schedule `* * * * 7`: day-of-week value `7`");
}

#[test]
fn schedule_time_zone_prefix() {
    assert_job_rejected("schedule", "\"CRON_TZ=UTC 0 0 * * *\"", "time zone in schedule");
}

#[test]
fn schedule_empty_field() {
    assert_job_rejected("schedule", "\"0 0 * * ,\"", "lists no value");
}

#[test]
fn schedule_every_not_positive() {
    assert_job_rejected("schedule", "\"@every 0s\"", "not positive");
}

#[test]
fn schedule_that_never_runs() {
    assert_job_rejected("schedule", "\"0 0 30 2 *\"", "never runs");
}

#[test]
fn timezone_unknown() {
    assert_job_rejected("timezone", "\"Mars/Olympus\"", "unknown time zone `Mars/Olympus`");
}

#[test]
fn timezone_local() {
    assert_job_rejected("timezone", "\"Local\"", "`Local` is not an explicit time zone");
}

#[test]
fn timezone_empty() {
    assert_job_rejected("timezone", "\"\"", "empty time zone");
}

#[test]
fn timezone_wrong_case() {
    let problem = &problems(&MINIMAL.replace("[job]\n", "[job]\ntimezone = \"europe/berlin\"\n"))[0];
    assert_eq!(problem.hint.as_deref(), Some("time zone names are case-sensitive: use `Europe/Berlin`"));
}

#[test]
fn timezone_long_part() {
    assert_job_rejected("timezone", "\"America/Argentina_Buenos\"", "invalid time zone");
}

#[test]
fn timezone_dot_dot_part() {
    assert_job_rejected("timezone", "\"Europe/../Berlin\"", "invalid time zone");
}

#[test]
fn timezone_valid_names() {
    for name in ["UTC", "Etc/UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
        parse_ok(&MINIMAL.replace("[job]\n", &format!("[job]\ntimezone = \"{name}\"\n")));
    }
}

#[test]
fn command_empty_array() {
    assert_job_rejected("command", "[]", "empty command");
}

#[test]
fn command_empty_program() {
    let found = problems(&job_with("command", "[\"\", \"x\"]"));
    assert_eq!(found[0].key, "job.command[0]");
    assert_eq!(found[0].message, "empty program path");
}

#[test]
fn command_nul_byte() {
    let found = problems(&job_with("command", "[\"/a\", \"b\\u0000c\"]"));
    assert_eq!(found[0].key, "job.command[1]");
    assert_eq!(found[0].message, "command contains a NUL byte");
}

#[test]
fn env_name_invalid() {
    assert_rejected("[job.env]\n\"1X\" = \"a\"\n", "job.env.1X", "invalid environment variable name `1X`");
}

#[test]
fn env_name_with_equals_sign() {
    assert_rejected("[job.env]\n\"A=B\" = \"a\"\n", "job.env.\"A=B\"", "`A=B`");
}

// image

#[test]
fn image_base_without_registry_rejected() {
    let problem = problem_with("[image]\nbase = \"debian:12\"\n");
    assert_eq!(problem.message, "invalid base image `debian:12`: missing registry host");
    assert!(problem.hint.unwrap().starts_with("use `scratch` or `REGISTRY/REPOSITORY:TAG`"));
}

#[test]
fn image_base_registry_reference_accepted() {
    let text = format!("{MINIMAL}\n[image]\nbase = \"127.0.0.1:5000/ops/base:1\"\n");
    let spec = parse(&text, Path::new("kuul.toml")).unwrap();
    assert_eq!(spec.image.base, "127.0.0.1:5000/ops/base:1");
}

#[test]
fn image_file_absolute() {
    assert_rejected("[image]\nfiles = [\"/etc/passwd\"]\n", "image.files[0]", "absolute path `/etc/passwd`");
}

#[test]
fn image_file_escaping() {
    assert_rejected("[image]\nfiles = [\"a\", \"a/../../b\"]\n", "image.files[1]", "leaves the job directory");
}

#[test]
fn image_file_empty() {
    assert_rejected("[image]\nfiles = [\"\"]\n", "image.files[0]", "empty path");
}

#[test]
fn image_binary_relative_path() {
    let problem = problem_with("[image]\nbinaries = [\"bin/psql\"]\n");
    assert_eq!(problem.message, "relative program path `bin/psql`");
    assert!(problem.hint.unwrap().contains("absolute path"));
}

#[test]
fn image_binary_empty() {
    assert_rejected("[image]\nbinaries = [\"\"]\n", "image.binaries[0]", "empty program name");
}

#[test]
fn image_symlink_relative() {
    assert_rejected("[image.symlinks]\n\"bin/sh\" = \"busybox\"\n", "image.symlinks.\"bin/sh\"", "is not absolute");
}

#[test]
fn image_symlink_root() {
    assert_rejected("[image.symlinks]\n\"/\" = \"busybox\"\n", "image.symlinks.\"/\"", "root directory");
}

#[test]
fn image_symlink_empty_target() {
    assert_rejected("[image.symlinks]\n\"/bin/sh\" = \"\"\n", "image.symlinks.\"/bin/sh\"", "empty target");
}

#[test]
fn image_user_invalid() {
    for user in ["alice", "2147483648", "1:", "-1"] {
        assert_rejected(&format!("[image]\nuser = \"{user}\"\n"), "image.user", &format!("invalid user `{user}`"));
    }
}

#[test]
fn image_user_ids() {
    for (user, ids) in [("root", (0, 0)), ("nonroot", (65532, 65532)), ("1000", (1000, 1000)), ("5:6", (5, 6))] {
        let spec = parse_ok(&format!("{MINIMAL}[image]\nuser = \"{user}\"\n"));
        assert_eq!(spec.image.user_ids(), ids, "user `{user}`");
    }
}

#[test]
fn image_workdir_relative() {
    assert_rejected("[image]\nworkdir = \"job\"\n", "image.workdir", "is not absolute");
}

#[test]
fn image_workdir_root() {
    assert_rejected("[image]\nworkdir = \"/\"\n", "image.workdir", "root directory");
}

#[test]
fn image_workdir_not_normalized() {
    for workdir in ["/job/", "/a//b", "/a/./b", "/a/../b"] {
        assert_rejected(&format!("[image]\nworkdir = \"{workdir}\"\n"), "image.workdir", "is not normalized");
    }
}

#[test]
fn image_label_empty_key() {
    assert_rejected("[image.labels]\n\"\" = \"x\"\n", "image.labels.\"\"", "empty label key");
}

#[test]
fn image_repository_uppercase() {
    assert_rejected("[image]\nrepository = \"Ops/Backup\"\n", "image.repository", "invalid repository `Ops/Backup`");
}

#[test]
fn image_tag_invalid() {
    assert_rejected("[image]\ntag = \".hidden\"\n", "image.tag", "invalid tag `.hidden`");
}

// resources

#[test]
fn resources_invalid_quantity() {
    let problem = problem_with("[resources.limits]\nmemory = \"1 Gi\"\n");
    assert_eq!(problem.key, "resources.limits.memory");
    assert_eq!(problem.message, "invalid quantity `1 Gi`: unknown suffix ` Gi`");
}

#[test]
fn resources_uppercase_k_rejected() {
    assert_rejected("[resources.requests]\nmemory = \"1K\"\n", "resources.requests.memory", "unknown suffix `K`");
}

#[test]
fn resources_negative_rejected() {
    assert_rejected("[resources.requests]\ncpu = \"-1\"\n", "resources.requests.cpu", "negative quantity `-1`");
}

#[test]
fn resources_request_above_limit() {
    assert_rejected(
        "[resources.requests]\nmemory = \"1Gi\"\n[resources.limits]\nmemory = \"1000Mi\"\n",
        "resources.requests.memory",
        "request `1Gi` is greater than the limit `1000Mi`",
    );
}

#[test]
fn resources_request_equal_limit_accepted() {
    parse_ok(&format!("{MINIMAL}[resources.requests]\ncpu = \"1\"\n[resources.limits]\ncpu = \"1000m\"\n"));
}

// placement

#[test]
fn pool_invalid_label_value() {
    assert_rejected("[placement]\npool = \"-internal\"\n", "placement.pool", "invalid pool name `-internal`");
}

#[test]
fn pool_empty() {
    assert_rejected("[placement]\npool = \"\"\n", "placement.pool", "empty pool name");
}

#[test]
fn pool_conflicts_with_node_selector() {
    assert_rejected(
        "[placement]\npool = \"a\"\nnode_selector = { \"kuul.dev/pool\" = \"b\" }\n",
        "placement.node_selector.\"kuul.dev/pool\"",
        "conflicts with pool `a`",
    );
}

#[test]
fn node_selector_invalid_key() {
    assert_rejected(
        "[placement.node_selector]\n\"Example.com/x\" = \"a\"\n",
        "placement.node_selector.\"Example.com/x\"",
        "invalid label key `Example.com/x`: it has an invalid prefix",
    );
}

#[test]
fn node_selector_long_key_name() {
    let key = format!("example.com/{}", "a".repeat(64));
    assert_rejected(
        &format!("[placement.node_selector]\n\"{key}\" = \"a\"\n"),
        &format!("placement.node_selector.\"{key}\""),
        "more than the maximum of 63",
    );
}

#[test]
fn node_selector_invalid_value() {
    assert_rejected(
        "[placement.node_selector]\ndisk = \"ssd/fast\"\n",
        "placement.node_selector.disk",
        "invalid label value `ssd/fast`",
    );
}

#[test]
fn node_selector_empty_value_accepted() {
    parse_ok(&format!("{MINIMAL}[placement.node_selector]\ndisk = \"\"\n"));
}

fn toleration(fields: &str) -> String {
    format!("[[placement.tolerations]]\n{fields}\n")
}

#[test]
fn toleration_unknown_operator() {
    assert_rejected(
        &toleration("key = \"a\"\noperator = \"exists\""),
        "placement.tolerations[0].operator",
        "unknown toleration operator `exists`",
    );
}

#[test]
fn toleration_exists_with_value() {
    assert_rejected(
        &toleration("key = \"a\"\noperator = \"Exists\"\nvalue = \"b\""),
        "placement.tolerations[0].value",
        "operator `Exists` has the value `b`",
    );
}

#[test]
fn toleration_unknown_effect() {
    assert_rejected(
        &toleration("key = \"a\"\neffect = \"NoExec\""),
        "placement.tolerations[0].effect",
        "unknown taint effect `NoExec`",
    );
}

#[test]
fn toleration_seconds_without_no_execute() {
    assert_rejected(
        &toleration("key = \"a\"\neffect = \"NoSchedule\"\ntolerationSeconds = 30"),
        "placement.tolerations[0].tolerationSeconds",
        "not `NoExecute`",
    );
}

#[test]
fn toleration_empty_key_needs_exists() {
    assert_rejected(
        &toleration("value = \"a\""),
        "placement.tolerations[0].operator",
        "empty key must use operator `Exists`",
    );
}

#[test]
fn toleration_empty_key_with_exists_accepted() {
    parse_ok(&format!("{MINIMAL}{}", toleration("operator = \"Exists\"")));
}

const NODE_TERMS: &str =
    "[[placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms]]";
const NODE_EXPRESSION: &str = "placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]";

fn node_expression(expression: &str) -> String {
    format!("{NODE_TERMS}\nmatchExpressions = [{expression}]\n")
}

#[test]
fn node_affinity_unknown_operator() {
    assert_rejected(
        &node_expression("{ key = \"a\", operator = \"Contains\", values = [\"b\"] }"),
        &format!("{NODE_EXPRESSION}.operator"),
        "unknown node selector operator `Contains`",
    );
}

#[test]
fn node_affinity_in_without_values() {
    assert_rejected(
        &node_expression("{ key = \"a\", operator = \"In\" }"),
        &format!("{NODE_EXPRESSION}.values"),
        "operator `In` needs at least one value",
    );
}

#[test]
fn node_affinity_exists_with_values() {
    assert_rejected(
        &node_expression("{ key = \"a\", operator = \"Exists\", values = [\"b\"] }"),
        &format!("{NODE_EXPRESSION}.values"),
        "operator `Exists` takes no values",
    );
}

#[test]
fn node_affinity_gt_two_values() {
    assert_rejected(
        &node_expression("{ key = \"a\", operator = \"Gt\", values = [\"1\", \"2\"] }"),
        &format!("{NODE_EXPRESSION}.values"),
        "operator `Gt` needs exactly one value, found 2",
    );
}

#[test]
fn node_affinity_lt_not_integer() {
    assert_rejected(
        &node_expression("{ key = \"a\", operator = \"Lt\", values = [\"1.5\"] }"),
        &format!("{NODE_EXPRESSION}.values[0]"),
        "operator `Lt` needs an integer, found `1.5`",
    );
}

#[test]
fn node_affinity_match_fields_label() {
    assert_rejected(
        &format!("{NODE_TERMS}\nmatchFields = [{{ key = \"disktype\", operator = \"In\", values = [\"a\"] }}]\n"),
        "placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key",
        "unsupported field `disktype`",
    );
}

#[test]
fn node_affinity_no_terms() {
    assert_rejected(
        "[placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution]\nnodeSelectorTerms = []\n",
        "placement.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
        "no node selector terms",
    );
}

#[test]
fn node_affinity_weight_out_of_range() {
    for weight in [0, 101] {
        assert_rejected(
            &format!(
                "[[placement.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution]]\nweight = {weight}\npreference = {{}}\n"
            ),
            "placement.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            &format!("weight `{weight}` is outside 1-100"),
        );
    }
}

const POD_TERMS: &str = "[[placement.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution]]";
const POD_TERM: &str = "placement.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]";

#[test]
fn pod_affinity_empty_topology_key() {
    assert_rejected(
        &format!("{POD_TERMS}\ntopologyKey = \"\"\n"),
        &format!("{POD_TERM}.topologyKey"),
        "empty topology key",
    );
}

#[test]
fn pod_affinity_gt_operator_rejected() {
    assert_rejected(
        &format!(
            "{POD_TERMS}\ntopologyKey = \"zone\"\nlabelSelector = {{ matchExpressions = [{{ key = \"a\", operator = \"Gt\", values = [\"1\"] }}] }}\n"
        ),
        &format!("{POD_TERM}.labelSelector.matchExpressions[0].operator"),
        "unknown label selector operator `Gt`",
    );
}

#[test]
fn pod_affinity_not_in_without_values() {
    assert_rejected(
        &format!(
            "{POD_TERMS}\ntopologyKey = \"zone\"\nnamespaceSelector = {{ matchExpressions = [{{ key = \"a\", operator = \"NotIn\" }}] }}\n"
        ),
        &format!("{POD_TERM}.namespaceSelector.matchExpressions[0].values"),
        "operator `NotIn` needs at least one value",
    );
}

#[test]
fn pod_affinity_weight_out_of_range() {
    assert_rejected(
        "[[placement.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution]]\nweight = -1\npodAffinityTerm = { topologyKey = \"zone\" }\n",
        "placement.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
        "weight `-1` is outside 1-100",
    );
}

/// Extracts the `toml` code blocks of the schema reference, in order.
fn documented_examples() -> Vec<String> {
    let reference = include_str!("../../docs/kuul-toml.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in reference.lines() {
        match (&mut current, line) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn documented_complete_example_parses() {
    let examples = documented_examples();
    let spec = parse_ok(&examples[0]);
    assert_eq!(spec.job.name, "pg-backup");
}

#[test]
fn documented_snippets_parse() {
    let examples = documented_examples();
    assert!(examples.len() >= 4, "found {} examples", examples.len());
    for snippet in &examples[1..] {
        parse_ok(&format!("{MINIMAL}{snippet}"));
    }
}

#[test]
fn pull_secret_names_checked() {
    let spec = parse_ok(&format!("{MINIMAL}[image]\npull_secrets = [\"registry-credentials\"]\n"));
    assert_eq!(spec.image.pull_secrets, ["registry-credentials"]);

    assert_rejected(
        "[image]\npull_secrets = [\"Registry_Credentials\"]\n",
        "image.pull_secrets[0]",
        "`Registry_Credentials`",
    );
}
