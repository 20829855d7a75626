//! The collector thread: drains the ring buffer into the connection table, and every
//! second does housekeeping (drop counter, dead processes, cgroups of watched units and
//! containers).

use std::{
    collections::HashMap,
    os::fd::AsRawFd,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use homelab_ebpf::{self as abi, Event};

use crate::{
    discovery::Discovered,
    loader,
    metrics::Metrics,
    procfs, services,
    table::{Table, WatchInfo},
};

/// A watch that selects processes by cgroup.
#[derive(Debug, Clone)]
pub enum CgroupSelector {
    Unit(String),
    Container(String),
}

impl CgroupSelector {
    /// (kind, name): the labels of `homelab_probe_watch_matched_cgroups`.
    fn labels(&self) -> [&str; 2] {
        match self {
            CgroupSelector::Unit(u) => ["unit", u],
            CgroupSelector::Container(c) => ["container", c],
        }
    }

    fn hint(&self) -> String {
        match self {
            CgroupSelector::Unit(u) => {
                format!("not running or misspelled? see `systemctl status {u}`")
            }
            CgroupSelector::Container(_) => {
                "not running or misspelled? `docker ps` or `podman ps` lists the names".into()
            }
        }
    }
}

pub struct Collector {
    pub maps: loader::Maps,
    pub table: Table,
    pub metrics: Arc<Metrics>,
    pub cgroup_watches: Vec<(u32, CgroupSelector)>,
    /// cgroups each of `cgroup_watches` matched at the last look-up (None: not looked yet).
    pub cgroups_matched: Vec<Option<usize>>,
    pub cgroup_root: Option<PathBuf>,
    pub runtimes: services::Runtimes,
    pub log_events: bool,
    /// Questions of the `/requests` endpoint.
    pub live: std::sync::mpsc::Receiver<crate::live::Query>,
    /// Containers labelled to be watched (None: not looked for).
    pub labelled: Option<Labelled>,
}

/// The containers the discovery thread found, and the watch each one was given.
pub struct Labelled {
    pub updates: std::sync::mpsc::Receiver<Vec<Discovered>>,
    pub current: Vec<Discovered>,
    /// Container id -> watch id; a container keeps its watch while it lives.
    watch_ids: HashMap<String, u32>,
    /// Container id -> name of those whose cgroup was found at the last look-up.
    found: HashMap<String, String>,
}

impl Labelled {
    pub fn new(
        current: Vec<Discovered>,
        updates: std::sync::mpsc::Receiver<Vec<Discovered>>,
    ) -> Self {
        Labelled {
            updates,
            current,
            watch_ids: HashMap::new(),
            found: HashMap::new(),
        }
    }
}

/// Poll timeout: the kernel side wakes the reader only past a fill threshold, so a short
/// timeout bounds the delay of a trickle of events.
const POLL_MS: i32 = 50;

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Collector {
    /// Resolves the cgroup ids of watched units/containers and syncs the kernel map.
    pub fn sync_cgroups(&mut self) -> HashMap<u64, u32> {
        let mut wanted = HashMap::new();
        self.cgroups_matched.resize(self.cgroup_watches.len(), None);
        for ((watch, sel), matched) in self.cgroup_watches.iter().zip(&mut self.cgroups_matched) {
            let ids = match (&self.cgroup_root, sel) {
                (None, _) => vec![],
                (Some(root), CgroupSelector::Unit(u)) => services::unit_cgroup_ids(root, u),
                (Some(root), CgroupSelector::Container(c)) => {
                    services::container_cgroup_ids(root, c, &self.runtimes)
                }
            };
            let [kind, name] = sel.labels();
            self.metrics
                .watch_matched_cgroups
                .with_label_values(&[kind, name])
                .set(ids.len() as i64);
            match (*matched, ids.len()) {
                (None | Some(1..), 0) => {
                    let why = if self.cgroup_root.is_none() {
                        "no cgroup v2 hierarchy is mounted".to_string()
                    } else {
                        sel.hint()
                    };
                    eprintln!(
                        "homelab-probe: warning: {kind} {name} matches no cgroup, so this \
                         watch sees nothing ({why}); looked up again every 5 s"
                    );
                }
                (Some(0), 1..) => eprintln!("homelab-probe: {kind} {name} found"),
                _ => {}
            }
            *matched = Some(ids.len());
            for id in ids {
                wanted.insert(id, *watch);
            }
        }
        self.sync_labelled(&mut wanted);
        let present: Vec<u64> = self.maps.cgroups.keys().filter_map(Result::ok).collect();
        for id in present {
            if !wanted.contains_key(&id) {
                let _ = self.maps.cgroups.remove(&id);
            }
        }
        for (id, watch) in &wanted {
            if let Err(e) = self
                .maps
                .cgroups
                .insert(id, self.table.kernel_watch(*watch), 0)
            {
                eprintln!("homelab-probe: warning: cgroup map full? {e}");
            }
        }
        wanted
    }

    /// Adds the cgroups of the labelled containers to `wanted`, each container under its
    /// own watch (created at its first sight).
    fn sync_labelled(&mut self, wanted: &mut HashMap<u64, u32>) {
        let Some(labelled) = self.labelled.as_mut() else {
            return;
        };
        while let Ok(list) = labelled.updates.try_recv() {
            labelled.current = list;
        }
        let mut found = HashMap::new();
        for c in &labelled.current {
            let ids = match &self.cgroup_root {
                Some(root) => services::cgroup_ids(root, &|dir| dir.contains(c.id.as_str())),
                None => vec![],
            };
            self.metrics
                .watch_matched_cgroups
                .with_label_values(&["container", &c.name])
                .set(ids.len() as i64);
            if ids.is_empty() {
                continue; // not running (yet)
            }
            let watch = *labelled.watch_ids.entry(c.id.clone()).or_insert_with(|| {
                self.table.add_watch(WatchInfo {
                    service: Some(c.watch.service.clone()),
                    routes: c.watch.routes.clone(),
                    traces: true,
                    ports: c.watch.ports.clone(),
                })
            });
            if !labelled.found.contains_key(&c.id) {
                let ports = if c.watch.ports.is_empty() {
                    "every port".to_string()
                } else {
                    format!("ports {:?}", c.watch.ports)
                };
                eprintln!(
                    "homelab-probe: container {} (labelled homelab.red) watched as {}, {ports}",
                    c.name, c.watch.service
                );
            }
            found.insert(c.id.clone(), c.name.clone());
            for id in ids {
                wanted.insert(id, watch);
            }
        }
        for (id, name) in &labelled.found {
            if !found.contains_key(id) {
                eprintln!(
                    "homelab-probe: container {name} is no longer watched (stopped or unlabelled)"
                );
                self.metrics
                    .watch_matched_cgroups
                    .with_label_values(&["container", name])
                    .set(0);
            }
        }
        labelled.found = found;
    }

    pub fn run(mut self, stop: Arc<AtomicBool>) {
        let fd = self.maps.events.as_raw_fd();
        let mut drops_seen = 0u64;
        let mut last_tick = Instant::now();
        let mut ticks = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            while let Some(item) = self.maps.events.next() {
                match Event::parse(&item) {
                    Some(ev) => {
                        if self.log_events {
                            log_event(&ev);
                        }
                        self.table.on_event(&ev);
                    }
                    None => {
                        self.metrics.parse_errors.inc();
                    }
                }
            }
            for key in self.table.take_refused() {
                let _ = self.maps.conns.remove(&key);
            }
            while let Ok(reply) = self.live.try_recv() {
                let _ = reply.send(self.table.in_flight(monotonic_ns()));
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                ticks += 1;
                let drops = loader::stat(&self.maps.stats, abi::STAT_DROPS);
                self.metrics
                    .ringbuf_drops
                    .inc_by(drops.saturating_sub(drops_seen));
                drops_seen = drops_seen.max(drops);
                if ticks.is_multiple_of(5) {
                    self.housekeeping();
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let dead = self.table.prune(&procfs::alive, monotonic_ns());
        for tgid in dead {
            let _ = self.maps.tgids.remove(&tgid);
            let stale: Vec<u64> = self
                .maps
                .conns
                .keys()
                .filter_map(Result::ok)
                .filter(|k| (k >> 32) as u32 == tgid)
                .collect();
            for k in stale {
                let _ = self.maps.conns.remove(&k);
            }
        }
        if !self.cgroup_watches.is_empty() || self.labelled.is_some() {
            self.sync_cgroups();
        }
    }
}

fn log_event(ev: &Event<'_>) {
    let h = &ev.hdr;
    let kind = match h.kind {
        abi::EV_OPEN => "open",
        abi::EV_DATA if h.dir == abi::DIR_WRITE => "write",
        abi::EV_DATA => "read",
        abi::EV_CLOSE => "close",
        abi::EV_REQUEST => "request",
        abi::EV_RESPONSE => "response",
        _ => "?",
    };
    let head: String = ev
        .head
        .iter()
        .take(80)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    eprintln!(
        "event {kind} tgid={} fd={} watch={} side={} len={} head={} tail={} flags={} lport={} rport={} status={} {head:?}",
        h.tgid, h.fd, h.watch_id, h.side, h.len, h.head_len, h.tail_len, h.flags, h.lport, h.rport, h.status
    );
}
