//! homelab-probe: RED metrics (rate, errors, duration) of local HTTP/1.x and HTTP/2 services
//! from eBPF syscall tracepoints, and libssl and Go crypto/tls uprobes; no kprobes, no code
//! change in the services.

mod access_log;
mod collector;
mod config;
mod discovery;
mod export;
mod gobin;
mod gotls;
mod http;
mod live;
mod loader;
mod metrics;
mod procfs;
mod seed;
mod services;
mod spans;
mod table;
mod tgid_bits;

use std::{
    collections::HashMap,
    path::PathBuf,
    process::ExitCode,
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{Context, Result};
use clap::Parser as _;
use homelab_ebpf as abi;
use httpflow::Side;

use crate::{
    access_log::AccessLog,
    collector::{CgroupSelector, Collector, Labelled},
    config::{Overrides, Settings},
    table::{Ends, Table, WatchInfo},
};

const AFTER_HELP: &str = "\
WHAT IT MEASURES
  For each watched connection the probe reads the bytes of every read/write syscall (head
  and tail of each, plus the full length), of SSL_read/SSL_write in libssl (shared, or
  linked into Node.js and other named executables) and of Go's crypto/tls (*Conn).Read/Write
  (Go 1.17+ executables, stripped or not), rebuilds the HTTP/1.x and HTTP/2 exchanges and
  exports on GET /metrics:
    http_server_request_duration_seconds  histogram: service_name, http_request_method,
                                          http_response_status_code, http_route
    http_client_request_duration_seconds  histogram: service_name, http_request_method,
                                          http_response_status_code, server_address, server_port
    http_server_unanswered_requests_total counter: service_name, http_request_method,
                                          http_route
    http_client_unanswered_requests_total counter: service_name, http_request_method,
                                          server_address, server_port
    http_server_active_requests           gauge: service_name
    homelab_probe_*                       events, ring-buffer drops, parse errors, connections,
                                          spans exported and dropped
  Duration runs from the first request byte to the last response byte. A request that got no
  status line before its connection ended is counted as unanswered, not in the histograms.
  GET /requests lists the requests in flight (JSON); `homelab-probe requests` prints them.

TRACES (off unless --otlp-endpoint or [traces] is given)
  One SERVER span per answered request of a watched server, one CLIENT span per answered
  outgoing request of a watched client, POSTed as OTLP/HTTP protobuf to ENDPOINT/v1/traces,
  with the OpenTelemetry HTTP attributes (method, route, status, url.path without the query,
  server/client addresses, user agent; no other header value). An incoming W3C traceparent
  header continues its trace. Spans dropped (queue full, export failed) are counted.

ACCESS LOG (off unless --access-log or access_log = true)
  One JSON line per answered request on stdout, e.g.
    {\"service\":\"api\",\"side\":\"server\",\"method\":\"GET\",\"route\":\"/items/{id}\",\"path\":\"/items/7\",
     \"status\":200,\"duration_ms\":12.345,\"peer\":\"127.0.0.1:51234\",\"trace_id\":\"4bf9...\"}
  (no query string; peer: the client of a served request, the server of an outgoing call;
  trace_id when a span was exported). At most --access-log-max-per-second lines a second;
  the rest are counted in homelab_probe_access_log_suppressed_total.

CONFIG FILE (TOML)
  metrics_listen = \"127.0.0.1:9464\"
  [[watch]]
  service = \"jellyfin\"        # service_name label (default: unit, container or process name)
  ports = [8096]              # local listening ports (server side)
  routes = [\"/Items/{id}\"]    # http_route templates (default: low-cardinality heuristic)
  # instead of ports: unit = \"jellyfin.service\", container = \"immich_server\",
  # or client_ports = [5432] (outgoing connections of any process to that port)
  Optional: max_connections, max_routes_per_service, ring_buffer_kib, tls, libssl = [paths],
  go_binaries = [paths], ssl_binaries = [paths] (executables with OpenSSL linked in
  statically), docker_root, podman_storage, access_log, access_log_max_per_second.
  discover_containers = true  # also watch the containers labelled homelab.red=true
  container_sockets = [\"/run/user/1001/podman/podman.sock\"]   # Podman's, for their labels

CONTAINERS BY LABEL (--discover-containers; looked up every 5 s)
  homelab.red=true             watch every TCP connection of the container
  homelab.red.ports=8080,8443  only connections accepted on these container ports
  homelab.red.routes=/a/{id},/b  http_route templates
  homelab.service=NAME         service_name (default: the container name)
  homelab.enable=false         never watched
  Docker's labels are read from DATA-ROOT/containers/*/config.v2.json; Podman keeps them
  only in its database, so they are asked of its API sockets (GET /containers/json, read
  only). A socket that is Docker's own docker.sock is never queried.
  [traces]
  enabled = true              # default when the section is present
  endpoint = \"http://127.0.0.1:4318\"   # OTLP/HTTP receiver (/v1/traces is appended)
  sample_ratio = 1.0          # share of traces kept, decided on the trace id
  max_queue = 4096            # spans waiting; more are dropped (reason queue_full)
  max_batch = 512             # spans per request
  batch_timeout_ms = 1000     # a batch leaves at the latest this long after its first span

PRIVILEGES (measured on Linux 6.18; see docs/probe.md)
  root, or: CAP_BPF + CAP_PERFMON (load, attach tracepoints), CAP_DAC_READ_SEARCH (tracefs
  event ids), CAP_SYS_PTRACE (/proc/PID/fd of other users: connections open before start),
  CAP_SYS_ADMIN only for the libssl and Go crypto/tls uprobes (TLS). Linux 5.15+ with BTF.

EXAMPLES
  homelab-probe --watch-port 8080 --metrics-listen 127.0.0.1:9464
  homelab-probe --config /etc/homelab/probe/probe.toml
  homelab-probe --watch-port 8080 --otlp-endpoint http://127.0.0.1:4318
  homelab-probe requests --watch 1";

/// How often new libssl libraries and Go executables (services started later) are looked for.
const TLS_RESCAN: std::time::Duration = std::time::Duration::from_secs(30);

/// eBPF RED probe for local HTTP/1.x and HTTP/2 services (syscall tracepoints, TLS uprobes).
#[derive(clap::Parser, Debug)]
#[command(
    name = "homelab-probe",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file (format below); flags add watches and override settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Watch connections accepted on this local port (server side). Repeatable.
    #[arg(long = "watch-port", value_name = "PORT")]
    watch_ports: Vec<u16>,
    /// Watch outgoing connections of any process to this remote port (client side). Repeatable.
    #[arg(long = "watch-client-port", value_name = "PORT")]
    watch_client_ports: Vec<u16>,
    /// Watch every TCP connection of a systemd unit's cgroup, e.g. nginx.service (`nginx`
    /// means nginx.service). Repeatable.
    #[arg(long = "watch-unit", value_name = "UNIT")]
    watch_units: Vec<String>,
    /// Watch every TCP connection of a Docker/Podman container (by name). Repeatable.
    #[arg(long = "watch-container", value_name = "NAME")]
    watch_containers: Vec<String>,
    /// Route template for the watches given by flags, e.g. /users/{id}. Repeatable.
    #[arg(long = "route", value_name = "TEMPLATE")]
    routes: Vec<String>,
    /// Address (or host name) and port of the Prometheus endpoint [default: 127.0.0.1:9464].
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<String>,
    /// Connections followed at once; the least recently active are evicted [default: 16384].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Distinct guessed http_route values per service; more become "/{overflow}" [default: 100].
    #[arg(long, value_name = "N")]
    max_routes_per_service: Option<usize>,
    /// Size of the kernel ring buffer in KiB (rounded up to a power of two) [default: 4096].
    #[arg(long, value_name = "KIB")]
    ring_buffer_kib: Option<u32>,
    /// Do not attach the libssl and Go crypto/tls uprobes (TLS traffic is then not measured).
    #[arg(long)]
    no_tls: bool,
    /// libssl shared object to attach to (default: found in running processes and the
    /// usual library directories). Repeatable.
    #[arg(long, value_name = "PATH")]
    libssl: Vec<String>,
    /// Go executable to attach the crypto/tls uprobes to, besides the Go programs found
    /// running (checked every 30 s). Repeatable.
    #[arg(long = "go-binary", value_name = "PATH")]
    go_binaries: Vec<String>,
    /// Executable with OpenSSL linked in statically to attach to, besides the Node.js
    /// executables found in running processes and /usr/bin, /usr/local/bin. Repeatable.
    #[arg(long, value_name = "PATH")]
    ssl_binary: Vec<String>,
    /// Docker's data-root, where container names are read [default: /var/lib/docker].
    #[arg(long, value_name = "DIR")]
    docker_root: Option<PathBuf>,
    /// Podman's storage root [default: /var/lib/containers/storage].
    #[arg(long, value_name = "DIR")]
    podman_storage: Option<PathBuf>,
    /// Also watch the containers labelled homelab.red=true (see CONTAINERS BY LABEL).
    #[arg(long)]
    discover_containers: bool,
    /// Podman API socket whose containers' labels are read, e.g.
    /// /run/user/1001/podman/podman.sock. Repeatable.
    #[arg(long = "container-socket", value_name = "PATH")]
    container_sockets: Vec<PathBuf>,
    /// Export spans over OTLP/HTTP (protobuf) to this receiver, e.g. http://127.0.0.1:4318
    /// (`/v1/traces` is appended to a URL without a path). Overrides [traces] endpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Print one JSON line per answered request on stdout: service, side, method, route,
    /// path without query, status, duration_ms, peer, trace_id (when a span was exported).
    #[arg(long)]
    access_log: bool,
    /// Access log lines per second at most; more are counted in
    /// homelab_probe_access_log_suppressed_total [default: 100].
    #[arg(long, value_name = "N")]
    access_log_max_per_second: Option<u32>,
    /// Send every read and write of watched connections to userspace as bytes, instead of
    /// one record per request and response for the HTTP/1.x exchanges the kernel can frame
    /// (comparison and debugging; see docs/probe.md, "Kernel framing").
    #[arg(long)]
    no_kernel_framing: bool,
    /// Print every kernel event on stderr (debugging).
    #[arg(long)]
    log_events: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the requests in flight now (request seen, response not complete) of a running
    /// probe, oldest first.
    Requests {
        /// The probe's metrics endpoint.
        #[arg(long, default_value = "http://127.0.0.1:9464", value_name = "URL")]
        url: String,
        /// Refresh every SECONDS, like top (Ctrl-C ends).
        #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
        watch: Option<f64>,
    },
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.1 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds (0.1 or more)")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Requests { url, watch }) = &args.command {
        return live::command(url, *watch);
    }
    let overrides = Overrides {
        metrics_listen: args.metrics_listen.clone(),
        watch_ports: args.watch_ports.clone(),
        watch_client_ports: args.watch_client_ports.clone(),
        watch_units: args.watch_units.clone(),
        watch_containers: args.watch_containers.clone(),
        routes: args.routes.clone(),
        max_connections: args.max_connections,
        max_routes_per_service: args.max_routes_per_service,
        ring_buffer_kib: args.ring_buffer_kib,
        no_tls: args.no_tls,
        libssl: args.libssl.clone(),
        go_binaries: args.go_binaries.clone(),
        ssl_binaries: args.ssl_binary.clone(),
        docker_root: args.docker_root.clone(),
        podman_storage: args.podman_storage.clone(),
        discover_containers: args.discover_containers,
        container_sockets: args.container_sockets.clone(),
        otlp_endpoint: args.otlp_endpoint.clone(),
        access_log: args.access_log,
        access_log_max_per_second: args.access_log_max_per_second,
        no_kernel_framing: args.no_kernel_framing,
    };
    let settings = match config::load(args.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("homelab-probe: {e}");
            return ExitCode::from(2);
        }
    };
    match run(settings, args.log_events) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homelab-probe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Nothing to watch: no eBPF at all, only the self metrics (all zero) until stopped.
fn serve_only(
    rt: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    settings: &Settings,
) -> Result<()> {
    eprintln!(
        "homelab-probe: warning: the config lists nothing to watch; no eBPF attached; \
         metrics on http://{}/metrics",
        settings.metrics_listen
    );
    let metrics = Arc::new(metrics::Metrics::new());
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = http::serve(listener, metrics, None) => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        anyhow::Ok(())
    })
}

/// For the start message: the libssl libraries and Go executables attached.
fn tls_sources(tls: Option<&loader::Tls>, go: Option<&gotls::GoTls>) -> String {
    let libs = tls.into_iter().flat_map(|t| t.attached.iter().cloned());
    let gos = go
        .into_iter()
        .flat_map(|g| g.attached.iter().map(|b| format!("Go {b}")));
    let all: Vec<String> = libs.chain(gos).collect();
    if all.is_empty() {
        "nothing".to_string()
    } else {
        all.join(", ")
    }
}

fn run(settings: Settings, log_events: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(settings.metrics_listen))
        .with_context(|| format!("cannot listen on {}", settings.metrics_listen))?;
    if settings.watches.is_empty() && settings.discovery.is_none() {
        return serve_only(rt, listener, &settings);
    }

    let mut server_ports = HashMap::new();
    let mut client_ports = HashMap::new();
    let mut cgroup_watches = vec![];
    for (i, w) in settings.watches.iter().enumerate() {
        let id = i as u32;
        for &p in &w.ports {
            server_ports.insert(p, id);
        }
        for &p in &w.client_ports {
            client_ports.insert(p, id);
        }
        if let Some(u) = &w.unit {
            cgroup_watches.push((id, CgroupSelector::Unit(u.clone())));
        }
        if let Some(c) = &w.container {
            cgroup_watches.push((id, CgroupSelector::Container(c.clone())));
        }
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let watches = settings
        .watches
        .iter()
        .map(|w| WatchInfo {
            service: w.service.clone(),
            routes: w.routes.clone(),
            traces: w.traces.unwrap_or(true),
            ports: vec![],
        })
        .collect();
    let mut table = Table::new(
        watches,
        settings.max_connections,
        settings.max_routes_per_service,
        metrics.clone(),
        {
            let runtimes = settings.runtimes.clone();
            Box::new(move |pid, comm| services::service_name(pid, comm, &runtimes))
        },
    );
    let mut exporter = None;
    if let Some(traces) = &settings.traces {
        let (sink, task) = export::channel(traces, metrics.clone())?;
        table = table.with_spans(sink);
        exporter = Some(task);
    }
    if let Some(max_per_second) = settings.access_log {
        let (log, writer) = AccessLog::new(max_per_second, &metrics, std::io::stdout());
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(writer)
            .context("starting the access log writer")?;
        table = table.with_access_log(log);
    }
    let as_list = |m: &HashMap<u16, u32>| {
        m.iter()
            .map(|(p, w)| (*p, table.kernel_watch(*w)))
            .collect::<Vec<_>>()
    };
    let probe = loader::load(&loader::LoadOptions {
        server_ports: &as_list(&server_ports),
        client_ports: &as_list(&client_ports),
        cgroups: !cgroup_watches.is_empty() || settings.discovery.is_some(),
        ring_buffer_kib: settings.ring_buffer_kib,
        tls: settings.tls,
        libssl: &settings.libssl,
        go_binaries: &settings.go_binaries,
        ssl_binaries: &settings.ssl_binaries,
        kernel_framing: settings.kernel_framing,
    })?;
    let loader::Probe {
        mut ebpf,
        maps,
        mut tls,
        mut go_tls,
    } = probe;
    let (live_tx, live_rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let mut finder_thread = None;
    let labelled = match settings.discovery.clone() {
        Some(sources) => {
            let mut finder = discovery::Finder::new(sources);
            let first = finder.find();
            let (tx, rx) = std::sync::mpsc::channel();
            finder_thread = Some(finder.spawn(stop.clone(), tx)?);
            Some(Labelled::new(first, rx))
        }
        None => None,
    };
    let mut collector = Collector {
        live: live_rx,
        maps,
        table,
        metrics: metrics.clone(),
        cgroup_watches,
        cgroups_matched: vec![],
        cgroup_root: procfs::cgroup2_mount().map(PathBuf::from),
        runtimes: settings.runtimes.clone(),
        log_events,
        labelled,
    };
    let cgroups = collector.sync_cgroups();
    let seeded = seed::existing_connections(&seed::Selectors {
        server_ports: &server_ports,
        client_ports: &client_ports,
        cgroups: &cgroups,
        cgroup_root: collector.cgroup_root.as_deref(),
    });
    let now = collector::monotonic_ns();
    let mut seeded_tgids = vec![];
    for s in &seeded {
        if !collector.table.accepts(s.watch, s.side, s.local_port) {
            continue;
        }
        let key = table::conn_key(s.tgid, s.fd);
        let side = if s.side == Side::Client {
            abi::SIDE_CLIENT
        } else {
            abi::SIDE_SERVER
        };
        // Followed from the middle: framed in userspace (frame 0), which resyncs.
        let value = loader::ConnValue(abi::Conn {
            watch_id: s.watch,
            side,
            ..Default::default()
        });
        // BPF_NOEXIST: an accept seen since attaching is more accurate than the seed.
        if collector.maps.conns.insert(key, value, 1).is_ok() {
            let _ = collector.maps.tgids.insert(s.tgid, 1, 0);
            seeded_tgids.push(s.tgid);
            let ends = Ends {
                peer: s.peer.clone(),
                local_port: s.local_port,
            };
            collector
                .table
                .open(s.tgid, s.fd, s.watch, s.side, ends, now, true, None);
        }
    }
    tgid_bits::mark(&collector.maps.tgid_bits, seeded_tgids)?;

    if let Some(t) = &settings.traces {
        eprintln!(
            "homelab-probe: spans to {} (sample ratio {})",
            t.url, t.sample_ratio
        );
    }
    eprintln!(
        "homelab-probe: {} watch rule(s){}, {} connection(s) already open, TLS via {}; metrics on http://{}/metrics",
        settings.watches.len(),
        if settings.discovery.is_some() {
            " and labelled containers"
        } else {
            ""
        },
        seeded.len(),
        tls_sources(tls.as_ref(), go_tls.as_ref()),
        settings.metrics_listen
    );

    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || collector.run(stop))?
    };
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let server = tokio::spawn(http::serve(listener, metrics.clone(), Some(live_tx)));
        let exporter = exporter.map(|e| tokio::spawn(e.run()));
        let mut rescan = tokio::time::interval(TLS_RESCAN);
        rescan.tick().await; // the first tick is immediate: attached already
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = rescan.tick() => {
                    if let Some(tls) = tls.as_mut() {
                        for lib in tls.attach_new(&mut ebpf) {
                            eprintln!("homelab-probe: TLS via {lib} (new)");
                        }
                    }
                    if let Some(go) = go_tls.as_mut() {
                        for bin in go.attach_new(&mut ebpf) {
                            eprintln!("homelab-probe: TLS via Go {bin} (new)");
                        }
                    }
                }
            }
        }
        server.abort();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        if let Some(finder) = finder_thread {
            let _ = tokio::task::spawn_blocking(move || finder.join()).await;
        }
        // The table (the queue's sender) is gone: the exporter sends what is left.
        if let Some(exporter) = exporter {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), exporter).await;
        }
        anyhow::Ok(())
    })?;
    drop(ebpf); // detaches every program
    eprintln!("homelab-probe: detached, exiting");
    Ok(())
}
