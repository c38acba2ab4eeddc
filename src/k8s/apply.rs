//! Server-side apply of the CronJob, its dry run, and the diff against the
//! live object.

use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Patch, PatchParams};

use super::cluster::{Cluster, ClusterError};
use super::manifest::MANAGER;

/// The field manager name kuul applies with, so `managedFields` shows which
/// fields kuul owns.
pub const FIELD_MANAGER: &str = MANAGER;

/// The effect of an apply on the live object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl std::fmt::Display for Change {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        })
    }
}

/// Options of [`apply`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Ask the API server to validate and admit the object without storing
    /// it (`dryRun=All`).
    pub dry_run: bool,
    /// Take over fields that other field managers own.
    pub force: bool,
}

/// The result of an apply: the object as the API server returned it and the
/// live object before.
#[derive(Debug, Clone)]
pub struct Applied {
    pub object: CronJob,
    pub live: Option<CronJob>,
    pub change: Change,
}

/// Applies `cronjob` in `namespace` with server-side apply as
/// [`FIELD_MANAGER`].
///
/// # Errors
///
/// [`ClusterError::Conflict`] when other managers own fields with other
/// values and `force` is off, and [`ClusterError::Request`] for any other
/// rejection.
pub async fn apply(
    cluster: &Cluster,
    namespace: &str,
    cronjob: &CronJob,
    options: ApplyOptions,
) -> Result<Applied, ClusterError> {
    let mut desired = cronjob.clone();
    desired.metadata.namespace = Some(namespace.to_owned());
    let name = desired.metadata.name.clone().unwrap_or_default();
    let object_name = format!("CronJob `{namespace}/{name}`");
    let api = cluster.namespaced::<CronJob>(namespace);

    let live = api.get_opt(&name).await.map_err(|error| cluster.error(format!("get {object_name}"), error))?;

    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = options.force;
    params.dry_run = options.dry_run;
    let object = api
        .patch(&name, &params, &Patch::Apply(&desired))
        .await
        .map_err(|error| apply_error(cluster, &object_name, error))?;

    let change = match &live {
        None => Change::Created,
        Some(live) if comparable(live) == comparable(&object) => Change::Unchanged,
        Some(_) => Change::Configured,
    };
    Ok(Applied { object, live, change })
}

/// Converts a 409 from server-side apply into [`ClusterError::Conflict`],
/// naming each field and its manager.
fn apply_error(cluster: &Cluster, object_name: &str, error: kube::Error) -> ClusterError {
    if let kube::Error::Api(status) = &error
        && status.code == 409
        && status.reason == "Conflict"
    {
        let causes = status.details.as_ref().map(|details| details.causes.as_slice()).unwrap_or_default();
        let fields = causes
            .iter()
            .map(|cause| match quoted(&cause.message) {
                Some(manager) => format!("`{}` (manager `{manager}`)", cause.field),
                None => format!("`{}`", cause.field),
            })
            .collect();
        return ClusterError::Conflict { context: cluster.context.clone(), object: object_name.to_owned(), fields };
    }
    cluster.error(format!("apply {object_name}"), error)
}

/// Returns the first double-quoted part of `text`: the manager in
/// `conflict with "kubectl-edit" using batch/v1`.
fn quoted(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('"')?;
    rest.split_once('"').map(|(inside, _)| inside)
}

/// Returns `cronjob` as JSON without the fields the server sets (status,
/// managed fields, versions, timestamps, uid), so two objects compare by
/// what a user sets.
pub fn comparable(cronjob: &CronJob) -> serde_json::Value {
    let mut value = serde_json::to_value(cronjob).expect("a CronJob serializes");
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    if let Some(metadata) = value.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        for key in ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"] {
            metadata.remove(key);
        }
    }
    value
}

/// Returns a unified diff of the live CronJob against the object a
/// server-side dry run produces, or `None` when they are equal. The two
/// sides are named `live/NAMESPACE/NAME` and `applied/NAMESPACE/NAME`.
pub async fn diff(
    cluster: &Cluster,
    namespace: &str,
    cronjob: &CronJob,
    force: bool,
) -> Result<Option<String>, ClusterError> {
    let applied = apply(cluster, namespace, cronjob, ApplyOptions { dry_run: true, force }).await?;
    if applied.change == Change::Unchanged {
        return Ok(None);
    }

    let before = applied.live.as_ref().map(|live| to_yaml(&comparable(live))).unwrap_or_default();
    let after = to_yaml(&comparable(&applied.object));
    let name = applied.object.metadata.name.as_deref().unwrap_or_default();
    let text = similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{namespace}/{name}"), &format!("applied/{namespace}/{name}"))
        .to_string();
    Ok(Some(text))
}

fn to_yaml(value: &serde_json::Value) -> String {
    serde_saphyr::to_string(value).expect("JSON values serialize as YAML")
}
