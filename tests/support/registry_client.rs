//! A minimal plain-HTTP registry client for tests that need documents no
//! tool writes, such as an index with an attestation entry. It speaks the
//! distribution API's monolithic blob upload and manifest PUT.

use std::io::{Read, Write};
use std::net::TcpStream;

use sha2::{Digest, Sha256};

/// Sends one HTTP/1.1 request and returns the status code and the
/// response head.
fn request(host: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(host).unwrap_or_else(|error| panic!("connect to {host}: {error}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();

    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, response)
}

/// Uploads `content` as a blob of `repository` and returns its digest.
pub fn push_blob(host: &str, repository: &str, content: &[u8]) -> String {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(content)));
    let (status, response) =
        request(host, "POST", &format!("/v2/{repository}/blobs/uploads/"), "application/octet-stream", b"");
    assert_eq!(status, 202, "starting the upload failed:\n{response}");

    let location = response
        .lines()
        .find_map(|line| line.strip_prefix("Location: ").or_else(|| line.strip_prefix("location: ")))
        .expect("upload response has a Location")
        .trim()
        .to_owned();
    let path = location.split_once(host).map_or(location.as_str(), |(_, path)| path).to_owned();
    let separator = if path.contains('?') { '&' } else { '?' };

    let (status, response) =
        request(host, "PUT", &format!("{path}{separator}digest={digest}"), "application/octet-stream", content);
    assert_eq!(status, 201, "finishing the upload failed:\n{response}");
    digest
}

/// Puts `content` as the manifest `reference` (a tag or digest) of
/// `repository` and returns its digest.
pub fn push_manifest(host: &str, repository: &str, reference: &str, media_type: &str, content: &[u8]) -> String {
    let (status, response) =
        request(host, "PUT", &format!("/v2/{repository}/manifests/{reference}"), media_type, content);
    assert_eq!(status, 201, "putting the manifest failed:\n{response}");
    format!("sha256:{}", hex::encode(Sha256::digest(content)))
}

/// Fetches a manifest with the given `Accept` type and returns its body.
pub fn get_manifest(host: &str, repository: &str, reference: &str, accept: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(host).unwrap();
    let head = format!(
        "GET /v2/{repository}/manifests/{reference} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();

    let split = response.windows(4).position(|window| window == b"\r\n\r\n").expect("response has a head");
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "GET manifest failed:\n{head}");
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked responses are not handled");
    response[split + 4..].to_vec()
}
