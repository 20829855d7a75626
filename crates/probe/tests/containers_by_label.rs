//! Live tests (root, eBPF): containers labelled `homelab.red=true` are watched with no
//! watch rule. No container engine runs on the test machines, so each "container" is a
//! Python server moved into a cgroup named as the runtime names it (`docker-<id>.scope`,
//! `libpod-<id>.scope`), with the runtime state the probe reads: for Docker a data-root
//! holding `containers/<id>/config.v2.json`, written in the shape Docker 24/25 writes it
//! (written from that shape, not captured from a daemon); for Podman a stand-in API socket
//! (tests/fixtures/engine_api.py) answering `GET /containers/json` in the Engine API's shape.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

fn container_id(port: u16, salt: u64) -> String {
    format!("{:064x}", u64::from(port) * 0x9E37_79B9 + salt)
}

/// `containers/<id>/config.v2.json` in the shape Docker Engine 24/25 writes it (the
/// fields of moby's container.Container; values of a compose service).
fn write_docker_config(root: &Path, id: &str, name: &str, labels: &serde_json::Value) {
    let dir = root.join("containers").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "StreamConfig": {},
        "State": {
            "Running": true, "Paused": false, "Restarting": false, "OOMKilled": false,
            "RemovalInProgress": false, "Dead": false, "Pid": 4242, "ExitCode": 0,
            "Error": "", "StartedAt": "2024-03-08T12:00:01.123456789Z",
            "FinishedAt": "0001-01-01T00:00:00Z", "Health": null
        },
        "ID": id,
        "Created": "2024-03-08T12:00:00.987654321Z",
        "Managed": false,
        "Path": "python3",
        "Args": ["backend.py"],
        "Config": {
            "Hostname": &id[..12], "Domainname": "", "User": "",
            "AttachStdin": false, "AttachStdout": true, "AttachStderr": true,
            "ExposedPorts": {"8080/tcp": {}},
            "Tty": false, "OpenStdin": false, "StdinOnce": false,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["python3", "backend.py"],
            "Image": "python:3.11-slim",
            "Volumes": null, "WorkingDir": "/app", "Entrypoint": null, "OnBuild": null,
            "Labels": labels
        },
        "Image": "sha256:3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
        "ImageManifest": null,
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "Networks": {}},
        "LogPath": format!("/var/lib/docker/containers/{id}/{id}-json.log"),
        "Name": format!("/{name}"),
        "Driver": "overlay2",
        "OS": "linux",
        "RestartCount": 0,
        "HasBeenStartedBefore": true,
        "HasBeenManuallyStopped": false,
        "MountPoints": {},
        "SecretReferences": null,
        "ConfigReferences": null,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "docker-default",
        "SeccompProfile": "",
        "NoNewPrivileges": false,
        "HostnamePath": format!("/var/lib/docker/containers/{id}/hostname"),
        "HostsPath": format!("/var/lib/docker/containers/{id}/hosts"),
        "ShmPath": "",
        "ResolvConfPath": format!("/var/lib/docker/containers/{id}/resolv.conf"),
        "LocalLogCacheMeta": {"HaveNotifyEnabled": false}
    });
    std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
}

const MATCHED: &str = "homelab_probe_watch_matched_cgroups";

fn wait_for(probe: &Probe, what: &str, done: impl Fn(&Samples) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(&probe.scrape()) {
        assert!(
            Instant::now() < deadline,
            "{what} not seen: {}",
            probe.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn docker_containers_labelled_red_are_watched_without_a_watch_rule() {
    if !live_or_skip(
        "containers by label (Docker) live test",
        &["curl", "python3"],
    ) {
        return;
    }
    let docker = tempfile::tempdir().unwrap();
    // photos: labelled, its one port listed, a route template and a service name.
    let photos = Backend::start();
    let photos_id = container_id(photos.port, 1);
    write_docker_config(
        docker.path(),
        &photos_id,
        "photos-web-1",
        &serde_json::json!({
            "com.docker.compose.project": "photos",
            "com.docker.compose.service": "web",
            "homelab.red": "true",
            "homelab.red.ports": photos.port.to_string(),
            "homelab.red.routes": "/status/{code}",
            "homelab.service": "photos",
        }),
    );
    // plain: no homelab.red label (yet).
    let plain = Backend::start();
    let plain_id = container_id(plain.port, 2);
    let plain_name = format!("plain-{}", plain.port);
    let plain_labels = serde_json::json!({"com.docker.compose.project": "plain"});
    write_docker_config(docker.path(), &plain_id, &plain_name, &plain_labels);
    // elsewhere: labelled, but only for a port it does not serve on.
    let elsewhere = Backend::start();
    let elsewhere_id = container_id(elsewhere.port, 3);
    write_docker_config(
        docker.path(),
        &elsewhere_id,
        "elsewhere",
        &serde_json::json!({"homelab.red": "true", "homelab.red.ports": "1"}),
    );
    let cgroups: Vec<_> = [
        (&photos_id, &photos),
        (&plain_id, &plain),
        (&elsewhere_id, &elsewhere),
    ]
    .iter()
    .map(|(id, b)| {
        InCgroup::enter(
            &format!("hlprobe-test.slice/docker-{id}.scope"),
            b.proc.0.id(),
        )
    })
    .collect();
    if cgroups.iter().any(Option::is_none) {
        return;
    }

    let probe = Probe::start(&[
        s("--no-tls"),
        s("--discover-containers"),
        s("--docker-root"),
        docker.path().display().to_string(),
    ]);
    let log = probe.log();
    assert!(
        log.contains("container photos-web-1 (labelled homelab.red) watched as photos"),
        "{log}"
    );
    assert!(!log.contains(&plain_name), "{log}");
    assert_eq!(
        curl(&[], &urls(photos.port, &["/ok", "/ok", "/status/500"])),
        [200, 200, 500]
    );
    assert_eq!(curl(&[], &urls(plain.port, &["/ok", "/ok"])), [200, 200]);
    assert_eq!(curl(&[], &urls(elsewhere.port, &["/ok"])), [200]);
    let svc = ("service_name", "photos");
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 3);
    let dump = m.dump("http_");
    let ok = [
        svc,
        ("http_route", "/ok"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(m.count(SERVER, &ok), 2, "{dump}");
    let err = [
        svc,
        ("http_route", "/status/{code}"),
        ("http_response_status_code", "500"),
    ];
    assert_eq!(m.count(SERVER, &err), 1, "{dump}");
    assert_eq!(
        m.count(SERVER, &[]),
        3,
        "the unlabelled container and the other port are not counted: {dump}"
    );
    assert_eq!(
        m.sum(MATCHED, &[("kind", "container"), ("name", "photos-web-1")]),
        1.0
    );
    assert_eq!(
        m.sum(MATCHED, &[("kind", "container"), ("name", "elsewhere")]),
        1.0
    );

    // Labelled while the probe runs: watched at the next look (every 5 s).
    let labelled =
        serde_json::json!({"com.docker.compose.project": "plain", "homelab.red": "true"});
    write_docker_config(docker.path(), &plain_id, &plain_name, &labelled);
    wait_for(&probe, "the newly labelled container", |m| {
        m.sum(MATCHED, &[("kind", "container"), ("name", &plain_name)]) == 1.0
    });
    assert_eq!(curl(&[], &urls(plain.port, &["/ok", "/ok"])), [200, 200]);
    let plain_svc = ("service_name", plain_name.as_str());
    let m = probe.settle(|m| m.count(SERVER, &[plain_svc]) >= 2);
    let dump = m.dump("http_");
    assert_eq!(m.count(SERVER, &[plain_svc]), 2, "{dump}");
    assert_eq!(m.count(SERVER, &[]), 5, "{dump}");

    // The label taken away again: no longer watched at the next look.
    write_docker_config(docker.path(), &plain_id, &plain_name, &plain_labels);
    wait_for(&probe, "the unlabelled container", |m| {
        m.sum(MATCHED, &[("kind", "container"), ("name", &plain_name)]) == 0.0
    });
    assert!(
        probe
            .log()
            .contains(&format!("container {plain_name} is no longer watched")),
        "{}",
        probe.log()
    );
    assert_eq!(curl(&[], &urls(plain.port, &["/ok"])), [200]);
    let m = probe.settle(|_| true);
    assert_eq!(m.count(SERVER, &[]), 5, "{}", m.dump("http_"));
}

#[test]
fn podman_containers_labelled_red_are_found_through_the_api_socket() {
    if !live_or_skip(
        "containers by label (Podman) live test",
        &["curl", "python3"],
    ) {
        return;
    }
    let backend = Backend::start();
    let id = container_id(backend.port, 4);
    let other_id = container_id(backend.port, 5);
    let dir = tempfile::tempdir().unwrap();
    // The Engine API's container list (shape as in crates/configgen/tests/fixtures/
    // engine-api/podman-4-containers.json): one labelled, one not.
    let list = serde_json::json!([
        {
            "Id": id, "Names": ["/vaultwarden"], "Image": "docker.io/vaultwarden/server:1.30.5",
            "Command": "/start.sh", "Created": 1709900000, "State": "running",
            "Status": "Up 2 hours", "Ports": [{"IP": "", "PrivatePort": 80, "PublicPort": 8222, "Type": "tcp"}],
            "Labels": {"homelab.red": "true", "homelab.red.routes": "/status/{code}",
                       "io.podman.compose.project": "vault"},
            "NetworkSettings": {"Networks": {"vault_default": {"IPAddress": "10.89.0.2"}}},
            "HostConfig": {"NetworkMode": "bridge"}, "Mounts": []
        },
        {
            "Id": other_id, "Names": ["/redis"], "Image": "docker.io/library/redis:7",
            "Command": "redis-server", "Created": 1709900000, "State": "running",
            "Status": "Up 2 hours", "Ports": [], "Labels": {"io.podman.compose.project": "vault"},
            "NetworkSettings": {"Networks": {}}, "HostConfig": {"NetworkMode": "bridge"}, "Mounts": []
        }
    ]);
    let list_file = dir.path().join("containers.json");
    std::fs::write(&list_file, list.to_string()).unwrap();
    let socket = dir.path().join("podman.sock");
    let requests = dir.path().join("requests.log");
    let engine = Proc(
        Command::new("python3")
            .arg(fixture("engine_api.py"))
            .args([&socket, &list_file, &requests])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the stand-in engine"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "engine socket not created");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A rootless user's container: libpod-<id>.scope under the user's slice.
    let relative = format!("hlprobe-test.slice/user-1001.slice/libpod-{id}.scope");
    let Some(_cgroup) = InCgroup::enter(&relative, backend.proc.0.id()) else {
        return;
    };
    let no_docker = tempfile::tempdir().unwrap();
    let probe = Probe::start(&[
        s("--no-tls"),
        s("--discover-containers"),
        s("--container-socket"),
        socket.display().to_string(),
        s("--docker-root"),
        no_docker.path().display().to_string(),
    ]);
    assert_eq!(
        curl(&[], &urls(backend.port, &["/ok", "/status/404"])),
        [200, 404]
    );
    let svc = ("service_name", "vaultwarden");
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 2);
    let dump = m.dump("http_");
    assert_eq!(m.count(SERVER, &[svc, ("http_route", "/ok")]), 1, "{dump}");
    assert_eq!(
        m.count(SERVER, &[svc, ("http_route", "/status/{code}")]),
        1,
        "{dump}"
    );
    assert_eq!(m.count(SERVER, &[]), 2, "{dump}");
    let sent = std::fs::read_to_string(&requests).unwrap();
    assert!(
        sent.lines()
            .all(|r| r
                == "/containers/json?filters=%7B%22label%22%3A%5B%22homelab.red%3Dtrue%22%5D%7D"),
        "{sent}"
    );
    drop(engine);
    // The socket gone (Podman's service restarting): said, and the container it listed
    // last stays watched.
    std::fs::remove_file(&socket).unwrap();
    wait_for(&probe, "the socket warning", |_| {
        probe.log().contains("cannot list its labelled containers")
    });
    assert_eq!(curl(&[], &urls(backend.port, &["/ok"])), [200]);
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 3);
    assert_eq!(m.count(SERVER, &[svc]), 3, "{}", m.dump("http_"));
}
