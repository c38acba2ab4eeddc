//! Connections to Kubernetes clusters, one per kubeconfig context, and the
//! errors of requests to them.
//!
//! The kubeconfig comes from `KUBECONFIG` (a list of files, merged) or
//! `~/.kube/config`, as kubectl reads it. Credentials from exec plugins,
//! tokens and client certificates are handled by kube's client.

use std::error::Error as _;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// A client for the cluster of one kubeconfig context.
#[derive(Clone)]
pub struct Cluster {
    /// The kubeconfig context name, shown in output to tell clusters apart.
    pub context: String,
    pub client: kube::Client,
    /// The namespace that the context sets, or `default`.
    pub default_namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Cluster").field("context", &self.context).finish_non_exhaustive()
    }
}

/// A failure to reach a cluster or a request that the API server rejected.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "failed to read the kubeconfig: {error}\nhint: set `KUBECONFIG` to the kubeconfig file, or create `~/.kube/config`"
    )]
    Kubeconfig { error: String },

    #[error(
        "the kubeconfig sets no current context\nhint: pass `--context NAME`, or run `kubectl config use-context NAME`"
    )]
    NoCurrentContext,

    #[error(
        "context `{name}` not found in the kubeconfig; it has {available}\nhint: run `kubectl config get-contexts` to list the contexts"
    )]
    UnknownContext { name: String, available: String },

    #[error(
        "failed to set up the client for context `{context}`: {error}\nhint: check the context's cluster and user entries in the kubeconfig"
    )]
    Config { context: String, error: String },

    /// The API server returned an error `Status`, or the request did not
    /// reach it. `code` is the HTTP status, when there was one.
    #[error("context `{context}`: failed to {action}: {message}{}", hint_line(hint))]
    Request { context: String, action: String, code: Option<u16>, message: String, hint: Option<String> },

    /// Server-side apply found fields that other field managers own with
    /// other values.
    #[error(
        "context `{context}`: failed to apply {object}: {} owned by other field managers: {}\nhint: keep the other manager's values, or rerun with `--force-conflicts` to take the fields over",
        if fields.len() == 1 { "a field is" } else { "fields are" },
        fields.join(", ")
    )]
    Conflict { context: String, object: String, fields: Vec<String> },
}

fn hint_line(hint: &Option<String>) -> String {
    hint.as_ref().map(|hint| format!("\nhint: {hint}")).unwrap_or_default()
}

impl ClusterError {
    /// Returns the HTTP status of a rejected request, such as 404.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Request { code, .. } => *code,
            ClusterError::Conflict { .. } => Some(409),
            _ => None,
        }
    }

    /// Returns whether the API server returned 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
}

impl Cluster {
    /// Wraps a failed request to this cluster; `action` completes "failed to
    /// …", such as "get CronJob `ops/backup`".
    pub fn error(&self, action: impl Into<String>, error: kube::Error) -> ClusterError {
        request_error(&self.context, action.into(), error)
    }

    /// Returns a typed API for `namespace`.
    pub fn namespaced<K>(&self, namespace: &str) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), namespace)
    }

    /// Returns a typed API across all namespaces, or for a cluster-scoped
    /// kind.
    pub fn all<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::all(self.client.clone())
    }
}

/// Describes a kubeconfig failure, naming a file that cannot be read in
/// kuul's style, since the client library prints the path in Rust debug
/// quotes.
fn describe_kubeconfig_error(error: &kube::config::KubeconfigError) -> String {
    match error {
        kube::config::KubeconfigError::ReadConfig(source, path) => format!("`{}`: {source}", path.display()),
        other => other.to_string(),
    }
}

/// Connects to the cluster of each context in `contexts`, or of the
/// kubeconfig's current context when `contexts` is empty.
///
/// No request is sent yet, so an unreachable cluster fails on first use.
pub async fn connect(contexts: &[String]) -> Result<Vec<Cluster>, ClusterError> {
    let kubeconfig =
        Kubeconfig::read().map_err(|error| ClusterError::Kubeconfig { error: describe_kubeconfig_error(&error) })?;

    let names = if contexts.is_empty() {
        let current = kubeconfig.current_context.clone().filter(|name| !name.is_empty());
        vec![current.ok_or(ClusterError::NoCurrentContext)?]
    } else {
        contexts.to_vec()
    };

    let mut clusters = Vec::with_capacity(names.len());
    for name in names {
        clusters.push(connect_context(&kubeconfig, &name).await?);
    }
    Ok(clusters)
}

async fn connect_context(kubeconfig: &Kubeconfig, name: &str) -> Result<Cluster, ClusterError> {
    if !kubeconfig.contexts.iter().any(|context| context.name == name) {
        let mut known: Vec<String> = kubeconfig.contexts.iter().map(|context| format!("`{}`", context.name)).collect();
        known.sort();
        let available = if known.is_empty() { "no contexts".to_owned() } else { known.join(", ") };
        return Err(ClusterError::UnknownContext { name: name.to_owned(), available });
    }

    let invalid = |error: String| ClusterError::Config { context: name.to_owned(), error };
    let options = KubeConfigOptions { context: Some(name.to_owned()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|error| invalid(error.to_string()))?;

    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|error| invalid(describe(&error)))?;
    Ok(Cluster { context: name.to_owned(), client, default_namespace })
}

/// Builds the error for a failed request, with a hint for the usual causes.
fn request_error(context: &str, action: String, error: kube::Error) -> ClusterError {
    let code = match &error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    };

    let hint = match code {
        Some(401) => Some(format!(
            "the API server rejected the credentials of context `{context}`; log in again or check its exec plugin"
        )),
        Some(403) => Some(format!("ask for permission to {action} for the user of context `{context}`")),
        None if auth_error(&error).is_none() => {
            Some(format!("check that the API server of context `{context}` is running and reachable"))
        }
        _ => None,
    };

    ClusterError::Request { context: context.to_owned(), action, code, message: describe(&error), hint }
}

/// Describes `error` in one line. Exec-plugin failures show the plugin's
/// stderr but never its stdout, which may carry a token.
fn describe(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return format!("{} ({})", status.message, status.code);
    }

    if let Some(auth) = auth_error(error) {
        return match auth {
            kube::client::AuthError::AuthExecRun { out, .. } => {
                format!("the exec plugin failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())
            }
            kube::client::AuthError::AuthExecParse(_) => {
                "the exec plugin's output is not a valid ExecCredential".to_owned()
            }
            other => other.to_string(),
        };
    }

    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Finds an authentication error in the chain of `error`.
fn auth_error(error: &kube::Error) -> Option<&kube::client::AuthError> {
    if let kube::Error::Auth(auth) = error {
        return Some(auth);
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(auth) = cause.downcast_ref::<kube::client::AuthError>() {
            return Some(auth);
        }
        source = cause.source();
    }
    None
}

/// Picks the namespace: `--namespace`, then the `[deploy]` table of
/// kuul.toml, then the context's namespace.
pub fn resolve_namespace(flag: Option<&str>, spec: Option<&str>, cluster: &Cluster) -> String {
    flag.or(spec).unwrap_or(&cluster.default_namespace).to_owned()
}
