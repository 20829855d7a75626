//! Structural checks of the Loki, Tempo, Alloy and Grafana outputs.
//!
//! Loki, Tempo, Alloy and Grafana binaries are not available to the test
//! suite, so the YAML files are read into typed structs that mirror the
//! documented configuration blocks configgen writes, rejecting unknown keys
//! (a misspelled or misplaced key fails here instead of at daemon start).
//! Alloy files go through `config_checkers::alloy_syntax`, dashboards through
//! `config_checkers::dashboard_queries` and `config_checkers::logql`.

mod support;

use std::collections::BTreeMap;

use configgen::model::Config;
use configgen::render::Tree;
use serde::Deserialize;
use support::render;

fn example() -> Config {
    support::parse(&std::fs::read_to_string(support::example()).unwrap())
}

fn agent() -> Config {
    let path = support::crate_dir().join("tests/fixtures/agent.toml");
    support::parse(&std::fs::read_to_string(path).unwrap())
}

fn yaml<T: for<'de> Deserialize<'de>>(tree: &Tree, path: &str) -> T {
    let text = tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} not rendered"));
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}\n{text}"))
}

/// Loki 3.x configuration blocks, from "Grafana Loki > Configure > Configuration
/// reference" (https://grafana.com/docs/loki/latest/configure/), one struct per
/// documented block, limited to the keys configgen writes.
mod loki {
    // Fields that no assertion reads still whitelist a documented key.
    #![allow(dead_code)]
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        pub auth_enabled: bool,
        pub analytics: Analytics,
        pub server: Server,
        pub common: Common,
        pub schema_config: SchemaConfig,
        pub storage_config: StorageConfig,
        pub compactor: Compactor,
        pub limits_config: Limits,
        pub query_range: QueryRange,
        pub ruler: Option<Ruler>,
    }

    /// `ruler` block, with `storage` of type `local`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Ruler {
        pub alertmanager_url: String,
        pub enable_api: bool,
        pub ring: Ring,
        pub rule_path: String,
        pub storage: RulerStorage,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RulerStorage {
        #[serde(rename = "type")]
        pub kind: String,
        pub local: RulerLocal,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RulerLocal {
        pub directory: String,
    }

    /// `analytics` block.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Analytics {
        pub reporting_enabled: bool,
    }

    /// `server` block.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub http_listen_address: String,
        pub http_listen_port: u16,
        pub grpc_listen_address: String,
        pub grpc_listen_port: u16,
        pub log_level: String,
    }

    /// `common` block, with `common.storage.filesystem` and the ring's `kvstore`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Common {
        pub instance_addr: String,
        pub path_prefix: String,
        pub replication_factor: u32,
        pub ring: Ring,
        pub storage: CommonStorage,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Ring {
        pub kvstore: KvStore,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct KvStore {
        pub store: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CommonStorage {
        pub filesystem: Filesystem,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Filesystem {
        pub chunks_directory: String,
        pub rules_directory: String,
    }

    /// `schema_config` block and its `period_config` entries.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SchemaConfig {
        pub configs: Vec<Period>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Period {
        pub from: String,
        pub store: String,
        pub object_store: String,
        pub schema: String,
        pub index: PeriodIndex,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PeriodIndex {
        pub prefix: String,
        pub period: String,
    }

    /// `storage_config` block, `tsdb_shipper` section.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct StorageConfig {
        pub tsdb_shipper: TsdbShipper,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TsdbShipper {
        pub active_index_directory: String,
        pub cache_location: String,
    }

    /// `compactor` block.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Compactor {
        pub working_directory: String,
        pub compaction_interval: String,
        pub retention_enabled: bool,
        pub retention_delete_delay: String,
        pub delete_request_store: Option<String>,
    }

    /// `limits_config` block.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Limits {
        pub retention_period: String,
        pub ingestion_rate_mb: f64,
        pub ingestion_burst_size_mb: f64,
        pub per_stream_rate_limit: String,
        pub per_stream_rate_limit_burst: String,
        pub max_global_streams_per_user: u32,
        pub max_line_size: String,
        pub reject_old_samples: bool,
        pub reject_old_samples_max_age: String,
        pub allow_structured_metadata: bool,
        pub volume_enabled: bool,
        pub max_query_series: u32,
    }

    /// `query_range` block, `results_cache.cache.embedded_cache`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct QueryRange {
        pub results_cache: ResultsCache,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResultsCache {
        pub cache: Cache,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Cache {
        pub embedded_cache: EmbeddedCache,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct EmbeddedCache {
        pub enabled: bool,
        pub max_size_mb: u32,
    }
}

/// Tempo 3.x configuration blocks, from "Grafana Tempo > Configure"
/// (https://grafana.com/docs/tempo/latest/configuration/): server, distributor
/// (receivers are OpenTelemetry Collector receiver configs), memberlist,
/// live_store, backend_scheduler, backend_worker, metrics_generator, storage,
/// overrides (the scoped `defaults` format; Tempo 3 refuses the legacy one)
/// and usage_report. Tempo 3 unmarshals strictly and removed the 2.x
/// `ingester`, `compactor` and `metrics_generator.traces_storage` keys
/// ("Migrate from Tempo 2.x to 3.0"), so they are not listed here either.
mod tempo {
    // Fields that no assertion reads still whitelist a documented key.
    #![allow(dead_code)]
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        pub stream_over_http_enabled: bool,
        pub usage_report: UsageReport,
        pub server: Server,
        pub distributor: Distributor,
        pub memberlist: Memberlist,
        pub live_store: LiveStore,
        pub backend_scheduler: BackendScheduler,
        pub backend_worker: BackendWorker,
        pub metrics_generator: MetricsGenerator,
        pub storage: Storage,
        pub overrides: Overrides,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UsageReport {
        pub reporting_enabled: bool,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub http_listen_address: String,
        pub http_listen_port: u16,
        pub grpc_listen_address: String,
        pub grpc_listen_port: u16,
        pub log_level: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Distributor {
        pub receivers: Receivers,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Receivers {
        pub otlp: Otlp,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Otlp {
        pub protocols: Protocols,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Protocols {
        pub grpc: Option<Endpoint>,
        pub http: Option<Endpoint>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Endpoint {
        pub endpoint: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Memberlist {
        pub bind_addr: Vec<String>,
        pub bind_port: u16,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LiveStore {
        pub wal: Path,
        pub shutdown_marker_dir: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BackendScheduler {
        pub local_work_path: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct BackendWorker {
        pub compaction: Compaction,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Compaction {
        pub block_retention: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MetricsGenerator {
        pub registry: Registry,
        pub storage: GeneratorStorage,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Registry {
        pub external_labels: BTreeMap<String, String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GeneratorStorage {
        pub path: String,
        pub remote_write: Vec<RemoteWrite>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteWrite {
        pub url: String,
        pub send_exemplars: bool,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Path {
        pub path: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Storage {
        pub trace: TraceStorage,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TraceStorage {
        pub backend: String,
        pub wal: Path,
        pub local: Path,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Overrides {
        pub defaults: OverrideDefaults,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct OverrideDefaults {
        pub metrics_generator: GeneratorOverrides,
        pub compaction: Compaction,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GeneratorOverrides {
        pub processors: Vec<String>,
    }
}

/// Grafana provisioning files, from "Grafana > Administration > Provisioning"
/// (https://grafana.com/docs/grafana/latest/administration/provisioning/).
mod grafana {
    // Fields that no assertion reads still whitelist a documented key.
    #![allow(dead_code)]
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Datasources {
        pub api_version: u32,
        pub datasources: Vec<Datasource>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Datasource {
        pub name: String,
        #[serde(rename = "type")]
        pub kind: String,
        pub uid: String,
        pub access: String,
        pub url: String,
        pub is_default: bool,
        pub editable: bool,
        pub json_data: serde_json::Value,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Dashboards {
        pub api_version: u32,
        pub providers: Vec<Provider>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Provider {
        pub name: String,
        pub org_id: u32,
        #[serde(rename = "type")]
        pub kind: String,
        pub folder: String,
        pub folder_uid: String,
        pub disable_deletion: bool,
        pub allow_ui_updates: bool,
        pub update_interval_seconds: u32,
        pub options: ProviderOptions,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ProviderOptions {
        pub path: String,
        pub folders_from_files_structure: bool,
    }
}

/// Go's time.ParseDuration units, which both Loki and Tempo accept.
fn is_go_duration(s: &str) -> bool {
    let re = regex::Regex::new(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$").unwrap();
    re.is_match(s)
}

#[test]
fn loki_config_follows_the_documented_schema() {
    let cfg = example();
    let loki: loki::Config = yaml(&render(&cfg), "loki/loki.yaml");
    assert!(!loki.auth_enabled, "single tenant");
    assert!(!loki.analytics.reporting_enabled);
    assert_eq!(loki.server.http_listen_address, "127.0.0.1");
    assert_eq!(loki.server.grpc_listen_address, "127.0.0.1");
    assert_eq!(loki.server.http_listen_port, cfg.loki.port);
    assert_eq!(loki.server.grpc_listen_port, cfg.loki.grpc_port);
    assert_eq!(loki.common.replication_factor, 1);
    assert_eq!(loki.common.ring.kvstore.store, "inmemory");
    let [period] = &loki.schema_config.configs[..] else {
        panic!("one schema period")
    };
    assert_eq!(
        (period.store.as_str(), period.schema.as_str()),
        ("tsdb", "v13")
    );
    assert_eq!(period.object_store, "filesystem");
    assert_eq!(period.index.period, "24h", "tsdb needs a 24h index period");
    assert!(regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$")
        .unwrap()
        .is_match(&period.from));
    let dirs = [
        &loki.common.path_prefix,
        &loki.common.storage.filesystem.chunks_directory,
        &loki.common.storage.filesystem.rules_directory,
        &loki.storage_config.tsdb_shipper.active_index_directory,
        &loki.storage_config.tsdb_shipper.cache_location,
        &loki.compactor.working_directory,
    ];
    for dir in dirs {
        assert!(
            dir.starts_with(&cfg.loki.data_dir),
            "{dir} outside the data dir"
        );
    }
    let ruler = loki.ruler.expect("a ruler while Alertmanager runs");
    assert_eq!(
        ruler.alertmanager_url,
        format!("http://127.0.0.1:{}", cfg.alertmanager.port)
    );
    assert_eq!(ruler.storage.kind, "local");
    // `<directory>/<tenant>/<file>`: the rendered rules of tenant "fake".
    assert_eq!(
        format!("{}/fake/logs.yaml", ruler.storage.local.directory),
        format!(
            "{}/loki/rules/fake/logs.yaml",
            cfg.deploy.config_dir.trim_end_matches('/')
        )
    );
    assert!(ruler.rule_path.starts_with(&cfg.loki.data_dir));
    assert_eq!(ruler.ring.kvstore.store, "inmemory");
    assert!(loki.compactor.retention_enabled);
    assert_eq!(
        loki.compactor.delete_request_store.as_deref(),
        Some("filesystem"),
        "Loki 3 refuses retention without delete_request_store"
    );
    assert_eq!(loki.limits_config.retention_period, "720h");
    for d in [
        &loki.limits_config.retention_period,
        &loki.limits_config.reject_old_samples_max_age,
        &loki.compactor.compaction_interval,
        &loki.compactor.retention_delete_delay,
    ] {
        assert!(is_go_duration(d), "{d}");
    }
    assert!(loki.limits_config.ingestion_burst_size_mb >= loki.limits_config.ingestion_rate_mb);
    assert!(
        loki.limits_config.allow_structured_metadata,
        "OTLP logs need it"
    );
    assert!(loki.query_range.results_cache.cache.embedded_cache.enabled);
    assert_eq!(period.index.prefix, "index_");
}

#[test]
fn loki_data_dir_and_listener_follow_the_config() {
    let mut cfg = example();
    cfg.loki.data_dir = "/srv/loki/".into();
    cfg.loki.listen_address = "0.0.0.0".into();
    let tree = render(&cfg);
    let loki: loki::Config = yaml(&tree, "loki/loki.yaml");
    assert_eq!(
        loki.storage_config.tsdb_shipper.active_index_directory,
        "/srv/loki/tsdb-index"
    );
    assert_eq!(loki.server.http_listen_address, "0.0.0.0");
    // Clients on the same host still connect through loopback.
    assert!(tree
        .get("alloy/logs.alloy")
        .unwrap()
        .contains("\"http://127.0.0.1:3100/loki/api/v1/push\""));
    cfg.loki.retention = "thirty days".into();
    let err = configgen::render::render(&cfg).unwrap_err().to_string();
    assert!(err.contains("loki.retention: invalid duration"), "{err}");
}

#[test]
fn tempo_config_follows_the_documented_schema() {
    let cfg = example();
    let tempo: tempo::Config = yaml(&render(&cfg), "tempo/tempo.yaml");
    assert!(!tempo.usage_report.reporting_enabled);
    assert_eq!(tempo.server.http_listen_address, "127.0.0.1");
    assert_eq!(tempo.server.http_listen_port, cfg.tempo.port);
    assert_ne!(
        tempo.server.grpc_listen_port, cfg.loki.grpc_port,
        "ports clash with Loki"
    );
    let grpc = tempo.distributor.receivers.otlp.protocols.grpc.unwrap();
    assert_eq!(
        grpc.endpoint,
        format!("127.0.0.1:{}", cfg.tempo.otlp_grpc_port)
    );
    assert!(tempo.distributor.receivers.otlp.protocols.http.is_none());
    assert_ne!(
        cfg.tempo.otlp_grpc_port, cfg.alloy.otlp_grpc_port,
        "Alloy owns 4317"
    );
    assert_eq!(tempo.backend_worker.compaction.block_retention, "336h");
    assert_eq!(tempo.overrides.defaults.compaction.block_retention, "336h");
    assert!(is_go_duration(
        &tempo.backend_worker.compaction.block_retention
    ));
    assert_eq!(
        tempo.memberlist.bind_addr,
        ["127.0.0.1"],
        "gossip must stay on loopback"
    );
    let rw = &tempo.metrics_generator.storage.remote_write;
    assert_eq!(rw.len(), 1);
    assert_eq!(rw[0].url, "http://127.0.0.1:9090/api/v1/write");
    assert!(rw[0].send_exemplars);
    assert_eq!(
        tempo.metrics_generator.registry.external_labels["host"],
        "nas"
    );
    let mut processors = tempo
        .overrides
        .defaults
        .metrics_generator
        .processors
        .clone();
    processors.sort();
    assert_eq!(processors, ["service-graphs", "span-metrics"]);
    assert_eq!(tempo.storage.trace.backend, "local");
    for p in [
        &tempo.storage.trace.wal.path,
        &tempo.storage.trace.local.path,
        &tempo.metrics_generator.storage.path,
        &tempo.live_store.wal.path,
        &tempo.live_store.shutdown_marker_dir,
        &tempo.backend_scheduler.local_work_path,
    ] {
        assert!(p.starts_with(&cfg.tempo.data_dir), "{p}");
    }
    assert!(tempo.stream_over_http_enabled);
}

/// A server that accepts agents opens only what agents push to: Loki's HTTP
/// API and Tempo's OTLP gRPC receiver. gRPC and memberlist stay on loopback,
/// and the local Alloy still reaches Tempo's receiver.
#[test]
fn only_agent_facing_listeners_follow_public_addresses() {
    let mut cfg = example();
    cfg.loki.listen_address = "0.0.0.0".into();
    cfg.tempo.otlp_grpc_listen_address = "0.0.0.0".into();
    let tree = render(&cfg);
    let loki: loki::Config = yaml(&tree, "loki/loki.yaml");
    assert_eq!(loki.server.http_listen_address, "0.0.0.0");
    assert_eq!(loki.server.grpc_listen_address, "127.0.0.1");
    let tempo: tempo::Config = yaml(&tree, "tempo/tempo.yaml");
    assert_eq!(tempo.server.http_listen_address, "127.0.0.1");
    assert_eq!(tempo.server.grpc_listen_address, "127.0.0.1");
    assert_eq!(tempo.memberlist.bind_addr, ["127.0.0.1"]);
    let grpc = tempo.distributor.receivers.otlp.protocols.grpc.unwrap();
    assert_eq!(
        grpc.endpoint,
        format!("0.0.0.0:{}", cfg.tempo.otlp_grpc_port)
    );
    let traces = tree.get("alloy/traces.alloy").unwrap();
    assert!(
        traces.contains(&format!("\"127.0.0.1:{}\"", cfg.tempo.otlp_grpc_port)),
        "{traces}"
    );
}

#[test]
fn agents_render_no_server_components() {
    let tree = render(&agent());
    let paths: Vec<&str> = tree.files().map(|(p, _)| p).collect();
    for prefix in ["loki/", "tempo/", "grafana/"] {
        assert!(
            !paths.iter().any(|p| p.starts_with(prefix)),
            "{prefix} on an agent"
        );
    }
    let metrics = tree.get("alloy/metrics.alloy").unwrap();
    assert!(metrics.contains("url = \"http://nas.lan:9090/api/v1/write\""));
    assert!(metrics.contains("job_name = \"node\""));
    assert!(tree
        .get("alloy/logs.alloy")
        .unwrap()
        .contains("http://nas.lan:3100/loki/api/v1/push"));
    assert!(tree
        .get("alloy/traces.alloy")
        .unwrap()
        .contains("endpoint = \"nas.lan:4317\""));

    let mut cfg = agent();
    cfg.host.ship_to.as_mut().unwrap().otlp_grpc = None;
    assert!(render(&cfg).get("alloy/traces.alloy").is_none());
    cfg.host.ship_to = None;
    let err = configgen::render::render(&cfg).unwrap_err().to_string();
    assert!(err.contains("host.ship_to: required"), "{err}");
}

/// Every combination of optional Alloy inputs yields files that parse and
/// whose references all resolve.
#[test]
fn alloy_files_parse_and_every_reference_resolves() {
    let mut variants = vec![("example", example()), ("agent", agent())];
    let mut bare = example();
    bare.alloy.container_sockets.clear();
    bare.alloy.log_files.clear();
    bare.services.iter_mut().for_each(|s| s.logs = None);
    variants.push(("no containers, no files", bare));
    let mut odd = example();
    odd.services[0].logs = Some(configgen::model::LogSource::Unit(
        "we\"ird\\unit.service".into(),
    ));
    odd.host.labels.insert("rack-no".into(), "1".into());
    variants.push(("odd names", odd));
    let mut checked = 0;
    for (name, cfg) in variants {
        let tree = render(&cfg);
        let files: Vec<(&str, &str)> = tree
            .files()
            .filter(|(p, _)| p.starts_with("alloy/"))
            .collect();
        assert!(!files.is_empty(), "{name}");
        let errors = config_checkers::alloy_syntax::check(&files);
        assert!(
            errors.is_empty(),
            "{name}:\n{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        checked += files.len();
    }
    println!("checked {checked} Alloy files");
}

#[test]
fn alloy_journal_and_containers_carry_the_documented_labels() {
    let tree = render(&example());
    let logs = tree.get("alloy/logs.alloy").unwrap();
    let stmts = config_checkers::alloy_syntax::parse("logs.alloy", logs).unwrap();
    let names: Vec<String> = stmts
        .iter()
        .filter_map(|s| match s {
            config_checkers::alloy_syntax::Stmt::Block { name, label, .. } => {
                Some(format!("{name}.{}", label.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .collect();
    for expected in [
        "loki.source.journal.system",
        "loki.source.docker.containers",
        "loki.source.file.files",
        "loki.write.default",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    for needle in [
        "source_labels = [\"__journal__systemd_unit\"]\n    target_label = \"unit\"",
        "source_labels = [\"__journal_priority_keyword\"]\n    target_label = \"level\"",
        "regex = \"/(.*)\"\n    target_label = \"container\"",
        "__path__ = \"/var/log/nginx/*access.log\"",
        "host = \"unix:///run/homelab-observability/container-sockets/var_run_docker.sock\"",
        "host = \"nas\",\n    site = \"home\",",
    ] {
        assert!(logs.contains(needle), "{needle:?} not in\n{logs}");
    }
    let traces = tree.get("alloy/traces.alloy").unwrap();
    assert!(traces.contains("endpoint = \"127.0.0.1:4317\""));
    assert!(traces.contains("endpoint = \"127.0.0.1:4318\""));
    assert!(traces.contains("endpoint = \"127.0.0.1:4327\""));
}

#[test]
fn grafana_datasources_have_fixed_uids_and_correlations() {
    let cfg = example();
    let tree = render(&cfg);
    let file: grafana::Datasources = yaml(&tree, "grafana/provisioning/datasources/homelab.yaml");
    assert_eq!(file.api_version, 1);
    let by_uid: BTreeMap<&str, &grafana::Datasource> = file
        .datasources
        .iter()
        .map(|d| (d.uid.as_str(), d))
        .collect();
    let uids: Vec<&str> = by_uid.keys().copied().collect();
    assert_eq!(uids, ["alertmanager", "loki", "prometheus", "tempo"]);
    for d in &file.datasources {
        assert_eq!(d.kind, d.uid);
        assert_eq!(d.access, "proxy");
        assert!(!d.editable);
        assert!(d.url.starts_with("http://127.0.0.1:"), "{}", d.url);
        assert!(!d.name.is_empty());
    }
    assert!(by_uid["prometheus"].is_default);
    assert_eq!(file.datasources.iter().filter(|d| d.is_default).count(), 1);

    let prom = &by_uid["prometheus"].json_data;
    assert_eq!(
        prom["exemplarTraceIdDestinations"][0]["datasourceUid"],
        "tempo"
    );
    assert_eq!(
        prom["timeInterval"],
        cfg.prometheus.scrape_interval.as_str()
    );
    let loki = &by_uid["loki"].json_data;
    let derived = loki["derivedFields"].as_array().unwrap();
    assert!(derived.iter().all(|f| f["datasourceUid"] == "tempo"));
    // Grafana expands $VARS in provisioning files; $$ keeps a literal $.
    assert!(derived.iter().all(|f| f["url"] == "$${__value.raw}"));
    let re = regex::Regex::new(derived[0]["matcherRegex"].as_str().unwrap()).unwrap();
    let caps = re
        .captures(r#"level=info msg="served" trace_id=4bf92f3577b34da6a3ce929d0e0e4736"#)
        .unwrap();
    assert_eq!(&caps[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    let caps = re.captures(r#"{"traceID":"abc123"}"#).unwrap();
    assert_eq!(&caps[1], "abc123");
    let tempo = &by_uid["tempo"].json_data;
    assert_eq!(tempo["tracesToLogsV2"]["datasourceUid"], "loki");
    assert_eq!(tempo["tracesToLogsV2"]["filterByTraceID"], true);
    assert_eq!(tempo["tracesToMetrics"]["datasourceUid"], "prometheus");
    assert_eq!(tempo["serviceMap"]["datasourceUid"], "prometheus");
    for q in tempo["tracesToMetrics"]["queries"].as_array().unwrap() {
        let q = q["query"].as_str().unwrap();
        assert!(
            q.contains("{$$__tags") && !q.replace("$$", "").contains('$'),
            "{q}"
        );
    }
    assert_eq!(
        by_uid["alertmanager"].json_data["implementation"],
        "prometheus"
    );

    // Without Loki and Tempo the correlations that point at them go away.
    let mut cfg = example();
    cfg.loki.enable = false;
    cfg.tempo.enable = false;
    let tree = render(&cfg);
    let file: grafana::Datasources = yaml(&tree, "grafana/provisioning/datasources/homelab.yaml");
    let text = tree
        .get("grafana/provisioning/datasources/homelab.yaml")
        .unwrap();
    assert_eq!(file.datasources.len(), 2);
    assert!(!text.contains("tempo") && !text.contains("loki"), "{text}");
    assert!(tree.get("grafana/dashboards/logs.json").is_none());
    assert!(tree.get("alloy/logs.alloy").is_none() && tree.get("alloy/traces.alloy").is_none());
    assert!(!tree
        .get("grafana/dashboards/services.json")
        .unwrap()
        .contains("\"loki\""));
}

#[test]
fn grafana_dashboard_provider_points_at_the_configured_dir() {
    let mut cfg = example();
    cfg.grafana.dashboards_dir = "/var/lib/grafana/homelab".into();
    let file: grafana::Dashboards = yaml(
        &render(&cfg),
        "grafana/provisioning/dashboards/homelab.yaml",
    );
    assert_eq!(file.api_version, 1);
    let [p] = &file.providers[..] else {
        panic!("one provider")
    };
    assert_eq!(p.options.path, "/var/lib/grafana/homelab");
    assert!(!p.allow_ui_updates);
    assert!(p.disable_deletion);
    assert_eq!(p.kind, "file");
    assert_eq!(
        (p.folder.as_str(), p.folder_uid.as_str()),
        ("Homelab", "homelab")
    );
}

fn dashboards(tree: &Tree) -> Vec<(String, serde_json::Value)> {
    tree.files()
        .filter(|(p, _)| p.starts_with("grafana/dashboards/"))
        .map(|(p, text)| {
            let v = serde_json::from_str(text).unwrap_or_else(|e| panic!("{p}: invalid JSON: {e}"));
            (p.to_string(), v)
        })
        .collect()
}

#[test]
fn dashboards_are_provisionable() {
    let tree = render(&example());
    let file: grafana::Datasources = yaml(&tree, "grafana/provisioning/datasources/homelab.yaml");
    let uids: Vec<&str> = file.datasources.iter().map(|d| d.uid.as_str()).collect();
    let all = dashboards(&tree);
    let names: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "grafana/dashboards/containers.json",
            "grafana/dashboards/host.json",
            "grafana/dashboards/logs.json",
            "grafana/dashboards/overview.json",
            "grafana/dashboards/probes.json",
            "grafana/dashboards/services.json",
        ]
    );
    let mut dashboard_uids = Vec::new();
    for (path, d) in &all {
        let problems = config_checkers::dashboard_queries::check(d, &uids);
        assert!(problems.is_empty(), "{path}:\n{}", problems.join("\n"));
        assert_eq!(d["editable"], false);
        assert!(d["uid"].as_str().unwrap().starts_with("homelab-"));
        dashboard_uids.push(d["uid"].as_str().unwrap().to_string());
        // Panels of collapsed rows included.
        let panels = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| std::iter::once(p).chain(p["panels"].as_array().into_iter().flatten()))
            .filter(|p| p["type"] != "row")
            .count();
        println!("{path}: {panels} panels");
    }
    dashboard_uids.sort();
    dashboard_uids.dedup();
    assert_eq!(
        dashboard_uids.len(),
        all.len(),
        "dashboard uids must be unique"
    );
}

/// Dashboards select jobs through constants whose values come from `plan::job`.
#[test]
fn dashboard_job_constants_come_from_the_plan() {
    use configgen::plan::job;
    let tree = render(&example());
    for (path, d) in dashboards(&tree) {
        let values = config_checkers::dashboard_queries::all_values(&d);
        assert_eq!(values["job_node"], job::NODE, "{path}");
        assert_eq!(values["job_cadvisor"], job::CADVISOR);
        assert_eq!(values["job_red_probe"], job::RED_PROBE);
        assert_eq!(values["job_lan_sweep"], job::LAN_SWEEP);
        assert_eq!(values["job_network"], job::NETWORK);
        let blackbox: Vec<&str> = values["job_blackbox"].split('|').collect();
        assert_eq!(
            blackbox,
            [
                job::BLACKBOX_HTTP,
                job::BLACKBOX_TCP,
                job::BLACKBOX_ICMP,
                job::BLACKBOX_DNS
            ]
        );
        for q in config_checkers::dashboard_queries::queries(&d) {
            assert!(
                !q.expr.contains("job=\"node\""),
                "{path} {}: use $job_node",
                q.panel
            );
        }
    }
}

/// Values for Grafana's built-in interval variables in checks.
pub fn builtins() -> BTreeMap<String, String> {
    [
        ("__rate_interval", "1m"),
        ("__interval", "1m"),
        ("__range", "1h"),
        ("__auto", "1m"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn every_logql_query_is_valid() {
    let tree = render(&example());
    let mut checked = 0;
    for (path, d) in dashboards(&tree) {
        let mut values = builtins();
        values.extend(config_checkers::dashboard_queries::all_values(&d));
        for q in config_checkers::dashboard_queries::queries(&d)
            .into_iter()
            .filter(|q| q.datasource == "loki")
        {
            let expr = config_checkers::dashboard_queries::substitute(&q.expr, &values).unwrap();
            config_checkers::logql::check(&expr)
                .unwrap_or_else(|e| panic!("{path} / {}: {e}\n  {expr}", q.panel));
            checked += 1;
        }
    }
    println!("checked {checked} LogQL queries");
    assert!(checked >= 10, "only {checked} LogQL queries");
}

#[test]
fn every_promql_expression_is_listed_and_substitutable() {
    let tree = render(&example());
    let mut all = Vec::new();
    for (path, d) in dashboards(&tree) {
        let mut values = builtins();
        values.extend(config_checkers::dashboard_queries::all_values(&d));
        for q in config_checkers::dashboard_queries::queries(&d)
            .into_iter()
            .filter(|q| q.datasource == "prometheus")
        {
            let expr = config_checkers::dashboard_queries::substitute(&q.expr, &values)
                .unwrap_or_else(|e| panic!("{path} / {}: {e}", q.panel));
            // Only label_replace() capture groups ("$1") are left.
            assert!(!expr.replace("\"$1\"", "").contains('$'), "{expr}");
            all.push(format!("{} / {}: {expr}", q.dashboard, q.panel));
        }
    }
    println!("{} PromQL expressions:\n{}", all.len(), all.join("\n"));
    assert!(all.len() >= 60, "only {} PromQL expressions", all.len());
}

/// Label names and `job` values that the rendered Alloy pipeline puts on log
/// streams: relabel targets, static `labels`, file targets and external labels.
fn alloy_stream_labels(logs_alloy: &str) -> (Vec<String>, Vec<String>) {
    use config_checkers::alloy_syntax::{parse, Expr, Stmt};
    fn walk(stmts: &[Stmt], names: &mut Vec<String>, jobs: &mut Vec<String>) {
        for stmt in stmts {
            match stmt {
                Stmt::Block { body, .. } => walk(body, names, jobs),
                Stmt::Attr { name, value, .. } => match (name.as_str(), value) {
                    ("target_label", Expr::Str(label)) => names.push(label.clone()),
                    ("labels" | "external_labels", Expr::Object(fields)) => {
                        fields_of(fields, names, jobs)
                    }
                    ("path_targets", Expr::List(items)) => {
                        for item in items {
                            if let Expr::Object(fields) = item {
                                fields_of(fields, names, jobs);
                            }
                        }
                    }
                    _ => {}
                },
            }
        }
    }
    fn fields_of(
        fields: &[(String, config_checkers::alloy_syntax::Expr)],
        names: &mut Vec<String>,
        jobs: &mut Vec<String>,
    ) {
        for (k, v) in fields {
            if k.starts_with("__") {
                continue;
            }
            names.push(k.clone());
            if let (true, config_checkers::alloy_syntax::Expr::Str(job)) = (k == "job", v) {
                jobs.push(job.clone());
            }
        }
    }
    let (mut names, mut jobs) = (Vec::new(), Vec::new());
    walk(
        &parse("logs.alloy", logs_alloy).unwrap(),
        &mut names,
        &mut jobs,
    );
    // loki.source.file adds the path of each file.
    names.push("filename".into());
    (names, jobs)
}

/// The `level` values Alloy's loki.source.journal writes for PRIORITY 0-7
/// (the keyword table of its journal target, grafana/alloy
/// internal/component/loki/source/journal): `error` and `warning`, not `err`.
const ALLOY_JOURNAL_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
];

/// Every label a dashboard's LogQL selects on is one the Alloy pipeline
/// writes, every `job` it names is one of Alloy's streams, and every `level`
/// one Alloy's journal source writes.
#[test]
fn dashboard_log_queries_select_labels_alloy_writes() {
    let tree = render(&example());
    let (names, jobs) = alloy_stream_labels(tree.get("alloy/logs.alloy").unwrap());
    let matcher = regex::Regex::new(r#"(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)""#).unwrap();
    let mut checked = 0;
    let mut levels = Vec::new();
    for (path, d) in dashboards(&tree) {
        let mut values = builtins();
        values.extend(config_checkers::dashboard_queries::all_values(&d));
        for q in config_checkers::dashboard_queries::queries(&d)
            .into_iter()
            .filter(|q| q.datasource == "loki")
        {
            let expr = config_checkers::dashboard_queries::substitute(&q.expr, &values).unwrap();
            let selector = &expr[expr.find('{').unwrap()..=expr.find('}').unwrap()];
            for m in matcher.captures_iter(selector) {
                let (label, op, value) = (&m[1], &m[2], &m[3]);
                assert!(
                    names.iter().any(|n| n == label),
                    "{path} / {}: label {label} is not written by Alloy ({names:?})",
                    q.panel
                );
                if label == "job" && op == "=" {
                    assert!(
                        jobs.iter().any(|j| j == value),
                        "{path} / {}: no Alloy stream has job={value} ({jobs:?})",
                        q.panel
                    );
                }
                if label == "job" && op == "=~" {
                    for alt in value.split('|') {
                        assert!(
                            jobs.iter().any(|j| j == alt),
                            "{path} / {}: no Alloy stream has job={alt}",
                            q.panel
                        );
                    }
                }
                if label == "level" {
                    for alt in value.split('|') {
                        assert!(
                            ALLOY_JOURNAL_LEVELS.contains(&alt),
                            "{path} / {}: Alloy never writes level={alt}",
                            q.panel
                        );
                        levels.push(alt.to_string());
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} matchers");
    for severe in &ALLOY_JOURNAL_LEVELS[..4] {
        assert!(
            levels.iter().any(|l| l == severe),
            "no dashboard selects level={severe} ({levels:?})"
        );
    }
}

/// Tempo is not packaged for Debian, so the TraceQL of the dashboards is read
/// by `config_checkers::traceql` (the documented grammar), not sent to a Tempo.
#[test]
fn every_traceql_query_is_valid() {
    let tree = render(&example());
    let (mut traceql, mut service_maps) = (0, 0);
    for (path, d) in dashboards(&tree) {
        let mut values = builtins();
        values.extend(config_checkers::dashboard_queries::all_values(&d));
        for q in config_checkers::dashboard_queries::queries(&d)
            .into_iter()
            .filter(|q| q.datasource == "tempo")
        {
            match q.query_type.as_deref() {
                Some("traceql") => {
                    let expr =
                        config_checkers::dashboard_queries::substitute(&q.expr, &values).unwrap();
                    config_checkers::traceql::check(&expr)
                        .unwrap_or_else(|e| panic!("{path} / {}: {e}\n  {expr}", q.panel));
                    traceql += 1;
                }
                // Grafana builds it from the datasource's serviceMap.datasourceUid.
                Some("serviceMap") => {
                    assert!(q.expr.is_empty(), "{path} / {}", q.panel);
                    service_maps += 1;
                }
                other => panic!("{path} / {}: Tempo query type {other:?}", q.panel),
            }
        }
    }
    assert_eq!((traceql, service_maps), (1, 1));
}

fn services_dashboard(cfg: &Config) -> serde_json::Value {
    let tree = render(cfg);
    let file: grafana::Datasources = yaml(&tree, "grafana/provisioning/datasources/homelab.yaml");
    let uids: Vec<&str> = file.datasources.iter().map(|d| d.uid.as_str()).collect();
    let (_, d) = dashboards(&tree)
        .into_iter()
        .find(|(p, _)| p.ends_with("/services.json"))
        .unwrap();
    let problems = config_checkers::dashboard_queries::check(&d, &uids);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    d
}

fn panel_titles(d: &serde_json::Value) -> Vec<String> {
    d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

/// Tempo and Loki are optional: their panels are there with them and gone
/// without them, never left with a datasource that is not provisioned.
#[test]
fn services_dashboard_trace_and_log_panels_follow_tempo_and_loki() {
    let trace_panels = [
        "Traces",
        "Service map",
        "Calls between services",
        "Call duration p95 (server side)",
        "Latest traces",
    ];
    let log_panels = ["Access log", "Latest requests (probe access log)"];
    for (tempo, loki) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut cfg = example();
        cfg.tempo.enable = tempo;
        cfg.loki.enable = loki;
        let d = services_dashboard(&cfg);
        let titles = panel_titles(&d);
        for t in trace_panels {
            assert_eq!(
                titles.iter().any(|x| x == t),
                tempo,
                "{t} with tempo={tempo}"
            );
        }
        for t in log_panels {
            assert_eq!(titles.iter().any(|x| x == t), loki, "{t} with loki={loki}");
        }
        let latency = d["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == "Latency percentiles")
            .unwrap();
        for target in latency["targets"].as_array().unwrap() {
            assert_eq!(target["exemplar"], tempo, "exemplars with tempo={tempo}");
        }
    }
}

/// The access-log table reads the probe's journal lines: its stream selector
/// names the probe's unit, its line filter keeps a line in the probe's format
/// (crates/probe/src/access_log.rs) and drops the probe's other messages, and
/// its columns are the fields of that line.
#[test]
fn access_log_panel_reads_the_probes_lines() {
    let d = services_dashboard(&example());
    let panel = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Latest requests (probe access log)")
        .unwrap();
    let mut values = builtins();
    values.extend(config_checkers::dashboard_queries::all_values(&d));
    let expr = config_checkers::dashboard_queries::substitute(
        panel["targets"][0]["expr"].as_str().unwrap(),
        &values,
    )
    .unwrap();
    assert!(
        expr.starts_with(r#"{unit="homelab-probe.service"}"#),
        "{expr}"
    );
    let line = r#"{"service":"api","side":"server","method":"GET","route":"/items/{id}","path":"/items/7","status":200,"duration_ms":12.345,"peer":"[::1]:5000","trace_id":"abababababababababababababababab"}"#;
    let filters = config_checkers::logql::line_filters(&expr).unwrap();
    assert!(!filters.is_empty());
    assert!(filters.iter().all(|f| f.keeps(line)), "{expr}");
    let warning = "homelab-probe: warning: unit web.service matches no cgroup";
    assert!(!filters.iter().all(|f| f.keeps(warning)), "{expr}");
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
    let organize = &panel["transformations"][1]["options"]["includeByName"];
    let columns: Vec<&String> = organize
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "Time")
        .collect();
    assert_eq!(columns.len(), fields.len(), "{columns:?}");
    for c in columns {
        assert!(
            fields.contains_key(c),
            "column {c} is not a field of the line"
        );
    }
}
