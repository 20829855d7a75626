//! The span exporter: a bounded queue filled by the collector thread (a full queue drops
//! and counts), emptied in batches (up to N spans, or T ms after the first one) POSTed as
//! OTLP/HTTP protobuf.

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tokio::sync::mpsc;

use crate::{
    config::Traces,
    metrics::Metrics,
    spans::{Clock, SpanData},
};

/// The collector's end of the queue.
pub struct SpanSink {
    tx: mpsc::Sender<SpanData>,
    pub sample_ratio: f64,
    metrics: Arc<Metrics>,
}

impl SpanSink {
    /// Never blocks: when the exporter is behind, the span is dropped and counted.
    pub fn submit(&self, span: SpanData) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(span) {
            self.metrics
                .spans_dropped
                .with_label_values(&["queue_full"])
                .inc();
        }
    }
}

pub struct Exporter {
    rx: mpsc::Receiver<SpanData>,
    settings: Traces,
    clock: Clock,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    /// The last export failed (its error was printed; the next success is announced).
    failing: bool,
}

pub fn channel(settings: &Traces, metrics: Arc<Metrics>) -> anyhow::Result<(SpanSink, Exporter)> {
    let (tx, rx) = mpsc::channel(settings.max_queue);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok((
        SpanSink {
            tx,
            sample_ratio: settings.sample_ratio,
            metrics: metrics.clone(),
        },
        Exporter {
            rx,
            settings: settings.clone(),
            clock: Clock::now(),
            client,
            metrics,
            failing: false,
        },
    ))
}

impl Exporter {
    /// A span waiting in the queue (tests of the table).
    #[cfg(test)]
    pub fn try_take(&mut self) -> Option<SpanData> {
        self.rx.try_recv().ok()
    }

    /// Runs until every sink is dropped, then sends what is left.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.settings.max_batch);
        while let Some(first) = self.rx.recv().await {
            batch.push(first);
            let deadline = tokio::time::Instant::now() + self.settings.batch_timeout;
            while batch.len() < self.settings.max_batch {
                tokio::select! {
                    next = self.rx.recv() => match next {
                        Some(span) => batch.push(span),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.send(&batch).await;
            batch.clear();
        }
    }

    async fn send(&mut self, batch: &[SpanData]) {
        let body = crate::spans::export_request(batch, &self.clock).encode_to_vec();
        let result = self
            .client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body)
            .send()
            .await
            .and_then(|r| r.error_for_status());
        let n = batch.len() as u64;
        match result {
            Ok(_) => {
                self.metrics.spans_exported.inc_by(n);
                if self.failing {
                    eprintln!(
                        "homelab-probe: spans are accepted again by {}",
                        self.settings.url
                    );
                    self.failing = false;
                }
            }
            Err(e) => {
                self.metrics
                    .spans_dropped
                    .with_label_values(&["export_failed"])
                    .inc_by(n);
                if !self.failing {
                    eprintln!(
                        "homelab-probe: warning: cannot export spans to {}: {e} (counted in \
                         homelab_probe_spans_dropped_total; said again when it works)",
                        self.settings.url
                    );
                    self.failing = true;
                }
            }
        }
    }
}
