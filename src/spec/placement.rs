//! Validation of `[placement]`: the pool shorthand, node selector,
//! tolerations and affinity, with the rules the Kubernetes API server
//! applies to the same fields of a pod spec.

use std::collections::BTreeMap;

use super::locate::KeyPath;
use super::names;
use super::validate::Findings;
use super::{
    Affinity, LabelSelector, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, POOL_LABEL, Placement,
    PodAffinity, PodAffinityTerm, Toleration,
};

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

const NODE_SELECTOR_OPERATORS: [&str; 6] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];

const LABEL_SELECTOR_OPERATORS: [&str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

/// The only field a node selector term's `matchFields` may select on.
const NODE_NAME_FIELD: &str = "metadata.name";

pub fn check_placement(placement: &Placement, path: &KeyPath, findings: &mut Findings) {
    if let Some(pool) = &placement.pool {
        check_pool(pool, &placement.node_selector, path, findings);
    }

    let selector_path = path.key("node_selector");
    check_labels(&placement.node_selector, &selector_path, findings);

    let tolerations_path = path.key("tolerations");
    for (index, toleration) in placement.tolerations.iter().enumerate() {
        check_toleration(toleration, &tolerations_path.index(index), findings);
    }

    if let Some(affinity) = &placement.affinity {
        check_affinity(affinity, &path.key("affinity"), findings);
    }
}

fn check_pool(pool: &str, node_selector: &BTreeMap<String, String>, path: &KeyPath, findings: &mut Findings) {
    let pool_path = path.key("pool");
    if pool.is_empty() {
        findings.add(
            &pool_path,
            "empty pool name",
            "set the pool's name, or remove `placement.pool` to run on any node",
        );
    } else if let Err(reason) = names::check_label_value(pool) {
        findings.add(
            &pool_path,
            format!("invalid pool name `{pool}`: it {reason}"),
            format!("the pool name becomes the value of the node label `{POOL_LABEL}`, so it follows the rules for label values"),
        );
    }

    if let Some(selected) = node_selector.get(POOL_LABEL)
        && selected != pool
    {
        findings.add(
            &path.key("node_selector").key(POOL_LABEL),
            format!("node selector `{POOL_LABEL}={selected}` conflicts with pool `{pool}`"),
            format!("remove `{POOL_LABEL}` from `placement.node_selector`; `placement.pool` sets it"),
        );
    }
}

/// Checks a map of label keys to label values, such as a node selector or
/// `matchLabels`.
fn check_labels(labels: &BTreeMap<String, String>, path: &KeyPath, findings: &mut Findings) {
    for (key, value) in labels {
        let entry_path = path.key(key);
        if let Err(reason) = names::check_label_key(key) {
            findings.add(
                &entry_path,
                format!("invalid label key `{key}`: it {reason}"),
                "write a key such as `disktype` or `example.com/disktype`",
            );
        }
        if let Err(reason) = names::check_label_value(value) {
            findings.add(
                &entry_path,
                format!("invalid label value `{value}`: it {reason}"),
                "write a value such as `ssd`, at most 63 characters",
            );
        }
    }
}

fn check_toleration(toleration: &Toleration, path: &KeyPath, findings: &mut Findings) {
    let key = toleration.key.as_deref().unwrap_or("");
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    let value = toleration.value.as_deref().unwrap_or("");

    if !key.is_empty()
        && let Err(reason) = names::check_label_key(key)
    {
        findings.add(
            &path.key("key"),
            format!("invalid taint key `{key}`: it {reason}"),
            "write a key such as `dedicated` or `example.com/dedicated`",
        );
    }

    match operator {
        "Exists" if !value.is_empty() => findings.add(
            &path.key("value"),
            format!("toleration with operator `Exists` has the value `{value}`"),
            "remove `value`, or use `operator = \"Equal\"` to match it",
        ),
        "Exists" => {}
        "Equal" => {
            if key.is_empty() {
                findings.add(
                    &path.key("operator"),
                    "toleration with an empty key must use operator `Exists`",
                    "set `operator = \"Exists\"` to tolerate every taint, or set `key`",
                );
            }
            if let Err(reason) = names::check_label_value(value) {
                findings.add(
                    &path.key("value"),
                    format!("invalid toleration value `{value}`: it {reason}"),
                    "write the taint's value, at most 63 characters",
                );
            }
        }
        other => findings.add(
            &path.key("operator"),
            format!("unknown toleration operator `{other}`"),
            "use `Equal` (the default) or `Exists`; operators are case-sensitive",
        ),
    }

    if let Some(effect) = &toleration.effect
        && !TAINT_EFFECTS.contains(&effect.as_str())
    {
        findings.add(
            &path.key("effect"),
            format!("unknown taint effect `{effect}`"),
            "use `NoSchedule`, `PreferNoSchedule` or `NoExecute`, or remove `effect` to tolerate every effect",
        );
    }

    if toleration.toleration_seconds.is_some() && toleration.effect.as_deref() != Some("NoExecute") {
        findings.add(
            &path.key("tolerationSeconds"),
            "`tolerationSeconds` is set but the effect is not `NoExecute`",
            "set `effect = \"NoExecute\"` or remove `tolerationSeconds`; only `NoExecute` taints evict running pods",
        );
    }
}

fn check_affinity(affinity: &Affinity, path: &KeyPath, findings: &mut Findings) {
    if let Some(node_affinity) = &affinity.node_affinity {
        check_node_affinity(node_affinity, &path.key("nodeAffinity"), findings);
    }
    if let Some(pod_affinity) = &affinity.pod_affinity {
        check_pod_affinity(pod_affinity, &path.key("podAffinity"), findings);
    }
    if let Some(pod_anti_affinity) = &affinity.pod_anti_affinity {
        check_pod_affinity(pod_anti_affinity, &path.key("podAntiAffinity"), findings);
    }
}

fn check_node_affinity(affinity: &NodeAffinity, path: &KeyPath, findings: &mut Findings) {
    if let Some(required) = &affinity.required_during_scheduling_ignored_during_execution {
        let required_path = path.key("requiredDuringSchedulingIgnoredDuringExecution");
        let terms_path = required_path.key("nodeSelectorTerms");
        if required.node_selector_terms.is_empty() {
            findings.add(
                &terms_path,
                "required node affinity has no node selector terms",
                "add at least one term with `matchExpressions`, or remove the requirement",
            );
        }
        for (index, term) in required.node_selector_terms.iter().enumerate() {
            check_node_selector_term(term, &terms_path.index(index), findings);
        }
    }

    let preferred_path = path.key("preferredDuringSchedulingIgnoredDuringExecution");
    for (index, preferred) in affinity.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
        let item_path = preferred_path.index(index);
        check_weight(preferred.weight, &item_path.key("weight"), findings);
        check_node_selector_term(&preferred.preference, &item_path.key("preference"), findings);
    }
}

fn check_node_selector_term(term: &NodeSelectorTerm, path: &KeyPath, findings: &mut Findings) {
    let expressions_path = path.key("matchExpressions");
    for (index, requirement) in term.match_expressions.iter().enumerate() {
        check_node_selector_requirement(requirement, &expressions_path.index(index), findings);
    }

    let fields_path = path.key("matchFields");
    for (index, requirement) in term.match_fields.iter().enumerate() {
        check_node_field_requirement(requirement, &fields_path.index(index), findings);
    }
}

fn check_node_selector_requirement(requirement: &NodeSelectorRequirement, path: &KeyPath, findings: &mut Findings) {
    check_requirement_key(&requirement.key, &path.key("key"), findings);

    let operator = requirement.operator.as_str();
    let values = &requirement.values;
    let values_path = path.key("values");
    match operator {
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {
            check_value_count(operator, values, &values_path, findings);
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                findings.add(
                    &values_path,
                    format!("operator `{operator}` needs exactly one value, found {}", values.len()),
                    "give one integer, such as `values = [\"4\"]`",
                );
            } else if values[0].parse::<i64>().is_err() {
                findings.add(
                    &values_path.index(0),
                    format!("operator `{operator}` needs an integer, found `{}`", values[0]),
                    "write a whole number as a string, such as `\"4\"`",
                );
            }
        }
        other => findings.add(
            &path.key("operator"),
            format!("unknown node selector operator `{other}`"),
            format!("use one of {}; operators are case-sensitive", quote_list(&NODE_SELECTOR_OPERATORS)),
        ),
    }
}

/// `matchFields` accepts only the node name, with `In` or `NotIn` and one
/// value.
fn check_node_field_requirement(requirement: &NodeSelectorRequirement, path: &KeyPath, findings: &mut Findings) {
    if requirement.key != NODE_NAME_FIELD {
        findings.add(
            &path.key("key"),
            format!("unsupported field `{}` in `matchFields`", requirement.key),
            format!("`matchFields` can only select `{NODE_NAME_FIELD}`; select node labels with `matchExpressions`"),
        );
    }
    if !matches!(requirement.operator.as_str(), "In" | "NotIn") {
        findings.add(
            &path.key("operator"),
            format!("unsupported `matchFields` operator `{}`", requirement.operator),
            "use `In` or `NotIn`",
        );
    }
    if requirement.values.len() != 1 {
        findings.add(
            &path.key("values"),
            format!("`matchFields` needs exactly one value, found {}", requirement.values.len()),
            "give one node name, such as `values = [\"node-1\"]`",
        );
    }
}

fn check_pod_affinity(affinity: &PodAffinity, path: &KeyPath, findings: &mut Findings) {
    let required_path = path.key("requiredDuringSchedulingIgnoredDuringExecution");
    for (index, term) in affinity.required_during_scheduling_ignored_during_execution.iter().enumerate() {
        check_pod_affinity_term(term, &required_path.index(index), findings);
    }

    let preferred_path = path.key("preferredDuringSchedulingIgnoredDuringExecution");
    for (index, weighted) in affinity.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
        let item_path = preferred_path.index(index);
        check_weight(weighted.weight, &item_path.key("weight"), findings);
        check_pod_affinity_term(&weighted.pod_affinity_term, &item_path.key("podAffinityTerm"), findings);
    }
}

fn check_pod_affinity_term(term: &PodAffinityTerm, path: &KeyPath, findings: &mut Findings) {
    if let Some(selector) = &term.label_selector {
        check_label_selector(selector, &path.key("labelSelector"), findings);
    }
    if let Some(selector) = &term.namespace_selector {
        check_label_selector(selector, &path.key("namespaceSelector"), findings);
    }

    let namespaces_path = path.key("namespaces");
    for (index, namespace) in term.namespaces.iter().enumerate() {
        if !names::is_dns1123_label(namespace) || namespace.len() > names::MAX_LABEL_LENGTH {
            findings.add(
                &namespaces_path.index(index),
                format!("invalid namespace `{namespace}`"),
                "namespaces are DNS-1123 labels: lowercase letters, digits and `-`, at most 63 characters",
            );
        }
    }

    let topology_path = path.key("topologyKey");
    if term.topology_key.is_empty() {
        findings.add(
            &topology_path,
            "empty topology key",
            "set a node label key such as `kubernetes.io/hostname` or `topology.kubernetes.io/zone`",
        );
    } else if let Err(reason) = names::check_label_key(&term.topology_key) {
        findings.add(
            &topology_path,
            format!("invalid topology key `{}`: it {reason}", term.topology_key),
            "set a node label key such as `kubernetes.io/hostname` or `topology.kubernetes.io/zone`",
        );
    }

    for (field, keys) in [("matchLabelKeys", &term.match_label_keys), ("mismatchLabelKeys", &term.mismatch_label_keys)]
    {
        let keys_path = path.key(field);
        for (index, key) in keys.iter().enumerate() {
            check_requirement_key(key, &keys_path.index(index), findings);
        }
    }
}

fn check_label_selector(selector: &LabelSelector, path: &KeyPath, findings: &mut Findings) {
    check_labels(&selector.match_labels, &path.key("matchLabels"), findings);

    let expressions_path = path.key("matchExpressions");
    for (index, requirement) in selector.match_expressions.iter().enumerate() {
        let requirement_path = expressions_path.index(index);
        check_requirement_key(&requirement.key, &requirement_path.key("key"), findings);

        let operator = requirement.operator.as_str();
        if LABEL_SELECTOR_OPERATORS.contains(&operator) {
            check_value_count(operator, &requirement.values, &requirement_path.key("values"), findings);
        } else {
            findings.add(
                &requirement_path.key("operator"),
                format!("unknown label selector operator `{operator}`"),
                format!("use one of {}; operators are case-sensitive", quote_list(&LABEL_SELECTOR_OPERATORS)),
            );
        }
    }
}

fn check_requirement_key(key: &str, path: &KeyPath, findings: &mut Findings) {
    if let Err(reason) = names::check_label_key(key) {
        findings.add(
            path,
            format!("invalid label key `{key}`: it {reason}"),
            "write a key such as `disktype` or `example.com/disktype`",
        );
    }
}

/// `In` and `NotIn` need at least one value; `Exists` and `DoesNotExist`
/// take none.
fn check_value_count(operator: &str, values: &[String], path: &KeyPath, findings: &mut Findings) {
    match operator {
        "In" | "NotIn" if values.is_empty() => findings.add(
            path,
            format!("operator `{operator}` needs at least one value"),
            "list the label values to match, such as `values = [\"ssd\"]`",
        ),
        "Exists" | "DoesNotExist" if !values.is_empty() => findings.add(
            path,
            format!("operator `{operator}` takes no values, found {}", values.len()),
            "remove `values`, or use `In` or `NotIn` to match them",
        ),
        _ => {}
    }
}

fn check_weight(weight: i32, path: &KeyPath, findings: &mut Findings) {
    if !(1..=100).contains(&weight) {
        findings.add(
            path,
            format!("weight `{weight}` is outside 1-100"),
            "use a weight from 1 to 100; the scheduler adds it to the score of nodes that match",
        );
    }
}

fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    quoted.join(", ")
}
