//! Helpers of the live tests: real nginx, a Python backend, curl, and the probe binary.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const PROBE: &str = env!("CARGO_BIN_EXE_homelab-probe");

/// True when the live test can run. Otherwise: in CI (CI=true) the test fails, elsewhere it
/// is skipped loudly.
pub fn live_or_skip(test: &str, tools: &[&str]) -> bool {
    let mut missing = vec![];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (eBPF)".to_string());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        missing.push("kernel BTF (/sys/kernel/btf/vmlinux)".to_string());
    }
    for tool in tools {
        if which(tool).is_none() {
            missing.push(format!("`{tool}` in PATH"));
        }
    }
    if missing.is_empty() {
        match ebpf_available() {
            Ok(()) => return true,
            Err(e) => missing.push(format!("working eBPF (the probe failed to start: {e})")),
        }
    }
    let msg = format!("{test}: needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg} (CI=true: live tests must run)");
    }
    skipped(&msg);
    false
}

/// Says SKIPPED on the real stderr: the test harness captures `eprintln!` of passing tests.
pub fn skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {what} ***\n");
}

/// Starts the probe once (per test binary) to find out whether eBPF works here at all.
fn ebpf_available() -> Result<(), String> {
    static RESULT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    RESULT
        .get_or_init(|| {
            let metrics = free_port();
            let mut child = Command::new(PROBE)
                .args(["--no-tls", "--watch-port", &free_port().to_string()])
                .arg("--metrics-listen")
                .arg(format!("127.0.0.1:{metrics}"))
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {PROBE}: {e}"))?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    return Err(err.trim().to_string());
                }
                if TcpStream::connect(("127.0.0.1", metrics)).is_ok() {
                    let mut p = Proc(child);
                    p.terminate();
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err("no metrics endpoint after 30 s".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .clone()
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port}");
}

/// A child process killed (SIGTERM, then SIGKILL) on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.0.id() as i32;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // The probe's exit detaches its uprobes one by one (seconds, more under load).
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        self.0.wait().ok();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.terminate();
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// tests/fixtures/backend.py on a free port.
pub struct Backend {
    pub port: u16,
    pub proc: Proc,
}

impl Backend {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .arg(fixture("backend.py"))
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("start python3 backend");
        let proc = Proc(child);
        wait_port(port, "python backend");
        Backend { port, proc }
    }
}

/// nginx from the distribution, with a temporary prefix and config.
pub struct Nginx {
    pub port: u16,
    /// Also listening on [::1]:port (when the host has IPv6 loopback).
    pub ipv6: bool,
    pub tls_port: Option<u16>,
    /// A server that closes a connection after its third request (`keepalive_requests 3`).
    pub three_requests_port: u16,
    pub dir: tempfile::TempDir,
    pub proc: Proc,
}

impl Nginx {
    pub fn start(backend_port: u16, tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = free_port();
        std::fs::write(dir.path().join("big.bin"), vec![b'x'; 100_000]).unwrap();
        let tls_port = tls.then(free_port);
        let three_requests_port = free_port();
        let ipv6 = TcpListener::bind("[::1]:0").is_ok();
        let listen6 = if ipv6 {
            format!("listen [::1]:{port};")
        } else {
            String::new()
        };
        let tls_server = match tls_port {
            Some(tp) => {
                self_signed(dir.path());
                format!(
                    "server {{ listen 127.0.0.1:{tp} ssl; ssl_certificate {d}/cert.pem; \
                     ssl_certificate_key {d}/key.pem; location = /ok {{ return 200 \"ok\\n\"; }} \
                     location / {{ return 404; }} }}"
                )
            }
            None => String::new(),
        };
        let conf = format!(
            r#"daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
  access_log off; sendfile on; keepalive_requests 10000;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port}; {listen6}
    location = /ok {{ return 200 "ok\n"; }}
    location = /empty {{ return 204; }}
    location = /moved {{ return 301 /ok; }}
    location = /boom {{ return 500; }}
    location = /file {{ alias {d}/big.bin; default_type application/octet-stream; }}
    location /slow {{ proxy_pass http://127.0.0.1:{backend_port}; proxy_http_version 1.1;
                      proxy_set_header Connection ""; }}
    location / {{ return 404; }}
  }}
  server {{
    listen 127.0.0.1:{three_requests_port}; keepalive_requests 3;
    location / {{ return 200 "ok\n"; }}
  }}
  {tls_server}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let proc = spawn_nginx(dir.path());
        wait_port(port, "nginx");
        if let Some(tp) = tls_port {
            wait_port(tp, "nginx tls");
        }
        Nginx {
            port,
            ipv6,
            tls_port,
            three_requests_port,
            dir,
            proc,
        }
    }
}

/// A self-signed certificate for localhost: `dir`/cert.pem and `dir`/key.pem.
/// nginx with `dir/nginx.conf`, its prefix and error log in `dir`.
pub fn spawn_nginx(dir: &Path) -> Proc {
    let child = Command::new(which("nginx").expect("nginx"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    Proc(child)
}

pub fn self_signed(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl req failed");
}

/// The probe binary, stopped with SIGTERM on drop.
pub struct Probe {
    pub metrics_port: u16,
    pub proc: Proc,
    pub log: PathBuf,
    /// Its stdout (the access log).
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Probe {
    pub fn start(args: &[String]) -> Self {
        let metrics_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("probe.log");
        let out = dir.path().join("stdout.log");
        let child = Command::new(PROBE)
            .args(args)
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start homelab-probe");
        let mut proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = proc.0.try_wait() {
                panic!(
                    "probe exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("metrics on http")
            {
                break;
            }
            assert!(Instant::now() < deadline, "probe did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Probe {
            metrics_port,
            proc,
            log,
            out,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the probe printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn scrape(&self) -> Samples {
        let text = http_get(self.metrics_port, "/metrics");
        Samples::parse(&text)
    }

    /// Scrapes until `done` holds (10 s at most), then once more after a pause so that late
    /// events would show up as over-counting.
    pub fn settle(&self, done: impl Fn(&Samples) -> bool) -> Samples {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if done(&self.scrape()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.scrape()
    }
}

/// An owned argument, for the probe's command lines.
pub fn s(v: &str) -> String {
    v.to_string()
}

/// `http://127.0.0.1:PORT` followed by each path.
pub fn urls(port: u16, paths: &[&str]) -> Vec<String> {
    paths
        .iter()
        .map(|p| format!("http://127.0.0.1:{port}{p}"))
        .collect()
}

/// GET over a fresh connection; returns the body.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read response");
    buf.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Writes `data` in one write, then reads until the server closes.
pub fn raw_exchange(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(data).unwrap();
    let mut buf = vec![];
    let _ = s.read_to_end(&mut buf);
    buf
}

/// Runs curl with `-s -o /dev/null` for every URL; returns the status codes printed.
pub fn curl(extra: &[&str], urls: &[String]) -> Vec<u16> {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "20"]).args(extra);
    for u in urls {
        cmd.args(["-o", "/dev/null", "-w", "%{http_code}\n", u]);
    }
    let out = cmd.output().expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Prometheus text samples.
#[derive(Debug, Default)]
pub struct Samples(pub Vec<(String, BTreeMap<String, String>, f64)>);

impl Samples {
    pub fn parse(text: &str) -> Self {
        let mut out = vec![];
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let mut map = BTreeMap::new();
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once("=\"").unwrap();
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
            out.push((name.to_string(), map, value.parse().unwrap()));
        }
        Samples(out)
    }

    /// Sum of the samples of `name` whose labels include all of `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    pub fn count(&self, hist: &str, labels: &[(&str, &str)]) -> u64 {
        self.sum(&format!("{hist}_count"), labels) as u64
    }

    /// Asserts that each of these metrics sums to 0 (no parse errors, drops, ...), showing
    /// `dump` when one does not.
    pub fn assert_zero(&self, names: &[&str], dump: &str) {
        for name in names {
            assert_eq!(self.sum(name, &[]), 0.0, "{name}\n{dump}");
        }
    }

    pub fn dump(&self, prefix: &str) -> String {
        self.0
            .iter()
            .filter(|(n, _, _)| n.starts_with(prefix) && !n.ends_with("_bucket"))
            .map(|(n, l, v)| format!("{n}{l:?} {v}\n"))
            .collect()
    }
}

pub const SERVER: &str = "http_server_request_duration_seconds";
pub const CLIENT: &str = "http_client_request_duration_seconds";

/// A server from the distribution started by `start` on a free port of 127.0.0.1, with its
/// config and state in a temporary directory.
pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub proc: Proc,
}

impl Server {
    /// caddy (Go, one goroutine per connection over a few threads) answering "ok".
    pub fn caddy() -> Self {
        Self::start("caddy", |dir, port| {
            let conf = dir.join("Caddyfile");
            std::fs::write(
                &conf,
                format!(
                    "{{\n\tadmin off\n\tauto_https off\n}}\nhttp://127.0.0.1:{port} {{\n\trespond \"ok\" 200\n}}\n"
                ),
            )
            .unwrap();
            let mut cmd = Command::new(which("caddy").expect("caddy"));
            cmd.args(["run", "--adapter", "caddyfile", "--config"])
                .arg(conf)
                // caddy autosaves its config under $XDG_CONFIG_HOME
                .env("XDG_CONFIG_HOME", dir)
                .env("XDG_DATA_HOME", dir);
            cmd
        })
    }

    /// caddy serving HTTPS with its internal CA (`curl -k`): /ok answers 200 "ok", /form 201,
    /// anything else 404. Ready once an HTTPS request gets its answer (the certificate is
    /// issued after the port opens).
    pub fn caddy_tls(port: u16) -> Self {
        let server = Self::start_on("caddy (TLS)", port, |dir, port| {
            let conf = dir.join("Caddyfile");
            std::fs::write(
                &conf,
                format!(
                    "{{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n}}\n\
                     https://127.0.0.1:{port} {{\n\ttls internal\n\
                     \thandle /ok {{\n\t\trespond \"ok\" 200\n\t}}\n\
                     \thandle /form {{\n\t\trespond \"created\" 201\n\t}}\n\
                     \trespond \"nope\" 404\n}}\n"
                ),
            )
            .unwrap();
            let mut cmd = Command::new(which("caddy").expect("caddy"));
            cmd.args(["run", "--adapter", "caddyfile", "--config"])
                .arg(conf)
                .env("XDG_CONFIG_HOME", dir)
                .env("XDG_DATA_HOME", dir)
                .env("HOME", dir);
            cmd
        });
        let url = format!("https://127.0.0.1:{}/ok", server.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while curl(&["-k", "--http1.1"], std::slice::from_ref(&url)) != [200] {
            assert!(Instant::now() < deadline, "caddy did not answer over TLS");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// haproxy with four threads answering "ok" itself.
    pub fn haproxy() -> Self {
        Self::start("haproxy", |dir, port| {
            let conf = dir.join("haproxy.cfg");
            std::fs::write(
                &conf,
                format!(
                    "global\n  nbthread 4\ndefaults\n  mode http\n  timeout client 10s\n  \
                     timeout server 10s\n  timeout connect 1s\nfrontend web\n  \
                     bind 127.0.0.1:{port}\n  \
                     http-request return status 200 content-type text/plain string ok\n"
                ),
            )
            .unwrap();
            let mut cmd = Command::new(which("haproxy").expect("haproxy"));
            cmd.arg("-f").arg(conf);
            cmd
        })
    }

    /// uvicorn (Python asyncio: TLS through memory BIOs) serving tests/fixtures/asgi_app.py
    /// over HTTPS.
    pub fn uvicorn_tls() -> Self {
        Self::start("uvicorn", |dir, port| {
            self_signed(dir);
            let mut cmd = Command::new(which("uvicorn").expect("uvicorn"));
            cmd.arg("--app-dir")
                .arg(fixture(""))
                .args([
                    "asgi_app:app",
                    "--host",
                    "127.0.0.1",
                    "--log-level",
                    "warning",
                ])
                // Idle keep-alive connections outlive a probe's start.
                .args(["--timeout-keep-alive", "60"])
                .args(["--port", &port.to_string(), "--ssl-keyfile"])
                .arg(dir.join("key.pem"))
                .arg("--ssl-certfile")
                .arg(dir.join("cert.pem"));
            cmd
        })
    }

    /// Node.js `https.createServer` (tests/fixtures/https_server.js): Node's own OpenSSL
    /// (statically linked in NodeSource and upstream builds) over its memory BIOs.
    pub fn node_https() -> Self {
        Self::start("node", |dir, port| {
            self_signed(dir);
            let mut cmd = Command::new(which("node").expect("node"));
            cmd.arg(fixture("https_server.js"))
                .arg(dir.join("key.pem"))
                .arg(dir.join("cert.pem"))
                .arg(port.to_string());
            cmd
        })
    }

    /// A Node.js HTTP server script, given its port as its one argument.
    pub fn node_http(script: &Path) -> Self {
        Self::start("node", |_dir, port| {
            let mut cmd = Command::new(which("node").expect("node"));
            cmd.arg(script).arg(port.to_string());
            cmd
        })
    }

    /// Apache httpd (event MPM) with mod_ssl serving /ok, a static file; its workers run as
    /// www-data.
    pub fn apache_ssl() -> Self {
        Self::start("apache2", |dir, port| {
            self_signed(dir);
            let d = dir.display();
            let www = dir.join("www");
            std::fs::create_dir(&www).unwrap();
            std::fs::write(www.join("ok"), "ok\n").unwrap();
            // The workers (www-data) read the document root inside the temporary directory.
            use std::os::unix::fs::PermissionsExt;
            for p in [dir, www.as_path(), www.join("ok").as_path()] {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let modules = "/usr/lib/apache2/modules";
            let conf = dir.join("apache2.conf");
            std::fs::write(
                &conf,
                format!(
                    "ServerRoot {d}\nDefaultRuntimeDir {d}\nPidFile {d}/apache2.pid\n\
                     ErrorLog {d}/error.log\nServerName localhost\nListen 127.0.0.1:{port}\n\
                     LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
                     LoadModule authz_core_module {modules}/mod_authz_core.so\n\
                     LoadModule ssl_module {modules}/mod_ssl.so\n\
                     User www-data\nGroup www-data\nDocumentRoot {d}/www\n\
                     <Directory {d}/www>\n  Require all granted\n</Directory>\n\
                     SSLEngine on\nSSLCertificateFile {d}/cert.pem\n\
                     SSLCertificateKeyFile {d}/key.pem\n"
                ),
            )
            .unwrap();
            let mut cmd = Command::new(which("apache2").expect("apache2"));
            cmd.arg("-f").arg(conf).args(["-DFOREGROUND"]);
            cmd
        })
    }

    fn start(what: &str, command: impl FnOnce(&Path, u16) -> Command) -> Self {
        Self::start_on(what, free_port(), command)
    }

    fn start_on(what: &str, port: u16, command: impl FnOnce(&Path, u16) -> Command) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = command(dir.path(), port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let proc = Proc(child);
        wait_port(port, what);
        Server { port, dir, proc }
    }
}

/// ApacheBench: `n` requests, `c` at a time, each on a new connection unless `keepalive`.
/// Returns the number of complete requests ab reports (failed ones are not counted).
pub fn ab(port: u16, n: u32, c: u32, keepalive: bool) -> u64 {
    ab_url(&format!("http://127.0.0.1:{port}/"), n, c, keepalive)
}

/// [`ab`] on any URL (https too).
pub fn ab_url(url: &str, n: u32, c: u32, keepalive: bool) -> u64 {
    let out = Command::new("ab")
        .args(["-q", "-n", &n.to_string(), "-c", &c.to_string()])
        .args(keepalive.then_some("-k"))
        .arg(url)
        .output()
        .expect("run ab");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ab failed: {text}");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in ab's output: {text}"))
    };
    field("Complete requests:") - field("Failed requests:")
}

/// A process moved into a cgroup v2 directory for the test, moved back on drop.
pub struct InCgroup {
    dir: std::path::PathBuf,
    root: std::path::PathBuf,
    pid: u32,
}

impl InCgroup {
    /// None (after saying SKIPPED) when there is no writable cgroup v2 hierarchy.
    pub fn enter(relative: &str, pid: u32) -> Option<InCgroup> {
        let Some(root) = cgroup2_mount() else {
            skipped("cgroup test: no cgroup v2 hierarchy mounted");
            return None;
        };
        let dir = root.join(relative);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            skipped(&format!(
                "cgroup test: cannot create {} ({e})",
                dir.display()
            ));
            return None;
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).unwrap();
        Some(InCgroup { dir, root, pid })
    }
}

impl Drop for InCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.root.join("cgroup.procs"), self.pid.to_string());
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent); // fails while another test uses it
        }
    }
}

pub fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(std::path::PathBuf::from))?
    })
}
