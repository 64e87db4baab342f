//! An HTTP receiver on loopback (a std TcpListener thread) that records the requests it
//! gets and answers with given statuses: where alert webhooks are sent in tests.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// An HTTP server on loopback answering with `statuses` in turn (the last one repeats).
/// A request it could not read is recorded as a failure, which [`Receiver::got`] reports: a
/// request lost that way must not pass for "nothing was sent".
pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub fn start(statuses: &[u16]) -> Receiver {
        Receiver::start_on(0, statuses)
    }

    /// On a given port (0: any).
    pub fn start_on(port: u16, statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let statuses = statuses.to_vec();
        let (record, failed) = (got.clone(), failures.clone());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let status = statuses[n.min(statuses.len() - 1)];
                let served = stream
                    .map_err(|e| format!("accept: {e}"))
                    .and_then(|stream| serve(stream, status, &record));
                if let Err(e) = served {
                    failed.lock().expect("lock").push(e);
                }
            }
        });
        Receiver {
            port,
            got,
            failures,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests received so far; fails if any could not be read.
    pub fn got(&self) -> Vec<Received> {
        let failures = self.failures.lock().expect("lock").clone();
        assert!(failures.is_empty(), "the receiver failed: {failures:?}");
        self.got.lock().expect("lock").clone()
    }
}

/// Reads one request, records it, then answers: a sender that got its answer has been
/// recorded, so once `sensei` exits, everything it sent is here. A connection closed before
/// its request line carries no request and is not a failure.
fn serve(stream: TcpStream, status: u16, record: &Mutex<Vec<Received>>) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("set a read timeout: {e}"))?;
    let mut reader = BufReader::new(
        stream
            .try_clone()
            .map_err(|e| format!("clone the stream: {e}"))?,
    );
    let mut line = String::new();
    let read = reader
        .read_line(&mut line)
        .map_err(|e| format!("read the request line: {e}"))?;
    if read == 0 {
        return Ok(());
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("no path in {line:?}"))?
        .to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader
            .read_line(&mut h)
            .map_err(|e| format!("read a header of {path}: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("not a header: {h:?}"))?;
        headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
    }
    let len: usize = headers
        .get("content-length")
        .ok_or_else(|| format!("no Content-Length: {headers:?}"))?
        .parse()
        .map_err(|e| format!("Content-Length: {e}"))?;
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("read the body of {path}: {e}"))?;
    record.lock().expect("lock").push(Received {
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let extra = if status == 503 {
        "Retry-After: 0\r\n"
    } else {
        ""
    };
    let reply =
        format!("HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nno");
    let mut stream = stream;
    stream
        .write_all(reply.as_bytes())
        .map_err(|e| format!("answer {path}: {e}"))
}
