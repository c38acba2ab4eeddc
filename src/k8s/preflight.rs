//! Checks before a CronJob is applied: the namespace exists, its pull
//! secrets exist, and at least one Ready node can run its pods.
//!
//! The node check follows the scheduler's filters for node selectors,
//! required node affinity, taints and cordons. It ignores resources, pod
//! affinity and topology spread, so a pass does not promise the pod fits.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    Namespace, Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Secret, Taint, Toleration,
};

use super::cluster::{Cluster, ClusterError};

/// The label that every node carries with its own name; listing it adds
/// nothing when nodes are summarized.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The findings of the checks. Errors stop the apply, and warnings do not.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Runs every check for `cronjob` in `namespace`. With `strict`, finding no
/// node for the job is an error instead of a warning.
///
/// A check that the user may not run (403 Forbidden) becomes a warning, as
/// CI accounts often may not list nodes.
pub async fn check(
    cluster: &Cluster,
    namespace: &str,
    cronjob: &CronJob,
    strict: bool,
) -> Result<Findings, ClusterError> {
    let mut findings = Findings::default();
    let pod = pod_spec(cronjob);

    let namespaces = cluster.all::<Namespace>();
    match namespaces.get_metadata_opt(namespace).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            findings.errors.push(format!(
                "namespace `{namespace}` not found\nhint: create it with `kubectl create namespace {namespace}`, or set another with `--namespace` or `[deploy] namespace`"
            ));
            return Ok(findings);
        }
        Err(error) => skip_if_forbidden(cluster.error(format!("get namespace `{namespace}`"), error), &mut findings)?,
    }

    let secrets = cluster.namespaced::<Secret>(namespace);
    for name in pull_secret_names(pod) {
        match secrets.get_metadata_opt(&name).await {
            Ok(Some(_)) => {}
            Ok(None) => findings.errors.push(format!(
                "image pull secret `{name}` not found in namespace `{namespace}`\nhint: create it with `kubectl create secret docker-registry {name} --namespace {namespace} …`"
            )),
            Err(error) => {
                skip_if_forbidden(cluster.error(format!("get secret `{namespace}/{name}`"), error), &mut findings)?
            }
        }
    }

    let nodes = match cluster.all::<Node>().list(&Default::default()).await {
        Ok(list) => list.items,
        Err(error) => {
            skip_if_forbidden(cluster.error("list nodes", error), &mut findings)?;
            return Ok(findings);
        }
    };
    if let Some(problem) = node_problem(pod, &nodes) {
        if strict {
            findings.errors.push(problem);
        } else {
            findings.warnings.push(format!("{problem}\nhint: `--strict` makes this an error"));
        }
    }
    Ok(findings)
}

/// Turns a 403 into a warning that the check was skipped, and returns any
/// other error.
fn skip_if_forbidden(error: ClusterError, findings: &mut Findings) -> Result<(), ClusterError> {
    match error {
        ClusterError::Request { code: Some(403), action, message, .. } => {
            findings.warnings.push(format!("check skipped: failed to {action}: {message}"));
            Ok(())
        }
        other => Err(other),
    }
}

fn pod_spec(cronjob: &CronJob) -> Option<&PodSpec> {
    cronjob.spec.as_ref()?.job_template.spec.as_ref()?.template.spec.as_ref()
}

/// Returns the pod's `imagePullSecrets`: those of `image.pull_secrets` and any that
/// a `[kubernetes]` fragment adds.
fn pull_secret_names(pod: Option<&PodSpec>) -> Vec<String> {
    let secrets = pod.and_then(|pod| pod.image_pull_secrets.as_ref());
    secrets.into_iter().flatten().map(|secret| secret.name.clone()).filter(|name| !name.is_empty()).collect()
}

/// Describes why no node in `nodes` can run `pod`, or returns `None` when
/// one can.
pub fn node_problem(pod: Option<&PodSpec>, nodes: &[Node]) -> Option<String> {
    let default_pod = PodSpec::default();
    let pod = pod.unwrap_or(&default_pod);

    let mut reasons = Vec::new();
    for node in nodes {
        match node_fit(pod, node) {
            Ok(()) => return None,
            Err(reason) => reasons.push(format!("`{}`: {reason}", node.metadata.name.as_deref().unwrap_or("?"))),
        }
    }

    let mut message = if nodes.is_empty() {
        "no Ready node can run the job: the cluster has no nodes".to_owned()
    } else {
        format!("no Ready node can run the job ({} nodes checked)", nodes.len())
    };
    for reason in &reasons {
        message.push_str(&format!("\n  node {reason}"));
    }
    let labels = ready_node_labels(nodes);
    if !labels.is_empty() {
        message.push_str(&format!("\n  labels on Ready nodes: {}", labels.join(", ")));
    }
    Some(message)
}

/// Returns `Ok` when `pod` can be scheduled on `node` by the rules this
/// module checks, or the first rule it breaks.
pub fn node_fit(pod: &PodSpec, node: &Node) -> Result<(), String> {
    if !is_ready(node) {
        return Err("not Ready".to_owned());
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();

    if let Some(selector) = &pod.node_selector {
        for (key, value) in selector {
            if labels.get(key) != Some(value) {
                return Err(format!("no label `{key}={value}` (nodeSelector)"));
            }
        }
    }

    let required = pod
        .affinity
        .as_ref()
        .and_then(|affinity| affinity.node_affinity.as_ref())
        .and_then(|affinity| affinity.required_during_scheduling_ignored_during_execution.as_ref());
    if let Some(required) = required {
        let name = node.metadata.name.as_deref().unwrap_or("");
        if !required.node_selector_terms.iter().any(|term| term_matches(term, &labels, name)) {
            return Err("matches no term of the required node affinity".to_owned());
        }
    }

    let tolerations = pod.tolerations.as_deref().unwrap_or_default();
    let unschedulable = node.spec.as_ref().and_then(|spec| spec.unschedulable).unwrap_or(false);
    if unschedulable {
        let cordon = Taint {
            key: "node.kubernetes.io/unschedulable".to_owned(),
            effect: "NoSchedule".to_owned(),
            ..Default::default()
        };
        if !tolerations.iter().any(|toleration| tolerates(toleration, &cordon)) {
            return Err("cordoned (unschedulable)".to_owned());
        }
    }

    let taints = node.spec.as_ref().and_then(|spec| spec.taints.as_deref()).unwrap_or_default();
    for taint in taints.iter().filter(|taint| taint.effect == "NoSchedule" || taint.effect == "NoExecute") {
        if !tolerations.iter().any(|toleration| tolerates(toleration, taint)) {
            return Err(format!("taint `{}` not tolerated", taint_text(taint)));
        }
    }
    Ok(())
}

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|status| status.conditions.as_deref()).unwrap_or_default();
    conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

fn taint_text(taint: &Taint) -> String {
    match taint.value.as_deref() {
        Some(value) if !value.is_empty() => format!("{}={value}:{}", taint.key, taint.effect),
        _ => format!("{}:{}", taint.key, taint.effect),
    }
}

/// Returns whether `toleration` tolerates `taint`, by the API's rules: an
/// empty effect matches every effect, an empty key with `Exists` matches
/// every key, and `Equal` (the default operator) compares values.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }

    let key = toleration.key.as_deref().unwrap_or("");
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return operator == "Exists";
    }
    if key != taint.key {
        return false;
    }

    match operator {
        "Exists" => true,
        "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// Returns whether all expressions and fields of a node selector term match.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        // The scheduler treats an empty term as matching no node.
        return false;
    }

    let field_values = BTreeMap::from([("metadata.name".to_owned(), node_name.to_owned())]);
    expressions.iter().all(|requirement| requirement_matches(requirement, labels))
        && fields.iter().all(|requirement| requirement_matches(requirement, &field_values))
}

fn requirement_matches(requirement: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&requirement.key);
    let values = requirement.values.as_deref().unwrap_or_default();
    let compare = |ordering: std::cmp::Ordering| {
        let label = value.and_then(|value| value.parse::<i64>().ok());
        let bound = values.first().and_then(|bound| bound.parse::<i64>().ok());
        matches!((label, bound), (Some(label), Some(bound)) if label.cmp(&bound) == ordering)
    };

    match requirement.operator.as_str() {
        "In" => value.is_some_and(|value| values.contains(value)),
        "NotIn" => value.is_none_or(|value| !values.contains(value)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => compare(std::cmp::Ordering::Greater),
        "Lt" => compare(std::cmp::Ordering::Less),
        _ => false,
    }
}

/// Returns each `key=value` label of the Ready nodes, with how many nodes
/// carry it, sorted by key.
fn ready_node_labels(nodes: &[Node]) -> Vec<String> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for node in nodes.iter().filter(|node| is_ready(node)) {
        for (key, value) in node.metadata.labels.iter().flatten() {
            if key != HOSTNAME_LABEL {
                *counts.entry((key.clone(), value.clone())).or_default() += 1;
            }
        }
    }

    counts
        .into_iter()
        .map(|((key, value), count)| {
            let noun = if count == 1 { "node" } else { "nodes" };
            format!("`{key}={value}` ({count} {noun})")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str, &str)], ready: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(key, value, effect)| Taint {
                            key: key.to_string(),
                            value: Some(value.to_string()),
                            effect: effect.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        Toleration {
            key: some(key),
            operator: some(operator),
            value: some(value),
            effect: some(effect),
            toleration_seconds: None,
        }
    }

    fn pool_pod(pool: &str) -> PodSpec {
        PodSpec {
            node_selector: Some(BTreeMap::from([("kuul.dev/pool".to_owned(), pool.to_owned())])),
            tolerations: Some(vec![toleration("kuul.dev/pool", "Equal", pool, "NoSchedule")]),
            ..Default::default()
        }
    }

    #[test]
    fn node_fit_accepts_matching_pool() {
        let node = node("a", &[("kuul.dev/pool", "ops")], &[("kuul.dev/pool", "ops", "NoSchedule")], true);

        assert_eq!(node_fit(&pool_pod("ops"), &node), Ok(()));
    }

    #[test]
    fn node_fit_rejects_missing_label() {
        let node = node("a", &[("kuul.dev/pool", "web")], &[], true);

        assert_eq!(node_fit(&pool_pod("ops"), &node), Err("no label `kuul.dev/pool=ops` (nodeSelector)".to_owned()));
    }

    #[test]
    fn node_fit_rejects_untolerated_taint() {
        let node = node("a", &[], &[("dedicated", "gpu", "NoSchedule")], true);

        assert_eq!(
            node_fit(&PodSpec::default(), &node),
            Err("taint `dedicated=gpu:NoSchedule` not tolerated".to_owned())
        );
    }

    #[test]
    fn node_fit_ignores_prefer_no_schedule_taint() {
        let node = node("a", &[], &[("dedicated", "gpu", "PreferNoSchedule")], true);

        assert_eq!(node_fit(&PodSpec::default(), &node), Ok(()));
    }

    #[test]
    fn node_fit_rejects_not_ready_node() {
        let node = node("a", &[], &[], false);

        assert_eq!(node_fit(&PodSpec::default(), &node), Err("not Ready".to_owned()));
    }

    #[test]
    fn node_fit_rejects_cordoned_node() {
        let mut node = node("a", &[], &[], true);
        node.spec.as_mut().unwrap().unschedulable = Some(true);

        assert_eq!(node_fit(&PodSpec::default(), &node), Err("cordoned (unschedulable)".to_owned()));
    }

    #[test]
    fn node_fit_checks_required_affinity() {
        let requirement = |operator: &str, values: &[&str]| NodeSelectorRequirement {
            key: "zone".to_owned(),
            operator: operator.to_owned(),
            values: Some(values.iter().map(|value| value.to_string()).collect()),
        };
        let pod_with = |requirement: NodeSelectorRequirement| PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![requirement]),
                            match_fields: None,
                        }],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let node = node("a", &[("zone", "3")], &[], true);

        assert!(node_fit(&pod_with(requirement("In", &["3", "4"])), &node).is_ok());
        assert!(node_fit(&pod_with(requirement("NotIn", &["3"])), &node).is_err());
        assert!(node_fit(&pod_with(requirement("Exists", &[])), &node).is_ok());
        assert!(node_fit(&pod_with(requirement("DoesNotExist", &[])), &node).is_err());
        assert!(node_fit(&pod_with(requirement("Gt", &["2"])), &node).is_ok());
        assert!(node_fit(&pod_with(requirement("Lt", &["2"])), &node).is_err());
    }

    #[test]
    fn tolerates_follows_api_rules() {
        let taint = Taint {
            key: "dedicated".to_owned(),
            value: Some("gpu".to_owned()),
            effect: "NoSchedule".to_owned(),
            ..Default::default()
        };

        assert!(tolerates(&toleration("", "Exists", "", ""), &taint));
        assert!(tolerates(&toleration("dedicated", "Exists", "", ""), &taint));
        assert!(tolerates(&toleration("dedicated", "", "gpu", "NoSchedule"), &taint));
        assert!(!tolerates(&toleration("dedicated", "Equal", "cpu", ""), &taint));
        assert!(!tolerates(&toleration("dedicated", "Exists", "", "NoExecute"), &taint));
        assert!(!tolerates(&toleration("", "Equal", "", ""), &taint));
    }

    #[test]
    fn node_problem_lists_existing_labels() {
        let nodes = [node("a", &[("kuul.dev/pool", "web"), (HOSTNAME_LABEL, "a")], &[], true)];

        let problem = node_problem(Some(&pool_pod("ops")), &nodes).expect("no node fits");

        assert!(problem.contains("labels on Ready nodes: `kuul.dev/pool=web` (1 node)"), "{problem}");
        assert!(!problem.contains(HOSTNAME_LABEL), "{problem}");
    }

    #[test]
    fn node_problem_is_none_when_one_node_fits() {
        let nodes = [
            node("a", &[("kuul.dev/pool", "web")], &[], true),
            node("b", &[("kuul.dev/pool", "ops")], &[("kuul.dev/pool", "ops", "NoSchedule")], true),
        ];

        assert_eq!(node_problem(Some(&pool_pod("ops")), &nodes), None);
    }
}
