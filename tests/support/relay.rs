//! A stand-in HTTP proxy on 127.0.0.1 that relays every connection to one
//! loopback address and records the bytes that clients send.
//!
//! With `HTTP_PROXY` and `HTTPS_PROXY` set to the relay, a test can give a
//! registry a non-loopback host name without any DNS lookup or traffic off
//! loopback. The client sends each request to the relay with the host name
//! in the request line, and the registry behind the relay serves it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A relay listening on a free port until the test process ends.
pub struct Relay {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    /// Starts a relay that forwards every connection to `target`
    /// (`127.0.0.1:PORT`).
    pub fn start(target: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_owned();

        let recorded = Arc::clone(&sent);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let target = target.clone();
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || relay_connection(client, &target, &recorded));
            }
        });
        Relay { port, sent }
    }

    /// Returns the proxy URL, such as `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Returns everything clients have sent so far, as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

fn relay_connection(mut client: TcpStream, target: &str, recorded: &Mutex<Vec<u8>>) {
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone()) else {
        return;
    };

    // Responses flow back on their own thread, so neither side blocks the
    // other.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Both);
    });

    let mut buffer = [0; 16 * 1024];
    loop {
        let read = match client_reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        recorded.lock().unwrap().extend_from_slice(&buffer[..read]);
        if server_writer.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = server_writer.shutdown(std::net::Shutdown::Both);
}
