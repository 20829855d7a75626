//! The exported Prometheus metrics (names and labels from the team contract, which follows
//! the OpenTelemetry HTTP semantic conventions).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

pub struct Metrics {
    registry: Registry,
    /// service_name, http_request_method, http_response_status_code, http_route
    pub server_duration: HistogramVec,
    /// service_name, http_request_method, http_response_status_code, server_address, server_port
    pub client_duration: HistogramVec,
    /// service_name, http_request_method, http_route
    pub server_unanswered: IntCounterVec,
    /// service_name, http_request_method, server_address, server_port
    pub client_unanswered: IntCounterVec,
    /// service_name
    pub server_active: IntGaugeVec,
    pub events: IntCounter,
    pub ringbuf_drops: IntCounter,
    pub parse_errors: IntCounter,
    pub tracked_connections: IntGauge,
    pub evicted_connections: IntCounter,
    /// kind (unit, container), name
    pub watch_matched_cgroups: IntGaugeVec,
    pub spans_exported: IntCounter,
    /// reason: queue_full, export_failed
    pub spans_dropped: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()),
                labels,
            )
            .expect("valid histogram");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let server_duration = histogram(
            "http_server_request_duration_seconds",
            "Duration of HTTP server requests, first request byte to last response byte.",
            &[
                "service_name",
                "http_request_method",
                "http_response_status_code",
                "http_route",
            ],
        );
        let client_duration = histogram(
            "http_client_request_duration_seconds",
            "Duration of outgoing HTTP requests, first request byte to last response byte.",
            &[
                "service_name",
                "http_request_method",
                "http_response_status_code",
                "server_address",
                "server_port",
            ],
        );
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let server_unanswered = counter_vec(
            "http_server_unanswered_requests_total",
            "HTTP server requests read but never answered: the connection ended before a \
             status line (keep-alive limit, pipelined requests, client gone). Not in the \
             duration histogram.",
            &["service_name", "http_request_method", "http_route"],
        );
        let client_unanswered = counter_vec(
            "http_client_unanswered_requests_total",
            "Outgoing HTTP requests that got no status line before the connection ended. Not \
             in the duration histogram.",
            &[
                "service_name",
                "http_request_method",
                "server_address",
                "server_port",
            ],
        );
        let server_active = IntGaugeVec::new(
            Opts::new(
                "http_server_active_requests",
                "HTTP server requests in flight.",
            ),
            &["service_name"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(server_active.clone()))
            .expect("unique metric");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid counter");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let events = counter("homelab_probe_events_total", "Events read from the kernel.");
        let ringbuf_drops = counter(
            "homelab_probe_ringbuf_drops_total",
            "Events lost because the ring buffer was full.",
        );
        let parse_errors = counter(
            "homelab_probe_parse_errors_total",
            "Connections whose bytes were not HTTP/1.x (or not parseable).",
        );
        let evicted_connections = counter(
            "homelab_probe_evicted_connections_total",
            "Connections dropped from the full connection table (least recently active).",
        );
        let tracked_connections = IntGauge::new(
            "homelab_probe_tracked_connections",
            "Connections being followed.",
        )
        .expect("valid gauge");
        registry
            .register(Box::new(tracked_connections.clone()))
            .expect("unique metric");
        let watch_matched_cgroups = IntGaugeVec::new(
            Opts::new(
                "homelab_probe_watch_matched_cgroups",
                "cgroups a unit or container watch matches now; 0: the watch sees nothing \
                 (the unit or container is not running, or its name is misspelled).",
            ),
            &["kind", "name"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(watch_matched_cgroups.clone()))
            .expect("unique metric");
        let spans_exported = counter(
            "homelab_probe_spans_exported_total",
            "Spans accepted by the OTLP endpoint.",
        );
        let spans_dropped = counter_vec(
            "homelab_probe_spans_dropped_total",
            "Spans lost: queue_full (the exporter was behind), export_failed (the OTLP \
             endpoint refused them or could not be reached).",
            &["reason"],
        );
        for reason in ["queue_full", "export_failed"] {
            spans_dropped.with_label_values(&[reason]);
        }
        Metrics {
            spans_exported,
            spans_dropped,
            registry,
            watch_matched_cgroups,
            server_duration,
            client_duration,
            server_unanswered,
            client_unanswered,
            server_active,
            events,
            ringbuf_drops,
            parse_errors,
            tracked_connections,
            evicted_connections,
        }
    }

    /// A counter of a room of its own (e.g. the access log), exported with the rest.
    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        let c = IntCounter::new(name, help).expect("valid counter");
        self.registry
            .register(Box::new(c.clone()))
            .expect("unique metric");
        c
    }

    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails on a Vec");
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_contract_names() {
        let m = Metrics::new();
        m.server_duration
            .with_label_values(&["web", "GET", "200", "/"])
            .observe(0.02);
        m.client_duration
            .with_label_values(&["curl", "GET", "200", "127.0.0.1", "80"])
            .observe(0.2);
        m.server_active.with_label_values(&["web"]).set(0);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_response_status_code=\"200\",http_route=\"/\",service_name=\"web\",le=\"0.025\"} 1"
        ), "{text}");
        assert!(text.contains("http_client_request_duration_seconds_count{"));
        assert!(text.contains("homelab_probe_ringbuf_drops_total 0"));
        assert!(text.contains("homelab_probe_tracked_connections 0"));
    }
}
