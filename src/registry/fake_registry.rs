//! A fake registry on loopback that records every request and replies as
//! a test function decides, to check what pushes and pulls send: token
//! requests, retries, restarted transfers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request as the fake registry received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// The fake registry's reply to a request.
pub(crate) enum Reply {
    Respond {
        status: &'static str,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Closes the connection without a response, as a registry that
    /// crashes or a proxy that times out would.
    Drop,
    /// Sends a 200 response that announces `content_length` bytes, then
    /// closes the connection after `body`, as a connection lost midway
    /// through a download would.
    Truncated {
        content_length: usize,
        body: String,
    },
}

pub(crate) fn respond(status: &'static str) -> Reply {
    Reply::Respond { status, headers: Vec::new(), body: String::new() }
}

pub(crate) fn respond_with(status: &'static str, headers: &[(&str, String)]) -> Reply {
    let headers = headers.iter().map(|(name, value)| (name.to_string(), value.clone())).collect();
    Reply::Respond { status, headers, body: String::new() }
}

pub(crate) struct FakeRegistry {
    pub address: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeRegistry {
    /// Starts a registry that replies to each request with what `handle`
    /// returns for it and the requests before it.
    pub fn start(handle: impl Fn(&Recorded, &[Recorded], &str) -> Reply + Send + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let own_address = address.clone();

        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(&stream) else { continue };
                let earlier = recorded.lock().unwrap().clone();
                let reply = handle(&request, &earlier, &own_address);
                recorded.lock().unwrap().push(request);
                write_reply(stream, reply);
            }
        });

        FakeRegistry { address, requests }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        let requests = self.requests();
        requests.iter().filter(|request| request.method == method && request.target.starts_with(path_prefix)).count()
    }
}

/// Reads the request line, the headers and a `Content-Length` body.
fn read_request(stream: &TcpStream) -> Option<Recorded> {
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
    Some(Recorded { method, target, authorization, at: Instant::now() })
}

fn write_reply(mut stream: TcpStream, reply: Reply) {
    let (status, headers, body) = match reply {
        Reply::Respond { status, headers, body } => (status, headers, body),
        Reply::Drop => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        Reply::Truncated { content_length, body } => {
            let response =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n{body}");
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    };

    let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let _ = stream.write_all(response.as_bytes());
}
