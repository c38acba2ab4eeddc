//! Validation of `[deploy]`: the target contexts and the namespace.

use std::collections::BTreeSet;

use super::Deploy;
use super::locate::KeyPath;
use super::names;
use super::validate::Findings;

pub fn check_deploy(deploy: &Deploy, path: &KeyPath, findings: &mut Findings) {
    let contexts_path = path.key("contexts");
    let mut seen = BTreeSet::new();
    for (index, context) in deploy.contexts.iter().enumerate() {
        if context.trim().is_empty() {
            findings.add(
                &contexts_path.index(index),
                "empty context name",
                "write a context name from `kubectl config get-contexts`",
            );
        } else if !seen.insert(context.as_str()) {
            findings.add(
                &contexts_path.index(index),
                format!("duplicate context `{context}`"),
                "list each context once, or the job is applied twice",
            );
        }
    }

    if let Some(namespace) = &deploy.namespace
        && (!names::is_dns1123_label(namespace) || namespace.len() > names::MAX_LABEL_LENGTH)
    {
        findings.add(
            &path.key("namespace"),
            format!("invalid namespace `{namespace}`"),
            "namespaces are DNS-1123 labels: lowercase letters, digits and `-`, at most 63 characters",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::spec::{Problem, SpecError, parse};

    const JOB: &str = "[job]\nname = \"backup\"\nschedule = \"@daily\"\ncommand = \"/job/run.sh\"\n";

    fn problems(deploy: &str) -> Vec<Problem> {
        match parse(&format!("{JOB}[deploy]\n{deploy}"), Path::new("kuul.toml")) {
            Ok(_) => Vec::new(),
            Err(SpecError::Invalid { problems, .. }) => problems,
            Err(error) => panic!("unexpected error: {error}"),
        }
    }

    #[test]
    fn deploy_table_parses_contexts_and_namespace() {
        let text = format!("{JOB}[deploy]\ncontexts = [\"prod\", \"lab\"]\nnamespace = \"ops\"\n");
        let spec = parse(&text, Path::new("kuul.toml")).expect("valid");

        assert_eq!(spec.deploy.contexts, ["prod", "lab"]);
        assert_eq!(spec.deploy.namespace.as_deref(), Some("ops"));
    }

    #[test]
    fn deploy_rejects_duplicate_context() {
        let found = problems("contexts = [\"prod\", \"prod\"]\n");

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "deploy.contexts[1]");
        assert!(found[0].message.contains("duplicate context `prod`"), "{}", found[0].message);
    }

    #[test]
    fn deploy_rejects_empty_context() {
        let found = problems("contexts = [\" \"]\n");

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "deploy.contexts[0]");
    }

    #[test]
    fn deploy_rejects_invalid_namespace() {
        let found = problems("namespace = \"Ops_Team\"\n");

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "deploy.namespace");
        assert_eq!(found[0].line, Some(6));
    }
}
