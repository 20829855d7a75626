//! A stand-in for the Docker Engine and Podman API on a unix socket: no
//! container engine can run on the test machines. It answers the calls
//! docker_sd and `configgen discover` make (`/_ping`, `/networks`,
//! `/containers/json`, with or without a `/v1.xx` version prefix; HTTP/1.1
//! keep-alive and HTTP/1.0) with responses of tests/fixtures/engine-api/,
//! written from the documented API shapes of Docker Engine 24 (API 1.43) and
//! Podman 4.x's compat API (1.41).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct FakeEngine {
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeEngine {
    /// Serves `<fixture>-containers.json` and `<fixture>-networks.json` on `socket`.
    pub fn start(socket: &Path, fixture: &str, api_version: &'static str) -> FakeEngine {
        let dir = super::crate_dir().join("tests/fixtures/engine-api");
        let read = |kind: &str| {
            let p = dir.join(format!("{fixture}-{kind}.json"));
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let containers = read("containers");
        let networks = read("networks");
        let listener = UnixListener::bind(socket).expect("binding the engine socket");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (containers, networks, log) =
                    (containers.clone(), networks.clone(), log.clone());
                std::thread::spawn(move || serve(conn, &containers, &networks, api_version, &log));
            }
        });
        FakeEngine { requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// HTTP/1.1 with keep-alive, GET only, as the Docker client speaks it.
fn serve(
    conn: UnixStream,
    containers: &str,
    networks: &str,
    api_version: &str,
    log: &Mutex<Vec<String>>,
) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
        log.lock().unwrap().push(target.clone());
        let path = target.split('?').next().unwrap_or("");
        let path = match path.strip_prefix("/v") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
                &rest[rest.find('/').unwrap_or(rest.len())..]
            }
            _ => path,
        };
        let (status, body) = match path {
            "/_ping" => ("200 OK", "OK".to_string()),
            "/containers/json" => ("200 OK", containers.to_string()),
            "/networks" => ("200 OK", networks.to_string()),
            _ => (
                "404 Not Found",
                format!(r#"{{"message":"page not found: {path}"}}"#),
            ),
        };
        let kind = if path == "/_ping" {
            "text/plain"
        } else {
            "application/json"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nApi-Version: {api_version}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(response.as_bytes()).is_err() || request_line.ends_with("HTTP/1.0\r\n") {
            return;
        }
    }
}
