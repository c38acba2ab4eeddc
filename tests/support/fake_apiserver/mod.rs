//! A fake Kubernetes API server for kuul's cluster tests. It is not
//! Kubernetes: it keeps objects in memory, runs no controllers except a
//! scripted stand-in for the Job controller, and serves plain HTTP on
//! 127.0.0.1 with a free port.
//!
//! For the calls kuul makes it follows the real API's semantics:
//!
//! - server-side apply with field managers, conflicts, `force` and
//!   `dryRun=All` (see [`ssa`]), and JSON merge patches;
//! - GET and LIST with label selectors, in one namespace or all;
//! - POST with 409 `AlreadyExists`, and DELETE with owner-reference
//!   cascading;
//! - `Status` bodies for 401, 403, 404, 409 and 422, including 404 for an
//!   object in a namespace that does not exist;
//! - pod logs with `container`, `previous=true` and `follow=true`;
//! - bearer-token checks, for exec-plugin credentials.
//!
//! Tests seed it with namespaces, nodes, secrets, CronJobs, Jobs and Pods,
//! and read back every request.

#![allow(dead_code)]

mod handlers;
pub mod selector;
pub mod ssa;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// The resource types the fake serves.
#[derive(Debug)]
pub struct ResourceType {
    pub plural: &'static str,
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespaced: bool,
}

pub const RESOURCE_TYPES: [ResourceType; 6] = [
    ResourceType { plural: "namespaces", kind: "Namespace", api_version: "v1", namespaced: false },
    ResourceType { plural: "nodes", kind: "Node", api_version: "v1", namespaced: false },
    ResourceType { plural: "secrets", kind: "Secret", api_version: "v1", namespaced: true },
    ResourceType { plural: "pods", kind: "Pod", api_version: "v1", namespaced: true },
    ResourceType { plural: "cronjobs", kind: "CronJob", api_version: "batch/v1", namespaced: true },
    ResourceType { plural: "jobs", kind: "Job", api_version: "batch/v1", namespaced: true },
];

/// Returns the resource type of `kind`.
pub fn resource_type_of_kind(kind: &str) -> &'static ResourceType {
    RESOURCE_TYPES
        .iter()
        .find(|resource| resource.kind == kind)
        .unwrap_or_else(|| panic!("the fake API server does not serve kind `{kind}`"))
}

/// Objects are keyed by plural, namespace (empty when cluster-scoped) and
/// name.
pub type ObjectKey = (String, String, String);

/// The log text of one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerLogs {
    pub current: String,
    pub previous: Option<String>,
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

/// How a scripted run of a created Job ends.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Succeeded,
    /// The container exits with `exit_code`; `reason` is the container's
    /// termination reason, such as `Error` or `OOMKilled`.
    Failed {
        exit_code: i32,
        reason: String,
    },
}

/// What the stand-in Job controller does with each Job created through the
/// API: it starts one Running pod whose container prints `logs`, and after
/// `duration` ends the pod and the Job with `outcome`.
#[derive(Debug, Clone)]
pub struct RunScript {
    pub logs: String,
    pub outcome: RunOutcome,
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub struct State {
    pub objects: BTreeMap<ObjectKey, Value>,
    /// Keyed by namespace, pod name and container name.
    pub logs: BTreeMap<(String, String, String), ContainerLogs>,
    pub requests: Vec<RecordedRequest>,
    pub counter: u64,
    pub required_token: Option<String>,
    pub run_script: Option<RunScript>,
    /// Pairs of HTTP method and resource plural that fail with 403, as
    /// RBAC would reject them.
    pub forbidden: Vec<(String, String)>,
}

pub type Shared = Arc<Mutex<State>>;

/// A running fake API server. Dropping it stops the server.
pub struct FakeApiServer {
    url: String,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeApiServer {
    /// Starts a server on 127.0.0.1 with a port the OS picks, and seeds the
    /// `default` namespace, as a new cluster has.
    pub fn start() -> FakeApiServer {
        let state: Shared = Arc::default();
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let (shutdown_sender, shutdown_receiver) = tokio::sync::oneshot::channel::<()>();

        let server_state = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime for the fake API server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
                address_sender.send(listener.local_addr().expect("local address")).expect("send address");

                let router = axum::Router::new().fallback(handlers::handle).with_state(server_state);
                let shutdown = async {
                    let _ = shutdown_receiver.await;
                };
                axum::serve(listener, router).with_graceful_shutdown(shutdown).await.expect("fake API server");
            });
        });

        let address = address_receiver.recv().expect("fake API server address");
        let server = FakeApiServer { url: format!("http://{address}"), state, shutdown: Some(shutdown_sender) };
        server.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}));
        server
    }

    /// Returns the base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stores `object` as if it had been created long ago. The server fills
    /// `uid`, `resourceVersion` and `creationTimestamp` when they are absent.
    pub fn insert(&self, mut object: Value) {
        let kind = object["kind"].as_str().expect("seeded object has a kind").to_owned();
        let resource = resource_type_of_kind(&kind);
        let mut state = self.state.lock().unwrap();
        handlers::fill_server_metadata(&mut state, &mut object, None);

        let key = handlers::key_of(resource, &object);
        state.objects.insert(key, object);
    }

    /// Returns the stored object, or `None`.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = resource_type_of_kind(kind);
        let key = (resource.plural.to_owned(), namespace.to_owned(), name.to_owned());
        self.state.lock().unwrap().objects.get(&key).cloned()
    }

    /// Returns every stored object of `kind`, in key order.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let resource = resource_type_of_kind(kind);
        let state = self.state.lock().unwrap();
        state.objects.iter().filter(|(key, _)| key.0 == resource.plural).map(|(_, object)| object.clone()).collect()
    }

    /// Sets the logs of a container; `previous` is the log of the container
    /// instance before its last restart.
    pub fn set_logs(&self, namespace: &str, pod: &str, container: &str, current: &str, previous: Option<&str>) {
        let key = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        let logs = ContainerLogs { current: current.to_owned(), previous: previous.map(str::to_owned) };
        self.state.lock().unwrap().logs.insert(key, logs);
    }

    /// Makes every request without `Authorization: Bearer TOKEN` fail with
    /// 401.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().required_token = Some(token.to_owned());
    }

    /// Makes every `method` request on `plural` (such as `GET` on `nodes`)
    /// fail with 403 Forbidden.
    pub fn forbid(&self, method: &str, plural: &str) {
        self.state.lock().unwrap().forbidden.push((method.to_owned(), plural.to_owned()));
    }

    /// Sets what happens to Jobs created from now on.
    pub fn on_job_created(&self, script: RunScript) {
        self.state.lock().unwrap().run_script = Some(script);
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Returns the whole objects kuul sent: the bodies of creates and of
    /// server-side applies.
    pub fn sent_objects(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|request| {
                request.method == "POST" || request.content_type.as_deref() == Some("application/apply-patch+yaml")
            })
            .filter_map(|request| request.body)
            .collect()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Returns a kubeconfig with one context per `(context, server URL)` pair,
/// each with its own cluster and a user named after the context. The first
/// context is the current one. `user` is the YAML of the user entry, such as
/// `token: secret` or an `exec:` block, indented by 4 spaces.
pub fn kubeconfig(contexts: &[(&str, &str)], user: &str) -> String {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut context_entries = String::new();
    for (name, url) in contexts {
        clusters.push_str(&format!("- name: {name}\n  cluster:\n    server: {url}\n"));
        users.push_str(&format!("- name: {name}\n  user:\n{user}\n"));
        context_entries.push_str(&format!("- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"));
    }
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {}\nclusters:\n{clusters}users:\n{users}contexts:\n{context_entries}",
        contexts[0].0
    )
}
