//! Runs `kuul publish` with `KUUL_LOG=trace`, the most verbose log level,
//! and credentials from a Docker config. The fake registry and token
//! service fail with 401, 403, 400 and 500, and their error bodies echo
//! each request's `Authorization` header and body. Neither the log nor the
//! error may contain a secret.
//!
//! The fake is in this file because the real docker-registry can neither
//! echo requests nor fail on demand.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::json;
use support::copy_example;

const USERNAME: &str = "ops";
const PASSWORD: &str = "password-secret/+=";
const IDENTITY_TOKEN: &str = "identity-token-secret/+=";
const BEARER_TOKEN: &str = "bearer-token-secret";

/// One request as the fake received it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    target: String,
    authorization: Option<String>,
    body: String,
}

/// A status line, extra headers and a body.
type Response = (&'static str, Vec<(String, String)>, String);

type Handler = dyn Fn(&Request, &[Request], &str) -> Response + Send + Sync;

/// Starts a fake on 127.0.0.1 that serves each connection on its own
/// thread and replies with what `handle` returns for the request, the
/// requests before it and the fake's address. Returns the address.
fn start_fake(handle: impl Fn(&Request, &[Request], &str) -> Response + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake registry");
    let address = listener.local_addr().unwrap().to_string();
    let handle: Arc<Handler> = Arc::new(handle);
    let log: Arc<Mutex<Vec<Request>>> = Arc::default();

    let own_address = address.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = Arc::clone(&handle);
            let log = Arc::clone(&log);
            let address = own_address.clone();
            std::thread::spawn(move || serve(stream, handle.as_ref(), &log, &address));
        }
    });
    address
}

fn serve(mut stream: TcpStream, handle: &Handler, log: &Mutex<Vec<Request>>, address: &str) {
    let Some(request) = read_request(&stream) else { return };
    let (status, headers, body) = {
        let mut log = log.lock().unwrap();
        let response = handle(&request, &log, address);
        log.push(request);
        response
    };

    let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let _ = stream.write_all(response.as_bytes());
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();

    let mut authorization = None;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value.trim().to_string()),
            "content-length" => length = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }

    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, target, authorization, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Returns an error response with an OCI error body whose message contains
/// the request's `Authorization` header and body.
fn echo(status: &'static str, request: &Request, headers: Vec<(String, String)>) -> Response {
    let message = format!(
        "rejected request with authorization `{}` and body `{}`",
        request.authorization.as_deref().unwrap_or(""),
        request.body
    );
    (status, headers, json!({ "errors": [{ "code": "DENIED", "message": message }] }).to_string())
}

fn basic_challenge() -> Vec<(String, String)> {
    vec![("WWW-Authenticate".to_string(), r#"Basic realm="fake-registry""#.to_string())]
}

fn bearer_challenge(address: &str) -> Vec<(String, String)> {
    let value = format!(r#"Bearer realm="http://{address}/token",service="fake-registry""#);
    vec![("WWW-Authenticate".to_string(), value)]
}

fn basic_credential() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{PASSWORD}"))
}

fn is_upload_start(request: &Request) -> bool {
    request.method == "POST" && request.target.contains("/blobs/uploads/")
}

/// Replies to an authorized request that every scenario handles the same
/// way: the API check succeeds and every blob is missing.
fn registry_reply(request: &Request) -> Response {
    match request.method.as_str() {
        "GET" if request.target == "/v2/" => ("200 OK", Vec::new(), String::new()),
        "HEAD" => ("404 Not Found", Vec::new(), String::new()),
        _ => echo("400 Bad Request", request, Vec::new()),
    }
}

/// Writes `dir/config.json` with an `auths` entry for `registry`.
fn write_docker_config(dir: &Path, registry: &str, entry: serde_json::Value) {
    let config = json!({ "auths": { registry: entry } });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
}

/// Runs `kuul publish` of the hello example against `registry` at the
/// trace log level and returns its stdout and stderr together.
fn publish_traced(registry: &str, entry: serde_json::Value) -> String {
    let work = tempfile::tempdir().expect("temporary directory");
    let job_dir = copy_example("hello", work.path());
    write_docker_config(work.path(), registry, entry);

    let output = support::kuul()
        .arg("publish")
        .arg(&job_dir)
        .args(["--registry", &format!("{registry}/kuul")])
        .env("DOCKER_CONFIG", work.path())
        .env("KUUL_LOG", "trace")
        .output()
        .expect("start kuul publish");

    assert_eq!(output.status.code(), Some(1), "kuul publish must fail against this fake");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{stdout}{stderr}")
}

/// Asserts that `output` contains none of the secrets, either as they are
/// or form-urlencoded, and that trace logging was on.
fn assert_no_secret(output: &str) {
    let encode = |secret: &str| {
        let mut url = reqwest::Url::parse("http://127.0.0.1/").unwrap();
        url.query_pairs_mut().append_pair("v", secret);
        url.query().unwrap().trim_start_matches("v=").to_string()
    };
    let secrets = [
        ("password", PASSWORD.to_string()),
        ("form-urlencoded password", encode(PASSWORD)),
        ("base64 basic credential", basic_credential()),
        ("identity token", IDENTITY_TOKEN.to_string()),
        ("form-urlencoded identity token", encode(IDENTITY_TOKEN)),
        ("bearer token", BEARER_TOKEN.to_string()),
    ];

    for (name, secret) in secrets {
        assert!(!output.contains(&secret), "the {name} leaked:\n{output}");
    }
    assert!(output.contains("TRACE"), "no trace-level log lines, so the check proves nothing:\n{output}");
}

#[test]
fn basic_auth_failures_hide_secrets() {
    // The hello image has 4 blobs, uploaded in parallel. Each first upload
    // start gets a 500 that kuul logs and retries, and the fifth, which
    // can only be a retry, a 400 whose echoed message goes into the error.
    // A counter, not the request history: parallel requests are recorded
    // before their turn comes.
    let upload_starts = std::sync::atomic::AtomicUsize::new(0);
    let registry = start_fake(move |request, _earlier, _address| {
        let expected = format!("Basic {}", basic_credential());
        if request.authorization.as_deref() != Some(expected.as_str()) {
            return echo("401 Unauthorized", request, basic_challenge());
        }
        if is_upload_start(request) && upload_starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 4 {
            return echo("500 Internal Server Error", request, Vec::new());
        }
        registry_reply(request)
    });

    let output = publish_traced(&registry, json!({ "username": USERNAME, "password": PASSWORD }));

    assert_no_secret(&output);
    assert!(output.contains("retrying"), "{output}");
    assert!(output.contains("<redacted>"), "{output}");
}

#[test]
fn bearer_auth_failures_hide_secrets() {
    // The token service takes the basic credential. The first blob check
    // gets a 401 that makes kuul fetch a new token, and the upload start a
    // 403.
    let registry = start_fake(|request, earlier, address| {
        if request.target.starts_with("/token") {
            return ("200 OK", Vec::new(), json!({ "token": BEARER_TOKEN }).to_string());
        }
        let first_head = request.method == "HEAD" && !earlier.iter().any(|r| r.method == "HEAD");
        let expected = format!("Bearer {BEARER_TOKEN}");
        if first_head || request.authorization.as_deref() != Some(expected.as_str()) {
            return echo("401 Unauthorized", request, bearer_challenge(address));
        }
        if is_upload_start(request) {
            return echo("403 Forbidden", request, Vec::new());
        }
        registry_reply(request)
    });

    let output = publish_traced(&registry, json!({ "auth": basic_credential() }));

    assert_no_secret(&output);
    assert!(output.contains("authenticating again"), "{output}");
}

#[test]
fn identity_token_failures_hide_secrets() {
    // The token service exchanges the identity token. The upload start gets
    // a 500, then a 400 whose echoed message contains the bearer token.
    let registry = start_fake(|request, earlier, address| {
        if request.target.starts_with("/token") {
            let body = json!({ "access_token": BEARER_TOKEN, "expires_in": 300, "scope": "" });
            return ("200 OK", Vec::new(), body.to_string());
        }
        let expected = format!("Bearer {BEARER_TOKEN}");
        if request.authorization.as_deref() != Some(expected.as_str()) {
            return echo("401 Unauthorized", request, bearer_challenge(address));
        }
        if is_upload_start(request) {
            let status =
                if earlier.iter().any(is_upload_start) { "400 Bad Request" } else { "500 Internal Server Error" };
            return echo(status, request, Vec::new());
        }
        registry_reply(request)
    });

    let output = publish_traced(&registry, json!({ "identitytoken": IDENTITY_TOKEN }));

    assert_no_secret(&output);
    assert!(output.contains("Bearer <redacted>"), "{output}");
}

#[test]
fn token_service_failure_hides_secrets() {
    // The token service rejects the refresh request with a 400 that echoes
    // the form body, which contains the identity token.
    let registry = start_fake(|request, _earlier, address| {
        if request.target.starts_with("/token") {
            return echo("400 Bad Request", request, Vec::new());
        }
        echo("401 Unauthorized", request, bearer_challenge(address))
    });

    let output = publish_traced(&registry, json!({ "identitytoken": IDENTITY_TOKEN }));

    assert_no_secret(&output);
    assert!(output.contains("refresh_token=<redacted>"), "{output}");
}
