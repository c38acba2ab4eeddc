//! A fake registry on loopback that records every request and replies as
//! a test function decides, to check what pushes and pulls send: token
//! requests, retries, restarted transfers, parallel transfers.
//!
//! Each connection is served on its own thread, so requests overlap as they
//! do against a real registry. The test function still receives the
//! requests one at a time and in the order they arrived, because it runs
//! under the lock that records them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the fake registry received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    /// Every header, with its name in lowercase.
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` body, decoded as UTF-8 with invalid bytes
    /// replaced.
    pub body: String,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Recorded {
    /// Returns the value of the header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header, _)| header == name).map(|(_, value)| value.as_str())
    }
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
    /// Waits, then sends the reply, as a slow transfer would. Other
    /// connections are served meanwhile.
    Delayed(Duration, Box<Reply>),
}

pub(crate) fn respond(status: &'static str) -> Reply {
    Reply::Respond { status, headers: Vec::new(), body: String::new() }
}

pub(crate) fn respond_with(status: &'static str, headers: &[(&str, String)]) -> Reply {
    let headers = headers.iter().map(|(name, value)| (name.to_string(), value.clone())).collect();
    Reply::Respond { status, headers, body: String::new() }
}

/// The requests received so far and, for each, when its reply started.
#[derive(Default)]
struct Log {
    requests: Vec<Recorded>,
    replied: Vec<Option<Instant>>,
}

type Handler = dyn Fn(&Recorded, &[Recorded], &str) -> Reply + Send + Sync;

pub(crate) struct FakeRegistry {
    pub address: String,
    log: Arc<Mutex<Log>>,
}

impl FakeRegistry {
    /// Starts a registry that replies to each request with what `handle`
    /// returns for it and the requests before it.
    pub fn start(handle: impl Fn(&Recorded, &[Recorded], &str) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Log::default()));
        let handle: Arc<Handler> = Arc::new(handle);

        let shared_log = Arc::clone(&log);
        let own_address = address.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&shared_log);
                let handle = Arc::clone(&handle);
                let address = own_address.clone();
                std::thread::spawn(move || serve_connection(stream, &log, handle.as_ref(), &address));
            }
        });

        FakeRegistry { address, log }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().requests.clone()
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        let requests = self.requests();
        requests.iter().filter(|request| request.method == method && request.target.starts_with(path_prefix)).count()
    }

    /// Returns the maximum number of `method` requests to targets starting
    /// with `path_prefix` that were open at the same moment. A request is
    /// open from its arrival until its reply starts, which is never later
    /// than the client receives the response, so the count never exceeds
    /// the client's real concurrency.
    pub fn max_in_flight(&self, method: &str, path_prefix: &str) -> usize {
        let log = self.log.lock().unwrap();
        let mut events: Vec<(Instant, i32)> = Vec::new();
        for (request, replied) in log.requests.iter().zip(&log.replied) {
            if request.method != method || !request.target.starts_with(path_prefix) {
                continue;
            }
            events.push((request.at, 1));
            if let Some(replied) = replied {
                events.push((*replied, -1));
            }
        }

        // At equal instants the end sorts first, so touching intervals do
        // not count as overlapping.
        events.sort();
        let mut open = 0;
        let mut max = 0;
        for (_, change) in events {
            open += change;
            max = max.max(open);
        }
        usize::try_from(max).unwrap_or(0)
    }
}

/// Reads one request, calls `handle` for the reply while holding the log,
/// and writes the reply after any delay with the log released.
fn serve_connection(stream: TcpStream, log: &Mutex<Log>, handle: &Handler, address: &str) {
    let Some(request) = read_request(&stream) else { return };

    let (index, reply) = {
        let mut log = log.lock().unwrap();
        let reply = handle(&request, &log.requests, address);
        log.requests.push(request);
        log.replied.push(None);
        (log.requests.len() - 1, reply)
    };

    let mut reply = reply;
    while let Reply::Delayed(delay, inner) = reply {
        std::thread::sleep(delay);
        reply = *inner;
    }
    log.lock().unwrap().replied[index] = Some(Instant::now());
    write_reply(stream, reply);
}

/// Reads the request line, the headers and a `Content-Length` body.
fn read_request(stream: &TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();

    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }

    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;

    let authorization = headers.iter().find(|(name, _)| name == "authorization").map(|(_, value)| value.clone());
    let body = String::from_utf8_lossy(&body).into_owned();
    Some(Recorded { method, target, authorization, headers, body, at: Instant::now() })
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
        Reply::Delayed(..) => unreachable!("the caller waits out every delay"),
    };

    let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    let _ = stream.write_all(response.as_bytes());
}
