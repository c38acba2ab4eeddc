//! Request routing and the handlers for each verb.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::selector::Selector;
use super::ssa;
use super::{RESOURCE_TYPES, RecordedRequest, ResourceType, RunOutcome, Shared, State};

/// Characters the API server uses for `generateName` suffixes.
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const APPLY_PATCH: &str = "application/apply-patch+yaml";
const MERGE_PATCH: &str = "application/merge-patch+json";

struct Route {
    resource: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

pub async fn handle(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = parse_query(uri.query().unwrap_or(""));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
    let parsed_body = if body.is_empty() { None } else { serde_json::from_slice::<Value>(&body).ok() };

    let route = {
        let mut state = shared.lock().unwrap();
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: parsed_body.clone(),
        });

        if let Some(token) = &state.required_token {
            let expected = format!("Bearer {token}");
            let given = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
            if given != Some(expected.as_str()) {
                return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", json!({}));
            }
        }

        let Some(route) = parse_path(uri.path()) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                json!({}),
            );
        };

        let plural = route.resource.plural;
        if state.forbidden.iter().any(|(forbidden_method, forbidden_plural)| {
            forbidden_method == method.as_str() && forbidden_plural == plural
        }) {
            let verb = method.as_str().to_lowercase();
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!("{plural} is forbidden: User \"test\" cannot {verb} resource \"{plural}\""),
                json!({"kind": plural}),
            );
        }
        route
    };
    if !body.is_empty() && parsed_body.is_none() && method != Method::DELETE {
        return bad_request("the request body is not valid JSON");
    }

    let is_log = method == Method::GET
        && route.name.is_some()
        && route.subresource.as_deref() == Some("log")
        && route.resource.plural == "pods";
    if is_log {
        return logs(shared, &route, &query).await;
    }

    let mut state = shared.lock().unwrap();
    match (method.clone(), route.name.is_some(), route.subresource.as_deref()) {
        (Method::GET, false, None) => list(&state, &route, &query),
        (Method::GET, true, None) => get(&state, &route),
        (Method::POST, false, None) => create(&mut state, &shared, &route, &query, parsed_body),
        (Method::PATCH, true, None) => match content_type.as_deref() {
            Some(APPLY_PATCH) => apply(&mut state, &route, &query, parsed_body),
            Some(MERGE_PATCH) => merge_patch(&mut state, &route, &query, parsed_body),
            other => status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                &format!("the body of the request was in an unknown format: {}", other.unwrap_or("")),
                json!({}),
            ),
        },
        (Method::DELETE, true, None) => delete(&mut state, &route, &query, parsed_body),
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource: {method}"),
            json!({}),
        ),
    }
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                index += 2;
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_path(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };

    let (namespace, rest) =
        if rest.len() >= 3 && rest[0] == "namespaces" { (Some(rest[1].to_owned()), &rest[2..]) } else { (None, rest) };
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }

    let resource =
        RESOURCE_TYPES.iter().find(|resource| resource.plural == rest[0] && resource.api_version == api_version)?;
    if namespace.is_some() && !resource.namespaced {
        return None;
    }

    Some(Route {
        resource,
        namespace,
        name: rest.get(1).map(|name| name.to_string()),
        subresource: rest.get(2).map(|name| name.to_string()),
    })
}

/// Returns a `Status` response, the body the API server sends with every
/// error.
fn status(code: StatusCode, reason: &str, message: &str, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if details.as_object().is_some_and(|map| !map.is_empty()) {
        body["details"] = details;
    }
    (code, axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, json!({}))
}

fn group_of(resource: &ResourceType) -> &'static str {
    resource.api_version.split_once('/').map(|(group, _)| group).unwrap_or("")
}

/// Returns the resource name used in messages, such as `cronjobs.batch` or
/// `pods`.
fn qualified(resource: &ResourceType) -> String {
    match group_of(resource) {
        "" => resource.plural.to_owned(),
        group => format!("{}.{group}", resource.plural),
    }
}

fn not_found(resource: &ResourceType, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(resource)),
        json!({"name": name, "group": group_of(resource), "kind": resource.plural}),
    )
}

fn namespace_not_found(namespace: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("namespaces \"{namespace}\" not found"),
        json!({"name": namespace, "kind": "namespaces"}),
    )
}

pub fn key_of(resource: &ResourceType, object: &Value) -> super::ObjectKey {
    let namespace = if resource.namespaced {
        object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default").to_owned()
    } else {
        String::new()
    };
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    (resource.plural.to_owned(), namespace, name)
}

fn route_key(route: &Route) -> super::ObjectKey {
    (
        route.resource.plural.to_owned(),
        route.namespace.clone().unwrap_or_default(),
        route.name.clone().unwrap_or_default(),
    )
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn namespace_exists(state: &State, namespace: &str) -> bool {
    state.objects.contains_key(&("namespaces".to_owned(), String::new(), namespace.to_owned()))
}

/// Sets `uid`, `resourceVersion`, `creationTimestamp` and `generation` where
/// they are missing, and bumps `resourceVersion` (and `generation` when the
/// spec changed from `previous`).
pub fn fill_server_metadata(state: &mut State, object: &mut Value, previous: Option<&Value>) {
    state.counter += 1;
    let counter = state.counter;
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let metadata = object["metadata"].as_object_mut().expect("metadata is an object");

    metadata.entry("uid").or_insert_with(|| json!(format!("00000000-0000-4000-8000-{counter:012}")));
    metadata.entry("creationTimestamp").or_insert_with(|| json!(now()));
    metadata.insert("resourceVersion".to_owned(), json!(counter.to_string()));

    let previous_generation = previous.and_then(|old| old.pointer("/metadata/generation")).and_then(Value::as_i64);
    let spec_changed = previous.is_none_or(|old| old.get("spec") != object.get("spec"));
    let generation = match previous_generation {
        Some(generation) if spec_changed => generation + 1,
        Some(generation) => generation,
        None => 1,
    };
    object["metadata"]["generation"] = json!(generation);
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels.iter().map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned())).collect()
        })
        .unwrap_or_default()
}

fn list(state: &State, route: &Route, query: &BTreeMap<String, String>) -> Response {
    let selector = match Selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or("")) {
        Ok(selector) => selector,
        Err(message) => return bad_request(&message),
    };
    if query.get("fieldSelector").is_some_and(|value| !value.is_empty()) {
        return bad_request("the fake API server does not support field selectors");
    }

    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|(key, _)| key.0 == route.resource.plural)
        .filter(|(key, _)| route.namespace.as_ref().is_none_or(|namespace| &key.1 == namespace))
        .filter(|(_, object)| selector.matches(&labels_of(object)))
        .map(|(_, object)| object.clone())
        .collect();

    let body = json!({
        "kind": format!("{}List", route.resource.kind),
        "apiVersion": route.resource.api_version,
        "metadata": {"resourceVersion": state.counter.to_string()},
        "items": items,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn get(state: &State, route: &Route) -> Response {
    if route.resource.namespaced && route.namespace.is_none() {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    }
    match state.objects.get(&route_key(route)) {
        Some(object) => (StatusCode::OK, axum::Json(object.clone())).into_response(),
        None => not_found(route.resource, route.name.as_deref().unwrap_or("")),
    }
}

fn is_dry_run(query: &BTreeMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|value| value == "All")
}

/// Checks the body's type and namespace against the URL, and returns the
/// 400 response when they differ.
fn identity_error(route: &Route, object: &Value) -> Option<Response> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != route.resource.api_version || kind != route.resource.kind {
        return Some(bad_request(&format!(
            "the API version in the data ({api_version}) and kind ({kind}) do not match the request ({}, {})",
            route.resource.api_version, route.resource.kind
        )));
    }

    let body_namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
    if let (Some(body_namespace), Some(namespace)) = (body_namespace, &route.namespace)
        && body_namespace != namespace
    {
        return Some(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    None
}

/// Returns the 422 response for an invalid object, or `None`.
fn validate(resource: &ResourceType, object: &Value) -> Option<Response> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let mut causes = Vec::new();
    let mut add = |reason: &str, field: &str, message: String| {
        causes.push(json!({"reason": reason, "field": field, "message": message}));
    };

    let max_name = match resource.kind {
        "CronJob" => 52,
        "Job" => 63,
        _ => 253,
    };
    if name.is_empty() {
        add("FieldValueRequired", "metadata.name", "Required value: name or generateName is required".to_owned());
    } else if !is_dns1123_subdomain(name) || name.len() > max_name {
        add(
            "FieldValueInvalid",
            "metadata.name",
            format!(
                "Invalid value: \"{name}\": must be a lowercase RFC 1123 subdomain of at most {max_name} characters"
            ),
        );
    }

    let pod_spec = match resource.kind {
        "CronJob" => {
            let schedule = object.pointer("/spec/schedule").and_then(Value::as_str).unwrap_or("");
            if schedule.is_empty() {
                add("FieldValueRequired", "spec.schedule", "Required value".to_owned());
            }
            Some(object.pointer("/spec/jobTemplate/spec/template/spec").unwrap_or(&Value::Null))
        }
        "Job" => Some(object.pointer("/spec/template/spec").unwrap_or(&Value::Null)),
        _ => None,
    };
    if let Some(pod_spec) = pod_spec {
        let prefix =
            if resource.kind == "CronJob" { "spec.jobTemplate.spec.template.spec" } else { "spec.template.spec" };
        let containers = pod_spec.get("containers").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
        if containers == 0 {
            add("FieldValueRequired", &format!("{prefix}.containers"), "Required value".to_owned());
        }
        let restart_policy = pod_spec.get("restartPolicy").and_then(Value::as_str).unwrap_or("");
        if !matches!(restart_policy, "Never" | "OnFailure") {
            add(
                "FieldValueNotSupported",
                &format!("{prefix}.restartPolicy"),
                format!("Unsupported value: \"{restart_policy}\": supported values: \"OnFailure\", \"Never\""),
            );
        }
    }

    if causes.is_empty() {
        return None;
    }
    let summary: Vec<String> = causes
        .iter()
        .map(|cause| format!("{}: {}", cause["field"].as_str().unwrap_or(""), cause["message"].as_str().unwrap_or("")))
        .collect();
    let group = group_of(resource);
    let kind_group = if group.is_empty() { resource.kind.to_owned() } else { format!("{}.{group}", resource.kind) };
    Some(status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        &format!("{kind_group} \"{name}\" is invalid: {}", summary.join(", ")),
        json!({"name": name, "group": group, "kind": resource.kind, "causes": causes}),
    ))
}

fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            let alphanumeric = |byte: &u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
            !bytes.is_empty()
                && bytes.iter().all(|byte| alphanumeric(byte) || *byte == b'-')
                && alphanumeric(&bytes[0])
                && alphanumeric(&bytes[bytes.len() - 1])
        })
}

fn suffix(counter: u64) -> String {
    let mut value = counter.wrapping_mul(2654435761) % 14_348_907;
    let mut out = String::new();
    for _ in 0..5 {
        out.push(SUFFIX_ALPHABET[(value % SUFFIX_ALPHABET.len() as u64) as usize] as char);
        value /= SUFFIX_ALPHABET.len() as u64;
    }
    out
}

fn create(
    state: &mut State,
    shared: &Shared,
    route: &Route,
    query: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Response {
    let Some(mut object) = body else {
        return bad_request("the request body is empty");
    };
    if let Some(response) = identity_error(route, &object) {
        return response;
    }
    let Some(namespace) =
        route.namespace.clone().or(if route.resource.namespaced { None } else { Some(String::new()) })
    else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            json!({}),
        );
    };
    if route.resource.namespaced {
        if !namespace_exists(state, &namespace) {
            return namespace_not_found(&namespace);
        }
        object["metadata"]["namespace"] = json!(namespace);
    }

    if object.pointer("/metadata/name").and_then(Value::as_str).is_none()
        && let Some(prefix) = object.pointer("/metadata/generateName").and_then(Value::as_str).map(str::to_owned)
    {
        state.counter += 1;
        object["metadata"]["name"] = json!(format!("{prefix}{}", suffix(state.counter)));
    }
    if route.resource.kind == "Job" {
        default_job_selector(state, &mut object);
    }
    if let Some(response) = validate(route.resource, &object) {
        return response;
    }

    let key = key_of(route.resource, &object);
    if state.objects.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} \"{}\" already exists", qualified(route.resource), key.2),
            json!({"name": key.2, "group": group_of(route.resource), "kind": route.resource.plural}),
        );
    }

    let manager = query.get("fieldManager").cloned().unwrap_or_else(|| "unknown".to_owned());
    let fields = ssa::fields_of(&object);
    let entry = ssa::ManagedEntry {
        manager,
        operation: "Update".to_owned(),
        api_version: route.resource.api_version.to_owned(),
        time: now(),
        fields,
    };
    ssa::set_managed_entries(&mut object, &[entry]);
    fill_server_metadata(state, &mut object, None);

    if is_dry_run(query) {
        return (StatusCode::CREATED, axum::Json(object)).into_response();
    }
    state.objects.insert(key, object.clone());
    if route.resource.kind == "Job"
        && let Some(script) = state.run_script.clone()
    {
        start_run(state, shared, &object, script);
    }
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

/// Adds the selector and pod labels that the API server defaults on a Job
/// without `manualSelector`.
fn default_job_selector(state: &mut State, job: &mut Value) {
    state.counter += 1;
    let uid = format!("00000000-0000-4000-8000-{:012}", state.counter);
    job["metadata"]["uid"] = json!(uid);
    let name = job.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();

    job["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let labels = job.pointer_mut("/spec/template/metadata/labels");
    let labels = match labels {
        Some(labels) if labels.is_object() => labels,
        _ => {
            job["spec"]["template"]["metadata"]["labels"] = json!({});
            job.pointer_mut("/spec/template/metadata/labels").expect("labels were just set")
        }
    };
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid.as_str()),
        ("job-name", name.as_str()),
    ] {
        labels[key] = json!(value);
    }
}

/// Starts the scripted run of `job`: a Running pod now, the end after the
/// script's duration.
fn start_run(state: &mut State, shared: &Shared, job: &Value, script: super::RunScript) {
    let namespace = job.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_owned();
    let job_name = job.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let job_uid = job.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
    state.counter += 1;
    let pod_name = format!("{job_name}-{}", suffix(state.counter));
    let started = now();

    let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut pod_spec = template.get("spec").cloned().unwrap_or(json!({}));
    pod_spec["nodeName"] = json!("node-1");
    let container = pod_spec.pointer("/containers/0/name").and_then(Value::as_str).unwrap_or("job").to_owned();
    let image = pod_spec.pointer("/containers/0/image").cloned().unwrap_or(json!(""));

    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": namespace,
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": job_uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": pod_spec,
        "status": {
            "phase": "Running",
            "startTime": started,
            "containerStatuses": [{
                "name": container, "image": image, "imageID": "", "ready": true, "restartCount": 0,
                "started": true, "state": {"running": {"startedAt": started}},
            }],
        },
    });
    fill_server_metadata(state, &mut pod, None);
    state.objects.insert(("pods".to_owned(), namespace.clone(), pod_name.clone()), pod);
    state.logs.insert(
        (namespace.clone(), pod_name.clone(), container.clone()),
        super::ContainerLogs { current: script.logs.clone(), previous: None },
    );

    let job_key = ("jobs".to_owned(), namespace.clone(), job_name);
    if let Some(stored) = state.objects.get_mut(&job_key) {
        stored["status"] = json!({"startTime": started, "active": 1, "ready": 1});
    }

    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(script.duration).await;
        let mut state = shared.lock().unwrap();
        finish_run(&mut state, &job_key, &("pods".to_owned(), namespace, pod_name), &script.outcome, &started);
    });
}

fn finish_run(
    state: &mut State,
    job_key: &super::ObjectKey,
    pod_key: &super::ObjectKey,
    outcome: &RunOutcome,
    started: &str,
) {
    let finished = now();
    let (phase, exit_code, reason) = match outcome {
        RunOutcome::Succeeded => ("Succeeded", 0, "Completed".to_owned()),
        RunOutcome::Failed { exit_code, reason } => ("Failed", *exit_code, reason.clone()),
    };

    if let Some(pod) = state.objects.get_mut(pod_key) {
        pod["status"]["phase"] = json!(phase);
        pod["status"]["containerStatuses"][0]["ready"] = json!(false);
        pod["status"]["containerStatuses"][0]["started"] = json!(false);
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": finished,
        }});
    }

    let Some(job) = state.objects.get_mut(job_key) else {
        return;
    };
    job["status"] = match outcome {
        RunOutcome::Succeeded => json!({
            "startTime": started, "completionTime": finished, "succeeded": 1, "active": 0, "ready": 0,
            "conditions": [
                condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", &finished),
                condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", &finished),
            ],
        }),
        RunOutcome::Failed { .. } => json!({
            "startTime": started, "failed": 1, "active": 0, "ready": 0,
            "conditions": [
                condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", &finished),
                condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", &finished),
            ],
        }),
    };
}

fn condition(kind: &str, reason: &str, message: &str, time: &str) -> Value {
    json!({
        "type": kind, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": time, "lastTransitionTime": time,
    })
}

fn apply(state: &mut State, route: &Route, query: &BTreeMap<String, String>, body: Option<Value>) -> Response {
    let Some(applied) = body else {
        return bad_request("the request body is empty");
    };
    let Some(manager) = query.get("fieldManager").filter(|manager| !manager.is_empty()) else {
        return bad_request("PATCH requests with an apply patch must set fieldManager");
    };
    if let Some(response) = identity_error(route, &applied) {
        return response;
    }
    let name = route.name.as_deref().unwrap_or("");
    if applied.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return bad_request("the name of the object does not match the name on the URL");
    }
    if let Some(namespace) = &route.namespace
        && !namespace_exists(state, namespace)
    {
        return namespace_not_found(namespace);
    }

    let key = route_key(route);
    let live = state.objects.get(&key).cloned();
    let force = query.get("force").is_some_and(|value| value == "true");
    let mut object = match ssa::apply(live.as_ref(), &applied, manager, force, &now()) {
        Ok(object) => object,
        Err(conflicts) => return conflict_response(&conflicts),
    };
    object["metadata"]["name"] = json!(name);
    if let Some(namespace) = &route.namespace {
        object["metadata"]["namespace"] = json!(namespace);
    }
    object["apiVersion"] = json!(route.resource.api_version);
    object["kind"] = json!(route.resource.kind);
    if let Some(response) = validate(route.resource, &object) {
        return response;
    }
    fill_server_metadata(state, &mut object, live.as_ref());
    if live.as_ref().is_some_and(|old| same_except_version(old, &object)) {
        object = live.clone().expect("checked above");
    }

    let code = if live.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    if !is_dry_run(query) {
        state.objects.insert(key, object.clone());
    }
    (code, axum::Json(object)).into_response()
}

/// Returns whether an apply changed nothing but the server-set version and
/// the managed-fields timestamps, in which case the API server keeps the
/// stored object as it is.
fn same_except_version(old: &Value, new: &Value) -> bool {
    let strip = |object: &Value| {
        let mut object = object.clone();
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
            if let Some(Value::Array(entries)) = metadata.get_mut("managedFields") {
                for entry in entries {
                    if let Some(entry) = entry.as_object_mut() {
                        entry.remove("time");
                    }
                }
            }
        }
        object
    };
    strip(old) == strip(new)
}

fn conflict_response(conflicts: &[ssa::Conflict]) -> Response {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|conflict| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{}\" using {}", conflict.manager, conflict.api_version),
                "field": ssa::dotted(&conflict.field),
            })
        })
        .collect();
    let lines: Vec<String> = conflicts
        .iter()
        .map(|conflict| {
            format!(
                "- conflict with \"{}\" using {}: {}",
                conflict.manager,
                conflict.api_version,
                ssa::dotted(&conflict.field)
            )
        })
        .collect();
    let noun = if conflicts.len() == 1 { "conflict" } else { "conflicts" };
    status(
        StatusCode::CONFLICT,
        "Conflict",
        &format!("Apply failed with {} {noun}: {}", conflicts.len(), lines.join("\n")),
        json!({"causes": causes}),
    )
}

fn merge_patch(state: &mut State, route: &Route, query: &BTreeMap<String, String>, body: Option<Value>) -> Response {
    let Some(patch) = body else {
        return bad_request("the request body is empty");
    };
    let key = route_key(route);
    let Some(live) = state.objects.get(&key).cloned() else {
        return not_found(route.resource, route.name.as_deref().unwrap_or(""));
    };

    let manager = query.get("fieldManager").cloned().unwrap_or_else(|| "unknown".to_owned());
    let mut object = ssa::merge_patch(&live, &patch, &manager, route.resource.api_version, &now());
    if let Some(response) = validate(route.resource, &object) {
        return response;
    }
    fill_server_metadata(state, &mut object, Some(&live));
    if !is_dry_run(query) {
        state.objects.insert(key, object.clone());
    }
    (StatusCode::OK, axum::Json(object)).into_response()
}

fn delete(state: &mut State, route: &Route, query: &BTreeMap<String, String>, body: Option<Value>) -> Response {
    let key = route_key(route);
    let Some(object) = state.objects.get(&key).cloned() else {
        return not_found(route.resource, route.name.as_deref().unwrap_or(""));
    };

    // batch/v1 Jobs orphan their pods by default, for compatibility with
    // old clients. Every other kind here cascades in the background.
    let default_policy = if route.resource.kind == "Job" { "Orphan" } else { "Background" };
    let policy = body
        .as_ref()
        .and_then(|body| body.get("propagationPolicy"))
        .and_then(Value::as_str)
        .or(query.get("propagationPolicy").map(String::as_str))
        .unwrap_or(default_policy)
        .to_owned();

    if !is_dry_run(query) {
        let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        state.objects.remove(&key);
        collect_dependents(state, &uid, policy == "Orphan");
    }

    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": key.2,
            "group": group_of(route.resource),
            "kind": route.resource.plural,
            "uid": object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        },
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Deletes the objects that `owner_uid` owns, and theirs in turn, or only
/// drops the owner reference when `orphan` is set.
fn collect_dependents(state: &mut State, owner_uid: &str, orphan: bool) {
    let owned_by = |object: &Value| {
        object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|owners| owners.iter().any(|owner| owner["uid"] == owner_uid))
    };
    let dependents: Vec<super::ObjectKey> =
        state.objects.iter().filter(|(_, object)| owned_by(object)).map(|(key, _)| key.clone()).collect();

    for key in dependents {
        if orphan {
            if let Some(Value::Array(owners)) =
                state.objects.get_mut(&key).and_then(|object| object.pointer_mut("/metadata/ownerReferences"))
            {
                owners.retain(|owner| owner["uid"] != owner_uid);
            }
            continue;
        }
        if let Some(object) = state.objects.remove(&key) {
            let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned();
            collect_dependents(state, &uid, false);
        }
    }
}

async fn logs(shared: Shared, route: &Route, query: &BTreeMap<String, String>) -> Response {
    let namespace = route.namespace.clone().unwrap_or_default();
    let pod_name = route.name.clone().unwrap_or_default();

    let (container, text) = {
        let state = shared.lock().unwrap();
        let Some(pod) = state.objects.get(&route_key(&Route {
            resource: route.resource,
            namespace: route.namespace.clone(),
            name: route.name.clone(),
            subresource: None,
        })) else {
            return not_found(route.resource, &pod_name);
        };

        let names: Vec<String> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|containers| containers.iter().filter_map(|c| c["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let container = match query.get("container") {
            Some(name) if names.contains(name) => name.clone(),
            Some(name) => return bad_request(&format!("container {name} is not valid for pod {pod_name}")),
            None if names.len() == 1 => names[0].clone(),
            None => {
                return bad_request(&format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    names.join(" ")
                ));
            }
        };

        let recorded = state.logs.get(&(namespace.clone(), pod_name.clone(), container.clone()));
        if query.get("previous").is_some_and(|value| value == "true") {
            match recorded.and_then(|logs| logs.previous.clone()) {
                Some(previous) => return plain_text(previous),
                None => {
                    return bad_request(&format!(
                        "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
                    ));
                }
            }
        }

        match recorded {
            Some(logs) => (container, logs.current.clone()),
            None => {
                let waiting = pod
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .and_then(|statuses| statuses.iter().find(|status| status["name"] == container.as_str()))
                    .and_then(|status| status.pointer("/state/waiting/reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("ContainerCreating");
                return bad_request(&format!(
                    "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {waiting}"
                ));
            }
        }
    };

    if query.get("follow").is_none_or(|value| value != "true") {
        return plain_text(text);
    }

    // Following streams what the container has printed, then waits for
    // more until the pod has ended.
    let key = (namespace.clone(), pod_name.clone(), container);
    let pod_key = ("pods".to_owned(), namespace, pod_name);
    let stream = futures_util::stream::unfold((0usize, false), move |(sent, done)| {
        let shared = shared.clone();
        let key = key.clone();
        let pod_key = pod_key.clone();
        async move {
            if done {
                return None;
            }
            loop {
                let (chunk, ended) = {
                    let state = shared.lock().unwrap();
                    let text = state.logs.get(&key).map(|logs| logs.current.clone()).unwrap_or_default();
                    let phase = state
                        .objects
                        .get(&pod_key)
                        .and_then(|pod| pod.pointer("/status/phase"))
                        .and_then(Value::as_str)
                        .unwrap_or("Unknown")
                        .to_owned();
                    let ended = !matches!(phase.as_str(), "Running" | "Pending");
                    (text.get(sent..).unwrap_or("").to_owned(), ended)
                };
                if !chunk.is_empty() || ended {
                    let next = sent + chunk.len();
                    return Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (next, ended)));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .expect("log response")
}

fn plain_text(text: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
}
