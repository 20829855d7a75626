//! The access log: one JSON line per answered request on stdout (under systemd: the
//! journal, and through Alloy, Loki). Bounded: at most `max_per_second` lines in each
//! second of request end times, the rest counted as suppressed; a thread of its own writes
//! them, so a slow reader of stdout never stalls the collector (a full queue suppresses
//! too).

use std::{
    io::Write,
    sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError},
};

use httpflow::Side;
use serde::Serialize;

use crate::{
    metrics::{IntCounter, Metrics},
    spans::TraceId,
    table::Peer,
};

/// One answered request, as the collector saw it.
pub struct Entry<'a> {
    pub service: &'a str,
    pub side: Side,
    pub method: &'a str,
    /// The matched route template (server side).
    pub route: Option<&'a str>,
    /// The request target without its query string.
    pub path: &'a str,
    pub status: u16,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The client of a served request, the server of an outgoing call.
    pub peer: Option<&'a Peer>,
    /// The trace of the request's span, when one was exported.
    pub trace_id: Option<&'a TraceId>,
}

#[derive(Serialize)]
struct Line<'a> {
    service: &'a str,
    side: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    path: &'a str,
    status: u16,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

pub struct AccessLog {
    queue: SyncSender<String>,
    max_per_second: u32,
    /// The second (of request end times) being counted, and its lines so far.
    second: u64,
    in_second: u32,
    written: IntCounter,
    suppressed: IntCounter,
}

/// Lines waiting for the writer thread at most.
const QUEUE: usize = 4096;

impl AccessLog {
    /// The log and the writer thread's loop (run it on a thread of its own; it ends when
    /// the log is dropped), writing to `out`.
    pub fn new<W: Write + Send + 'static>(
        max_per_second: u32,
        metrics: &Metrics,
        out: W,
    ) -> (Self, impl FnOnce() + Send + 'static) {
        let (queue, lines) = sync_channel(QUEUE);
        let log = AccessLog {
            queue,
            max_per_second,
            second: 0,
            in_second: 0,
            written: metrics.access_log_lines.clone(),
            suppressed: metrics.access_log_suppressed.clone(),
        };
        (log, move || write_lines(lines, out))
    }

    pub fn record(&mut self, e: &Entry<'_>) {
        let second = e.end_ns / 1_000_000_000;
        if second != self.second {
            self.second = second;
            self.in_second = 0;
        }
        if self.in_second >= self.max_per_second {
            self.suppressed.inc();
            return;
        }
        self.in_second += 1;
        let line = Line {
            service: e.service,
            side: match e.side {
                Side::Server => "server",
                Side::Client => "client",
            },
            method: e.method,
            route: e.route.filter(|r| !r.is_empty()),
            path: e.path,
            status: e.status,
            // Microsecond precision: the kernel's timestamps are exact, the rest is noise.
            duration_ms: (e.end_ns.saturating_sub(e.start_ns) / 1_000) as f64 / 1e3,
            peer: e.peer.map(Peer::to_string),
            trace_id: e.trace_id.map(hex),
        };
        let text = serde_json::to_string(&line).expect("serializable line");
        match self.queue.try_send(text) {
            Ok(()) => self.written.inc(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.suppressed.inc(),
        };
    }
}

fn hex(bytes: &TraceId) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes queued lines, flushing whenever the queue runs empty.
fn write_lines(lines: Receiver<String>, out: impl Write) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            if writeln!(out, "{line}").is_err() {
                return;
            }
            next = lines.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entry(end_ns: u64) -> Entry<'static> {
        Entry {
            service: "api",
            side: Side::Server,
            method: "GET",
            route: Some("/items/{id}"),
            path: "/items/7",
            status: 200,
            start_ns: end_ns - 12_345_678,
            end_ns,
            peer: None,
            trace_id: None,
        }
    }

    #[test]
    fn lines_are_json_and_bounded_per_second() {
        let metrics = Metrics::new();
        let out = Shared::default();
        let (mut log, writer) = AccessLog::new(2, &metrics, out.clone());
        let thread = std::thread::spawn(writer);
        let peer = Peer {
            address: "::1".into(),
            port: 5000,
        };
        let trace = [0xab; 16];
        let s = 1_000_000_000;
        log.record(&Entry {
            peer: Some(&peer),
            trace_id: Some(&trace),
            ..entry(5 * s)
        });
        log.record(&entry(5 * s + 1));
        log.record(&entry(5 * s + 2));
        log.record(&entry(6 * s));
        assert_eq!((log.written.get(), log.suppressed.get()), (3, 1));
        drop(log);
        thread.join().unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            r#"{"service":"api","side":"server","method":"GET","route":"/items/{id}","path":"/items/7","status":200,"duration_ms":12.345,"peer":"[::1]:5000","trace_id":"abababababababababababababababab"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"service":"api","side":"server","method":"GET","route":"/items/{id}","path":"/items/7","status":200,"duration_ms":12.345}"#
        );
        let exposed = String::from_utf8(metrics.render(false)).unwrap();
        assert!(exposed.contains("homelab_probe_access_log_suppressed_total 1\n"));
    }
}
