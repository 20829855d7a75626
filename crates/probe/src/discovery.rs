//! Containers that ask to be watched with labels (`homelab.red=true`, the convention of
//! docs/containers.md), found without a config line: Docker's from its on-disk state
//! (`containers/<id>/config.v2.json`), Podman's from its API sockets, since Podman keeps
//! labels only in its database (BoltDB or SQLite). A Docker daemon's socket is never
//! queried: its labels are on disk.

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::Sender,
        Arc,
    },
    time::Duration,
};

use crate::services::Runtimes;

/// The container labels the probe reads.
pub mod label {
    /// `true`: watch every TCP connection of the container.
    pub const RED: &str = "homelab.red";
    /// Comma-separated container ports: only connections accepted on them.
    pub const RED_PORTS: &str = "homelab.red.ports";
    /// Comma-separated route templates for `http_route`, e.g. `/api/items/{id}`.
    pub const RED_ROUTES: &str = "homelab.red.routes";
    /// The `service_name` label (default: the container name).
    pub const SERVICE: &str = "homelab.service";
    /// `false`: not watched whatever the other labels say.
    pub const ENABLE: &str = "homelab.enable";
}

/// A container and its labels, as its runtime keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Full id (64 hex digits): its cgroup is named after it.
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What a labelled container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedWatch {
    pub service: String,
    /// Empty: every connection of the container.
    pub ports: Vec<u16>,
    pub routes: Vec<String>,
}

/// A container to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub id: String,
    pub name: String,
    pub watch: RedWatch,
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The watch a container's labels ask for: None without `homelab.red=true` (or with
/// `homelab.enable=false`), an error naming the label when a value is unusable.
pub fn red_watch(c: &Container) -> Option<Result<RedWatch, String>> {
    let is = |key: &str, want: &str| {
        c.labels
            .get(key)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
    };
    if !is(label::RED, "true") || is(label::ENABLE, "false") {
        return None;
    }
    let parse = || -> Result<RedWatch, String> {
        let mut ports = vec![];
        for p in list(c.labels.get(label::RED_PORTS).map_or("", String::as_str)) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => return Err(format!("{}: {p:?} is not a port", label::RED_PORTS)),
            }
        }
        let mut routes = vec![];
        for r in list(c.labels.get(label::RED_ROUTES).map_or("", String::as_str)) {
            if !r.starts_with('/') {
                return Err(format!("{}: {r:?} must start with '/'", label::RED_ROUTES));
            }
            routes.push(r.to_string());
        }
        let service = match c.labels.get(label::SERVICE).map(|s| s.trim()) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => c.name.clone(),
        };
        Ok(RedWatch {
            service,
            ports,
            routes,
        })
    };
    Some(parse())
}

/// Docker's containers with their labels, from `<data-root>/containers/<id>/config.v2.json`
/// (`Name`, `Config.Labels`).
pub fn docker_containers(docker_root: &Path) -> Vec<Container> {
    let Ok(dir) = fs::read_dir(docker_root.join("containers")) else {
        return vec![];
    };
    let mut out = vec![];
    for e in dir.flatten() {
        let Ok(text) = fs::read_to_string(e.path().join("config.v2.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let id = e.file_name().to_string_lossy().to_string();
        let name = v["Name"].as_str().unwrap_or(&id).trim_start_matches('/');
        out.push(Container {
            name: name.to_string(),
            labels: string_map(&v["Config"]["Labels"]),
            id,
        });
    }
    out
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The list answered by `GET /containers/json` of the Engine API (Docker's and Podman's
/// compatible endpoint): `Id`, `Names` (each with a leading `/`), `Labels`.
pub fn parse_container_list(body: &[u8]) -> Result<Vec<Container>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not the JSON of a list: {e}"))?;
    let list = v.as_array().ok_or("not a list of containers")?;
    Ok(list
        .iter()
        .filter_map(|c| {
            let id = c["Id"].as_str()?.to_string();
            let name = c["Names"][0]
                .as_str()
                .unwrap_or(&id)
                .trim_start_matches('/')
                .to_string();
            Some(Container {
                name,
                labels: string_map(&c["Labels"]),
                id,
            })
        })
        .collect())
}

const TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BODY: u64 = 16 << 20;

/// The running containers labelled `homelab.red=true` of the API socket at `path`: one
/// read-only request (`GET /containers/json` filtered on the label), HTTP/1.0 so that the
/// answer is the body up to the end of the stream.
pub fn socket_containers(path: &Path) -> Result<Vec<Container>, String> {
    let mut stream = UnixStream::connect(path).map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    stream.set_write_timeout(Some(TIMEOUT)).ok();
    // filters={"label":["homelab.red=true"]}, URL-encoded.
    let request =
        "GET /containers/json?filters=%7B%22label%22%3A%5B%22homelab.red%3Dtrue%22%5D%7D \
                   HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = vec![];
    stream
        .take(MAX_BODY)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer: {e}"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let first = head.lines().next().unwrap_or("");
        return Err(format!("answered {first:?}"));
    }
    if head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    }) {
        return Err("answered in chunks to an HTTP/1.0 request".into());
    }
    parse_container_list(&answer[split + 4..])
}

/// A socket file that is (or links to) a Docker daemon's `docker.sock`: its containers'
/// labels are read on disk instead. Podman's `docker.sock` compatibility link resolves to
/// `podman.sock` and is queried.
fn is_docker_daemon(socket: &Path) -> bool {
    let real = fs::canonicalize(socket).unwrap_or_else(|_| socket.to_path_buf());
    real.file_name().is_some_and(|n| n == "docker.sock")
}

/// Where labelled containers are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub runtimes: Runtimes,
    /// Engine API sockets (Podman's; a Docker daemon's is skipped).
    pub sockets: Vec<PathBuf>,
}

/// The watches the labels of `containers` ask for, one per container id; a container whose
/// labels are unusable is reported through `warn`.
pub fn watches(
    containers: Vec<Container>,
    warn: &mut dyn FnMut(String, String),
) -> Vec<Discovered> {
    let mut out: Vec<Discovered> = vec![];
    for c in containers {
        if out.iter().any(|d| d.id == c.id) {
            continue;
        }
        match red_watch(&c) {
            None => {}
            Some(Ok(watch)) => out.push(Discovered {
                id: c.id,
                name: c.name,
                watch,
            }),
            Some(Err(e)) => warn(format!("container {}", c.name), format!("not watched: {e}")),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// How often the labelled containers are looked for, as the cgroups of watched units and
/// containers are.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Looks for labelled containers, saying each problem once (again when it changes). A
/// socket that stops answering keeps the containers it listed last: a restarting Podman
/// service does not end their watches.
pub struct Finder {
    sources: Sources,
    said: HashMap<String, String>,
    listed: HashMap<PathBuf, Vec<Container>>,
}

impl Finder {
    pub fn new(sources: Sources) -> Self {
        Finder {
            sources,
            said: HashMap::new(),
            listed: HashMap::new(),
        }
    }

    pub fn find(&mut self) -> Vec<Discovered> {
        let mut now = HashMap::new();
        let mut containers = docker_containers(&self.sources.runtimes.docker_root);
        for socket in &self.sources.sockets {
            if is_docker_daemon(socket) {
                continue;
            }
            match socket_containers(socket) {
                Ok(found) => {
                    self.listed.insert(socket.clone(), found);
                }
                Err(e) => {
                    now.insert(
                        format!("socket {}", socket.display()),
                        format!("cannot list its labelled containers: {e}"),
                    );
                }
            }
            containers.extend(self.listed.get(socket).into_iter().flatten().cloned());
        }
        let found = watches(containers, &mut |subject, problem| {
            now.insert(subject, problem);
        });
        for (subject, problem) in &now {
            if self.said.get(subject) != Some(problem) {
                eprintln!("homelab-probe: warning: {subject}: {problem}");
            }
        }
        self.said = now;
        found
    }

    /// Looks again every [`INTERVAL`] until `stop`, sending each list to the collector.
    pub fn spawn(
        mut self,
        stop: Arc<AtomicBool>,
        to: Sender<Vec<Discovered>>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("discovery".into())
            .spawn(move || {
                let tick = Duration::from_millis(100);
                let mut waited = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    if waited >= INTERVAL {
                        waited = Duration::ZERO;
                        if to.send(self.find()).is_err() {
                            return;
                        }
                    }
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(labels: &[(&str, &str)]) -> Container {
        Container {
            id: "a".repeat(64),
            name: "immich_server".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn labels_ask_for_a_watch() {
        assert_eq!(red_watch(&container(&[])), None);
        assert_eq!(red_watch(&container(&[(label::RED, "false")])), None);
        let off = container(&[(label::RED, "true"), (label::ENABLE, "false")]);
        assert_eq!(red_watch(&off), None);
        assert_eq!(
            red_watch(&container(&[(label::RED, "True")])),
            Some(Ok(RedWatch {
                service: "immich_server".into(),
                ports: vec![],
                routes: vec![],
            }))
        );
        let full = container(&[
            (label::RED, "true"),
            (label::RED_PORTS, "8080, 8443"),
            (label::RED_ROUTES, "/api/assets/{id},/api/albums/{id}"),
            (label::SERVICE, "immich"),
        ]);
        assert_eq!(
            red_watch(&full),
            Some(Ok(RedWatch {
                service: "immich".into(),
                ports: vec![8080, 8443],
                routes: vec!["/api/assets/{id}".into(), "/api/albums/{id}".into()],
            }))
        );
    }

    #[test]
    fn unusable_labels_are_named() {
        let bad_port = container(&[(label::RED, "true"), (label::RED_PORTS, "80,http")]);
        assert_eq!(
            red_watch(&bad_port),
            Some(Err("homelab.red.ports: \"http\" is not a port".into()))
        );
        let bad_route = container(&[(label::RED, "true"), (label::RED_ROUTES, "api/{id}")]);
        assert_eq!(
            red_watch(&bad_route),
            Some(Err(
                "homelab.red.routes: \"api/{id}\" must start with '/'".into()
            ))
        );
    }

    /// The shape Podman 4.3's compatible endpoint answers (recorded shape: the fields the
    /// probe reads, as `curl --unix-socket /run/podman/podman.sock
    /// 'http://d/containers/json'` prints them, other fields trimmed).
    const PODMAN_LIST: &str = r#"[{"Id":"5b1f0c3e2d4a69788f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a2918","Names":["/vaultwarden"],"Image":"docker.io/vaultwarden/server:1.30.5","ImageID":"b1a2","Command":"/start.sh","Created":1709900000,"Ports":[{"PrivatePort":80,"PublicPort":8222,"Type":"tcp"}],"Labels":{"homelab.red":"true","homelab.red.routes":"/api/ciphers/{id}","io.podman.compose.project":"vault"},"State":"running","Status":"Up 2 hours","NetworkSettings":{"Networks":{"vault_default":{"IPAddress":"10.89.0.2"}}},"Mounts":[]}]"#;

    #[test]
    fn reads_the_engine_api_container_list() {
        let list = parse_container_list(PODMAN_LIST.as_bytes()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "vaultwarden");
        assert_eq!(list[0].labels[label::RED_ROUTES], "/api/ciphers/{id}");
        assert!(parse_container_list(b"{\"message\":\"x\"}").is_err());
    }

    #[test]
    fn reads_docker_labels_on_disk() {
        let root = tempfile::tempdir().unwrap();
        let id = "c".repeat(64);
        let dir = root.path().join("containers").join(&id);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.v2.json"),
            r#"{"ID":"x","Name":"/web","Config":{"Labels":{"homelab.red":"true","n":1}}}"#,
        )
        .unwrap();
        fs::create_dir_all(root.path().join("containers").join("d".repeat(64))).unwrap();
        let found = docker_containers(root.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "web");
        assert_eq!(found[0].id, id);
        assert_eq!(found[0].labels.len(), 1, "non-string values are skipped");
    }
}
