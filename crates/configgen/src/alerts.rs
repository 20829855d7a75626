//! The alert catalogue: which alerts exist, their severity, `for` duration and
//! threshold (with its meaning and unit), and the user's overrides of them.
//!
//! The PromQL of each alert lives in the rule templates (`rules/*.yml.j2`);
//! this table is the source of truth for everything an override can change.

use std::fmt;

use crate::diagnostic::ConfigIssue;
use crate::load::suggest::closest;
use crate::model::{AlertOverride, Config};

/// A rule group; rendered to `prometheus/rules/<name>.yml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Watchdog,
    Targets,
    Host,
    /// Host conditions that need a collector or a script beyond the basics:
    /// systemd timers, a pending reboot, ZFS pools.
    HostExtra,
    /// Disk health from SMART, written by a textfile script (smartmon).
    HostSmart,
    Probes,
    Red,
    Prometheus,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Group::Watchdog,
        Group::Targets,
        Group::Host,
        Group::HostExtra,
        Group::HostSmart,
        Group::Probes,
        Group::Red,
        Group::Prometheus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Watchdog => "watchdog",
            Group::Targets => "targets",
            Group::Host => "host",
            Group::HostExtra => "host_extra",
            Group::HostSmart => "host_smart",
            Group::Probes => "probes",
            Group::Red => "red",
            Group::Prometheus => "prometheus",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Warning,
    Info,
    /// Only the Watchdog: never notified, routed to the heartbeat.
    None,
}

impl Severity {
    /// The severities a user may choose in an override.
    pub const CHOOSABLE: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::None => "none",
        }
    }

    fn parse_choosable(s: &str) -> Option<Severity> {
        Self::CHOOSABLE.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unit of a threshold, with the range an override must stay in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Seconds,
    Days,
    Celsius,
    /// A count of events (e.g. restarts) within the window the meaning names.
    Count,
    /// 15-minute load average divided by the number of CPUs.
    LoadPerCpu,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Seconds => "s",
            Unit::Days => "days",
            Unit::Celsius => "°C",
            Unit::Count => "",
            Unit::LoadPerCpu => "per CPU",
        }
    }

    fn check(self, v: f64) -> Result<(), String> {
        if !v.is_finite() {
            return Err("must be a finite number".into());
        }
        match self {
            Unit::Percent if !(0.0..=100.0).contains(&v) => {
                Err(format!("is a percentage, must be within 0..=100, got {v}"))
            }
            Unit::Count if v < 0.0 => Err(format!("is a count, must be >= 0, got {v}")),
            Unit::Seconds | Unit::Days | Unit::Celsius | Unit::LoadPerCpu if v <= 0.0 => {
                Err(format!("must be > 0, got {v}"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub unit: Unit,
    /// What the number means, e.g. "free space below which ...".
    pub meaning: &'static str,
}

impl Threshold {
    /// The default with its unit, e.g. "5%", "0.05 s", "3".
    pub fn display(&self) -> String {
        let v = format_number(self.value);
        match self.unit {
            Unit::Percent => format!("{v}%"),
            Unit::Count => v,
            u => format!("{v} {}", u.symbol()),
        }
    }
}

/// One catalogue entry, with its documented defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alert {
    pub name: &'static str,
    pub group: Group,
    pub severity: Severity,
    /// `for` duration; None = fires on the first evaluation.
    pub for_: Option<&'static str>,
    pub threshold: Option<Threshold>,
    /// One line for the docs: what firing means.
    pub meaning: &'static str,
}

const fn alert(
    name: &'static str,
    group: Group,
    severity: Severity,
    for_: &'static str,
    meaning: &'static str,
) -> Alert {
    Alert {
        name,
        group,
        severity,
        for_: if for_.is_empty() { None } else { Some(for_) },
        threshold: None,
        meaning,
    }
}

impl Alert {
    const fn threshold(mut self, value: f64, unit: Unit, meaning: &'static str) -> Alert {
        self.threshold = Some(Threshold {
            value,
            unit,
            meaning,
        });
        self
    }
}

use Group as G;
use Severity as S;

/// Every alert this project ships, in rendering order.
pub const CATALOGUE: &[Alert] = &[
    alert("Watchdog", G::Watchdog, S::None, "",
        "Always fires while Prometheus and Alertmanager work; routed to the external heartbeat (alerting.watchdog_url_file, or watchdog_url), which alerts you when it stops."),
    alert("TargetDown", G::Targets, S::Warning, "2m",
        "Prometheus cannot scrape a target (up == 0): the exporter or service is down or unreachable, and its metrics and alerts are blind. Probe jobs are left out (the blackbox_exporter target stands for them), and so are node_exporter and blackbox_exporter (AlertSourceDown)."),
    alert("AlertSourceDown", G::Targets, S::Critical, "3m",
        "node_exporter or blackbox_exporter cannot be scraped: every host or service alert that reads it is blind, so it pages; other targets (dashboards, logs) stay TargetDown warnings."),
    alert("AgentNotReporting", G::Targets, S::Critical, "1m",
        "An agent host (series labelled host=...) sent node metrics in the last 24h but none in the last 2 minutes: the host, its network or its Alloy is down. Silence it after retiring a host on purpose."),
    // host
    alert("HostDiskFillingUp", G::Host, S::Warning, "1h",
        "A writable filesystem is low on space and, at the rate of the last 6h, will be full within 24h.")
        .threshold(15.0, Unit::Percent, "free space (of the filesystem size) below which a shrinking filesystem alerts"),
    alert("HostDiskFullSoon", G::Host, S::Critical, "10m",
        "A writable filesystem below the threshold will be full within 4 hours at the rate of the last 30 minutes, and still shrinks (a runaway log): paged while there is time to act.")
        .threshold(25.0, Unit::Percent, "free space (of the filesystem size) below which a fast-shrinking filesystem alerts"),
    alert("HostDiskAlmostFull", G::Host, S::Critical, "5m",
        "A writable filesystem is almost out of space, whatever its trend.")
        .threshold(5.0, Unit::Percent, "free space (of the filesystem size) below which it alerts"),
    alert("HostInodesFillingUp", G::Host, S::Warning, "1h",
        "A writable filesystem is low on inodes and, at the rate of the last 6h, will run out within 24h.")
        .threshold(15.0, Unit::Percent, "free inodes below which a shrinking filesystem alerts"),
    alert("HostInodesAlmostFull", G::Host, S::Critical, "30m",
        "A writable filesystem is almost out of inodes: no new files can be created.")
        .threshold(5.0, Unit::Percent, "free inodes below which it alerts"),
    alert("HostFilesystemDeviceError", G::Host, S::Warning, "10m",
        "node_exporter cannot stat a filesystem (disk gone, I/O errors, stale network mount)."),
    alert("HostFilesystemReadOnly", G::Host, S::Critical, "",
        "A filesystem that was writable within the last day is now read-only: the kernel remounted it after errors, and writes fail."),
    alert("HostOutOfMemory", G::Host, S::Critical, "3m",
        "Little memory is available (MemAvailable, 2-minute average, so that failed scrapes do not reset `for`): the OOM killer is near.")
        .threshold(8.0, Unit::Percent, "MemAvailable (of MemTotal) below which it alerts"),
    alert("HostSwapFillingUp", G::Host, S::Warning, "15m",
        "Swap is nearly full and pages are being read back from it (more than 10 swap-ins/s): the host is short of memory.")
        .threshold(80.0, Unit::Percent, "swap used (of swap size) above which, with swap-in activity, it alerts"),
    alert("HostOomKillDetected", G::Host, S::Warning, "",
        "The kernel OOM killer killed a process in the last 30 minutes."),
    alert("HostSystemdUnitFailed", G::Host, S::Warning, "5m",
        "A systemd unit is in the failed state."),
    alert("HostSystemdUnitCrashLooping", G::Host, S::Warning, "5m",
        "A systemd unit keeps restarting.")
        .threshold(3.0, Unit::Count, "restarts within 15 minutes above which it alerts"),
    alert("HostClockSkew", G::Host, S::Warning, "10m",
        "The system clock is off from its NTP source and not getting closer (quiet while the time daemon corrects it).")
        .threshold(0.05, Unit::Seconds, "absolute clock offset above which it alerts"),
    alert("HostClockNotSynchronising", G::Host, S::Warning, "10m",
        "The clock is not synchronised by NTP (no time daemon, or no reachable time server)."),
    alert("HostNetworkReceiveErrors", G::Host, S::Warning, "15m",
        "A physical network interface reports receive errors (cable, duplex, driver).")
        .threshold(1.0, Unit::Percent, "received packets with errors above which it alerts"),
    alert("HostNetworkTransmitErrors", G::Host, S::Warning, "15m",
        "A physical network interface reports transmit errors.")
        .threshold(1.0, Unit::Percent, "transmitted packets with errors above which it alerts"),
    alert("HostHighCpuLoad", G::Host, S::Info, "15m",
        "The CPUs have been busy for a long time.")
        .threshold(90.0, Unit::Percent, "CPU busy time (all CPUs averaged) above which it alerts"),
    alert("HostHighLoadAverage", G::Host, S::Warning, "30m",
        "More runnable or I/O-blocked tasks than the CPUs can serve.")
        .threshold(2.0, Unit::LoadPerCpu, "15-minute load average per CPU above which it alerts"),
    alert("HostTemperatureHigh", G::Host, S::Warning, "5m",
        "A hardware sensor is within 5 °C of its chip's critical temperature, or (for chips without one) above the threshold; sensors stuck at one value for 30 minutes or reading 120 °C and more without a critical value (unconnected inputs) are ignored.")
        .threshold(80.0, Unit::Celsius, "temperature above which a sensor without its own critical value alerts"),
    alert("HostConntrackNearLimit", G::Host, S::Warning, "5m",
        "The connection-tracking table is nearly full; new connections will be dropped.")
        .threshold(80.0, Unit::Percent, "conntrack entries (of the limit) above which it alerts"),
    alert("HostFileDescriptorsNearLimit", G::Host, S::Warning, "5m",
        "The kernel's open file handles are nearly exhausted.")
        .threshold(80.0, Unit::Percent, "allocated file handles (of fs.file-max) above which it alerts"),
    alert("HostRaidDegraded", G::Host, S::Critical, "5m",
        "A software RAID (md) array has fewer active disks than it needs: one more failure may lose data."),
    alert("HostRaidDiskFailed", G::Host, S::Warning, "5m",
        "A software RAID (md) array contains a failed disk."),
    alert("HostRebooted", G::Host, S::Info, "",
        "The host booted less than 10 minutes ago."),
    // host_extra
    alert("HostSystemdTimerLate", G::HostExtra, S::Warning, "15m",
        "An active systemd timer (a backup, a scrub, a renewal) has not run for longer than its maximum age: `alerting.timer_max_age` per timer unit, the threshold for the others. Timers that never ran are left out.")
        .threshold(8.0, Unit::Days, "time since the last run above which a timer not listed in alerting.timer_max_age alerts"),
    alert("HostRebootRequired", G::HostExtra, S::Warning, "1h",
        "The host waits for a reboot into an updated kernel or system (node_reboot_required, written by a textfile script such as Debian's prometheus-node-exporter-collectors)."),
    alert("ZfsPoolUnhealthy", G::HostExtra, S::Critical, "5m",
        "A ZFS pool is not online (degraded, faulted, offline, removed, unavailable or suspended): redundancy is lost or data is unreachable."),
    alert("ZfsPoolAlmostFull", G::HostExtra, S::Critical, "15m",
        "A ZFS pool is almost full, counted once per pool (not per dataset) from its mounted datasets: ZFS slows down and then refuses writes.")
        .threshold(10.0, Unit::Percent, "free space of the pool (of its used plus free space) below which it alerts"),
    alert("HostDiskLatencyHigh", G::HostExtra, S::Warning, "15m",
        "A disk takes long for every read or write it completes, while it is in use: a dying disk retrying, a failing cable or controller. A disk that is merely busy (a backup) at normal latency stays quiet.")
        .threshold(0.5, Unit::Seconds, "average time per completed operation above which it alerts"),
    // host_smart
    alert("DiskSmartUnhealthy", G::HostSmart, S::Critical, "",
        "A disk with SMART enabled fails its overall health self-assessment (smartctl -H): the drive itself predicts its failure. Disks without SMART support or with SMART disabled are left out."),
    alert("DiskSmartReallocatedSectorsGrowing", G::HostSmart, S::Warning, "",
        "A disk reallocated sectors within the last day (SMART attribute 5 grew): its surface is failing. A constant count from long ago stays quiet."),
    alert("DiskSmartPendingSectors", G::HostSmart, S::Warning, "",
        "A disk has sectors it could not read (SMART 197 current pending or 198 offline uncorrectable above 0): data on them may be lost, and the disk is dying."),
    // probes
    alert("ServiceProbeFailed", G::Probes, S::Critical, "1m",
        "A service check (HTTP, TCP, ICMP or DNS through blackbox_exporter) fails: the service is down or unreachable."),
    alert("ServiceHttpStatusUnexpected", G::Probes, S::Warning, "5m",
        "An HTTP service answers, but with a status it should not (e.g. 5xx, 404): the server runs, the application fails."),
    alert("ServiceProbeSlow", G::Probes, S::Warning, "5m",
        "A succeeding service check takes long.")
        .threshold(2.0, Unit::Seconds, "probe duration above which it alerts"),
    alert("TlsCertificateExpiringSoon", G::Probes, S::Warning, "15m",
        "A service's TLS certificate expires soon: renewal is not working.")
        .threshold(20.0, Unit::Days, "days before expiry below which it alerts"),
    alert("TlsCertificateAboutToExpire", G::Probes, S::Critical, "15m",
        "A service's TLS certificate is about to expire; clients will refuse it.")
        .threshold(3.0, Unit::Days, "days before expiry below which it alerts"),
    alert("GatewayDown", G::Probes, S::Critical, "1m",
        "The router (network.gateway) does not answer pings: the LAN or the router is down."),
    alert("InternetDown", G::Probes, S::Critical, "1m",
        "No public resolver (network.resolvers) answers pings while the gateway does: the internet uplink is down."),
    // red
    alert("ServiceHighErrorRate", G::Red, S::Warning, "10m",
        "Many of a service's HTTP requests fail with 5xx or are cut off (measured by the eBPF RED probe); needs at least 0.1 request/s.")
        .threshold(5.0, Unit::Percent, "server errors (of all requests) above which it alerts"),
    alert("ServiceHighLatency", G::Red, S::Warning, "10m",
        "A service's 95th percentile HTTP request duration is high (eBPF RED probe); needs at least 0.1 request/s.")
        .threshold(1.0, Unit::Seconds, "p95 request duration above which it alerts"),
    alert("RedProbeDroppingEvents", G::Red, S::Info, "10m",
        "The RED probe loses kernel events (ring buffer full): its request counts are too low."),
    // prometheus + alertmanager
    alert("PrometheusConfigReloadFailed", G::Prometheus, S::Warning, "10m",
        "Prometheus failed to reload its configuration and runs an old one."),
    alert("PrometheusRuleEvaluationFailures", G::Prometheus, S::Critical, "10m",
        "Prometheus fails to evaluate rules: alerts may be missed."),
    alert("PrometheusNotConnectedToAlertmanagers", G::Prometheus, S::Warning, "10m",
        "Prometheus has no Alertmanager to send alerts to."),
    alert("PrometheusNotificationsFailing", G::Prometheus, S::Warning, "15m",
        "Prometheus fails to send alerts to Alertmanager.")
        .threshold(1.0, Unit::Percent, "failed sends (of all sends) above which it alerts"),
    alert("PrometheusNotificationQueueFilling", G::Prometheus, S::Warning, "15m",
        "Prometheus's queue of alerts for Alertmanager will be full within 30 minutes: alerts will be dropped."),
    alert("PrometheusTsdbCompactionsFailing", G::Prometheus, S::Warning, "4h",
        "Prometheus's storage keeps failing to compact blocks (disk full or corruption)."),
    alert("PrometheusTsdbReloadsFailing", G::Prometheus, S::Warning, "4h",
        "Prometheus's storage keeps failing to reload blocks from disk."),
    alert("PrometheusScrapeSamplesRejected", G::Prometheus, S::Warning, "10m",
        "Prometheus drops scraped samples (out of order, duplicate or out-of-bounds timestamps)."),
    alert("AlertmanagerConfigReloadFailed", G::Prometheus, S::Warning, "10m",
        "Alertmanager failed to reload its configuration and runs an old one."),
    alert("AlertmanagerNotificationsFailing", G::Prometheus, S::Critical, "5m",
        "Alertmanager lost notifications (after its retries) through an integration (email, webhook, ntfy) in the last hour: you are not being told. Works however rarely alerts are sent.")
        .threshold(0.0, Unit::Count, "notifications lost within the last hour above which it alerts"),
];

/// Why an alert's condition, `for` and severity are what they are, where the
/// choice was weighed against incidents and everyday noise (docs/alerts.md).
/// Critical means a person must act now, warning today, info reaches nobody.
pub const CHOICES: &[(&str, &str)] = &[
    ("HostDiskFullSoon", "A log looping on an error fills / in an hour; before, the first alert came after the disk was full (almost-full needed 30 minutes below 5%). Full within 4 hours at the 30-minute trend, below 25% free, and still shrinking over the last 5 minutes, for 10m: the runaway test pages 39 minutes before full; a backup that wrote 18% of a disk in 20 minutes and stopped at 22% free stays quiet."),
    ("HostDiskAlmostFull", "Below 5% free is critical whatever the trend, now after 5 minutes (was 30): writes fail soon and nothing else will tell. A steady filesystem at 8% free (a small /boot that never grows) stays quiet by choice: it is not an emergency, and it alerts as soon as it shrinks (HostDiskFillingUp) or reaches 5%."),
    ("HostDiskFillingUp", "Kept as the daily warning (full within 24h at the 6h trend, below 15%, for 1h); silenced by the critical disk alerts of the same filesystem."),
    ("HostFilesystemReadOnly", "New. The kernel remounts a filesystem read-only after I/O or journal errors; every service writing there fails at once, so it pages on the first evaluation. A filesystem read-only by design (squashfs, a ro mount) never was writable in the last day and stays quiet."),
    ("HostSwapFillingUp", "New, a warning. Full swap alone is common and harmless (cold pages); with pages read back (swap-in) for 15 minutes the host is thrashing and will slow down or OOM."),
    ("HostOutOfMemory", "Critical below 8% available (6% was only a warning after 5 minutes): the OOM killer is minutes away. A 2-minute average feeds the rule because a failed scrape writes staleness markers that reset `for` on an instant vector: with every fourth scrape failing it never fired. A 3-minute dip stays quiet."),
    ("TargetDown", "A warning for daemons whose absence hides dashboards or logs; the exporters that feed alerts page instead (AlertSourceDown)."),
    ("AlertSourceDown", "node_exporter or blackbox_exporter down makes every host or service alert blind: critical after 3 minutes (a restart by nixos-rebuild takes seconds)."),
    ("AgentNotReporting", "A dead agent's series vanish without staleness markers, so the instant lookback (5m) plus `for: 5m` paged after about 10 minutes. Now: no sample within 2 minutes, for 1m: about 3-4 minutes; a remote-write gap of two samples stays quiet."),
    ("GatewayDown", "`for` 1m, the same as ServiceProbeFailed, so that the cause reaches Alertmanager within one group wait of its consequences and inhibits them."),
    ("InternetDown", "`for` 1m for the same reason as GatewayDown."),
    ("HostClockSkew", "Quiet while the offset shrinks: after a suspend or a step, chrony slews the clock back over minutes and the old rule alarmed meanwhile. Fires when the offset is above the threshold and not getting closer."),
    ("HostTemperatureHigh", "Unconnected motherboard inputs read a fixed value (often 85-127 °C) or float at implausible ones: a sensor that has not changed for 30 minutes, or reads 120 °C and more without a critical value, is ignored. Real sensors move by a degree now and then."),
    ("AlertmanagerNotificationsFailing", "Any notification lost after Alertmanager's retries in the last hour, for 5m: a home server sends rarely, so the old 5-minute failure ratio was 0/0 between sends and its `for` never completed."),
    ("HostHighLoadAverage", "Now a warning (was info, which reaches nobody): a 15-minute load above 2 per CPU for 30 minutes means tasks have waited for CPU or disk for half an hour, which a person should look at today. A 20-minute backup or transcode at 2.5 per CPU stays quiet."),
    ("HostSystemdTimerLate", "New, a warning. Late is measured from the last trigger of active timers only (disabled timers keep an old value, never-run ones read 0), with a maximum age per timer (alerting.timer_max_age) and 8 days for the rest, so that no stock daily or weekly timer alarms; a nightly backup gets 26h."),
    ("HostRebootRequired", "New, a warning after 1 hour: an upgrade that needs a reboot is something to do today, and the hour leaves room for the reboot that usually follows an upgrade (a host rebooted 20 minutes after its update stays quiet)."),
    ("ZfsPoolUnhealthy", "New, critical like HostRaidDegraded: any state but online means lost redundancy or unreachable data. 5 minutes of `for` let a disk hot-swap (a 2-minute removed state) pass quietly."),
    ("DiskSmartUnhealthy", "New, critical on the first evaluation: a failed health self-assessment is the drive's own verdict, and smartmon refreshes it only every 15 minutes. Debian's smartmon.sh writes smartmon_device_smart_healthy 0 also for a disk that answers no health check (SMART unsupported or disabled), so the rule requires smartmon_device_smart_enabled 1."),
    ("DiskSmartReallocatedSectorsGrowing", "New, a warning: many healthy old disks carry a few reallocated sectors for years, so the count alone says little; new reallocations within a day mean the surface is failing now. Measured against the day's minimum, so that a disk asleep in standby (smartmon skips it) does not hide the growth."),
    ("DiskSmartPendingSectors", "New, a warning: pending or offline-uncorrectable sectors are unreadable data now, one per disk (the larger of the two counts). Not critical: a rewrite may remap them, and a failed health check (DiskSmartUnhealthy) pages."),
    ("HostDiskLatencyHigh", "New, a warning: half a second per operation for 15 minutes is ten times what a loaded spinning disk takes (a backup saturating it stays near 20-100 ms) and a hundred times an SSD's, while a disk retrying bad sectors takes seconds. Saturation alone is not alerted on (backups saturate disks every night), and disks doing under one operation per two seconds are left out so that one spin-up does not count."),
    ("ZfsPoolAlmostFull", "New, critical below 10% free for 15 minutes, once per pool instead of once per dataset: ZFS slows down past about 90% and refuses writes near full. Counted from the mounted datasets (node_exporter has no pool size): a dataset at its quota does not make its pool look full."),
];

pub fn find(name: &str) -> Option<&'static Alert> {
    CATALOGUE.iter().find(|a| a.name == name)
}

/// An alert with the user's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub alert: &'static Alert,
    pub enabled: bool,
    pub severity: String,
    pub for_: Option<String>,
    pub threshold: Option<f64>,
}

/// The catalogue with `alerting.overrides` applied. Overrides that
/// [`check_overrides`] rejects are expected to have stopped the config earlier.
pub fn resolve(cfg: &Config) -> Vec<Resolved> {
    CATALOGUE
        .iter()
        .map(|a| {
            let o = cfg.alerting.overrides.get(a.name);
            let o = o.cloned().unwrap_or_default();
            Resolved {
                alert: a,
                enabled: o.enabled.unwrap_or(true),
                severity: o.severity.unwrap_or_else(|| a.severity.to_string()),
                for_: o.for_.or(a.for_.map(str::to_string)),
                threshold: a.threshold.map(|t| o.threshold.unwrap_or(t.value)),
            }
        })
        .collect()
}

/// Overrides naming an alert that does not exist, or with values that do not fit it.
pub fn check_overrides(cfg: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    for (name, o) in &cfg.alerting.overrides {
        let path = format!("alerting.overrides.{name}");
        match find(name) {
            None => issues.push(ConfigIssue::new(&path, unknown_alert_message(name))),
            Some(a) => check_override(a, o, &path, &mut issues),
        }
    }
    issues
}

fn check_override(a: &Alert, o: &AlertOverride, path: &str, issues: &mut Vec<ConfigIssue>) {
    if let Some(v) = o.threshold {
        match a.threshold {
            None => issues.push(ConfigIssue::new(
                format!("{path}.threshold"),
                format!(
                    "{} has no threshold; only enabled, for and severity can be overridden",
                    a.name
                ),
            )),
            Some(t) => {
                if let Err(e) = t.unit.check(v) {
                    issues.push(ConfigIssue::new(
                        format!("{path}.threshold"),
                        format!("the threshold ({}) {e}", t.meaning),
                    ));
                }
            }
        }
    }
    if let Some(s) = &o.severity {
        if a.severity == Severity::None {
            issues.push(ConfigIssue::new(
                format!("{path}.severity"),
                format!(
                    "the severity of {} is fixed (it routes to the heartbeat)",
                    a.name
                ),
            ));
        } else if Severity::parse_choosable(s).is_none() {
            issues.push(ConfigIssue::new(
                format!("{path}.severity"),
                format!(
                    "must be one of {}; got `{s}`",
                    Severity::CHOOSABLE.map(Severity::as_str).join(", ")
                ),
            ));
        }
    }
}

fn unknown_alert_message(name: &str) -> String {
    let names: Vec<&str> = CATALOGUE.iter().map(|a| a.name).collect();
    match closest(name, &names) {
        Some(suggestion) => format!("no alert named `{name}`; did you mean `{suggestion}`?"),
        None => format!("no alert named `{name}` (the alerts are listed in docs/alerts.md)"),
    }
}

/// Formats a threshold the way it appears in PromQL and docs (5, not 5.0).
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The markdown table in docs/alerts.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Alerts\n\n\
         Generated from `crates/configgen/src/alerts.rs` (`cargo test -p configgen --test alerts_doc` \
         fails when this file is stale; `UPDATE_DOCS=1` rewrites it). The PromQL is in \
         `crates/configgen/rules/*.yml.j2`, the behavioural tests (`promtool test rules`, a case where \
         each alert fires and where it stays silent) in `crates/configgen/rules/tests/`; run them with \
         `cargo test -p configgen --test promtool_rules`. The `host_extra` alerts need a collector, \
         a script or a line of config, and the Loki ruler adds log alerts: see \
         [host-checks.md](host-checks.md).\n\n\
         Tune any alert in the config:\n\n\
         ```toml\n\
         [alerting.overrides.HostDiskAlmostFull]\n\
         threshold = 3     # replaces the threshold (unit below)\n\
         for = \"15m\"       # replaces the `for` duration\n\
         severity = \"warning\"  # critical | warning | info\n\
         # enabled = false   # removes the alert\n\
         ```\n\n\
         | Alert | Group | Severity | For | Threshold | Meaning |\n\
         |---|---|---|---|---|---|\n",
    );
    for a in CATALOGUE {
        let threshold = match a.threshold {
            None => "–".to_string(),
            Some(t) => format!("{}: {}", t.display(), t.meaning),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            a.name,
            a.group.name(),
            a.severity,
            a.for_.unwrap_or("–"),
            threshold,
            a.meaning
        ));
    }
    out.push_str(
        "\n## Why these conditions\n\n\
         Critical means a person must act now, warning means today, info reaches nobody. \
         The choices below were weighed against incidents and everyday noise; each has a \
         promtool case where it fires and one where it stays silent.\n\n",
    );
    for (name, why) in CHOICES {
        out.push_str(&format!("- **{name}**: {why}\n"));
    }
    out.push_str(&inhibitions_markdown());
    out.push_str(DELIVERY_MARKDOWN);
    out
}

/// How notifications reach people, and how a failure to deliver is noticed.
const DELIVERY_MARKDOWN: &str = "\n## Delivery\n\n\
- **Lost notifications are told**: AlertmanagerNotificationsFailing fires when any notification \
  was lost (after Alertmanager's own retries) in the last hour, however rarely alerts are sent. \
  The Watchdog heartbeat (`alerting.watchdog_url_file`, or `watchdog_url`) covers a dead \
  Alertmanager.\n\
- **Secret files**: configgen never reads secrets when rendering (it may run on another machine). \
  `configgen check`, run on the monitoring host, warns when a secret file it can read would break \
  its reader: an SMTP `password_file` ending with a newline (`echo pw > file`) is sent byte for \
  byte by Alertmanager 0.25 (Debian bookworm) and authentication fails; 0.27 and later trim it. \
  Write it with `printf '%s' 'pw' > file`.\n\
- **ntfy**: critical alerts arrive with priority 5 and a 🚨 tag, warnings with priority 4 and ⚠️, \
  the rest with priority 3; the title is the alert's summary (or how many alerts of which kind), \
  prefixed `Resolved:` when resolved. Resolved messages keep their alert's priority. With the \
  topic URL in a file (`url_file`, Alertmanager 0.34), the same settings travel as ntfy's \
  `X-...` headers.\n\
- **Email**: the subject is `[SEVERITY] summary` (`[RESOLVED] ...` when resolved), with a \
  plain-text part next to the HTML one.\n\
- **Links** (email buttons, ntfy click, the graph link of each alert) use `alerting.external_url` \
  (e.g. `http://monitor.lan`) with each daemon's port: Prometheus and Alertmanager get it as \
  `--web.external-url`. Unset, they point at the listen address, which other devices cannot open.\n\
- **Telegram, Discord, Pushover**: `type = \"telegram\"` (`bot_token_file`, `chat_id`), \
  `\"discord\"` (`webhook_url_file`) and `\"pushover\"` (`user_key_file`, `token_file`) take \
  their credentials from files only, which Alertmanager reads since 0.26 (Discord 0.27): with \
  `alertmanager.version = \"0.25\"` (Debian bookworm) configgen refuses them; bridge through ntfy \
  or a webhook there. They get the email's subject as title (Telegram: first line) and its \
  plain-text body; Pushover sends critical alerts with high priority, the rest with normal \
  priority. Alertmanager uses Pushover's key files byte for byte: `configgen check` warns about \
  a trailing newline.\n\
- **URL files**: webhook and heartbeat URLs may come from a file (`url_file`, \
  `watchdog_url_file`) unless `alertmanager.version = \"0.25\"` (docs/secrets.md).\n";

/// The docs section on inhibition rules and grouping.
fn inhibitions_markdown() -> String {
    let mut out = String::from(
        "\n## One message per incident\n\n\
         Alertmanager groups alerts by `alerting.group_by` (default: `alertname`), so the HTTP, TCP \
         and ICMP checks of a down service, or three failed units, arrive as one message. Inhibition \
         rules (`crates/configgen/src/inhibitions.rs`) keep the consequences of a cause quiet while \
         the cause fires, and a critical alert quiet the warning about the same object. Each rule has \
         a test of its own against the real Alertmanager (`cargo test -p configgen --test \
         inhibitions_live`).\n\n\
         Two service labels tell Alertmanager what a check depends on:\n\n\
         ```toml\n\
         [[services]]\n\
         name = \"blog\"\n\
         labels = { needs = \"internet\" }   # silenced while InternetDown fires\n\
         [[services]]\n\
         name = \"jellyfin\"\n\
         labels = { runs_on = \"nas\" }      # silenced while AgentNotReporting fires for host nas\n\
         ```\n\n\
         A consequence is only silenced while its cause fires: GatewayDown, InternetDown and \
         ServiceProbeFailed share the same `for` (1m) so that they reach Alertmanager within one \
         group wait of each other. AgentNotReporting needs about 3 minutes of silence, so a check of \
         a service on that host may be told once before it.\n\n\
         | Rule | Silencing alert | Silenced alerts | Same | Why |\n\
         |---|---|---|---|---|\n",
    );
    for r in crate::inhibitions::RULES {
        let code = |m: &[&str]| {
            m.iter()
                .map(|m| format!("`{}`", m.replace('|', "\\|")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.name,
            code(r.source),
            code(r.target),
            if r.equal.is_empty() {
                "–".to_string()
            } else {
                r.equal.join(", ")
            },
            r.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertOverride;

    fn cfg_with(name: &str, o: AlertOverride) -> Config {
        let mut cfg = Config::default();
        cfg.alerting.overrides.insert(name.into(), o);
        cfg
    }

    #[test]
    fn choices_name_catalogue_alerts_once() {
        for (i, (name, _)) in CHOICES.iter().enumerate() {
            assert!(find(name).is_some(), "{name}");
            assert!(CHOICES[i + 1..].iter().all(|(n, _)| n != name), "{name}");
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in CATALOGUE.iter().enumerate() {
            assert!(
                CATALOGUE[i + 1..].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn unknown_name_suggests_the_closest() {
        let issues = check_overrides(&cfg_with("HostDiskAlmostFul", AlertOverride::default()));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "alerting.overrides.HostDiskAlmostFul");
        assert!(
            issues[0]
                .message
                .contains("did you mean `HostDiskAlmostFull`?"),
            "{}",
            issues[0].message
        );
        let issues = check_overrides(&cfg_with("Completely", AlertOverride::default()));
        assert!(
            !issues[0].message.contains("did you mean"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn threshold_on_alert_without_one_is_rejected() {
        let o = AlertOverride {
            threshold: Some(1.0),
            ..Default::default()
        };
        let issues = check_overrides(&cfg_with("HostOomKillDetected", o));
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].path,
            "alerting.overrides.HostOomKillDetected.threshold"
        );
        assert!(issues[0].message.contains("has no threshold"));
    }

    #[test]
    fn percentage_out_of_range_is_rejected() {
        let o = AlertOverride {
            threshold: Some(150.0),
            ..Default::default()
        };
        let issues = check_overrides(&cfg_with("HostDiskAlmostFull", o));
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].message.contains("0..=100"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn invalid_severity_is_rejected() {
        let o = AlertOverride {
            severity: Some("page".into()),
            ..Default::default()
        };
        let issues = check_overrides(&cfg_with("TargetDown", o));
        let paths: Vec<_> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["alerting.overrides.TargetDown.severity"]);
        assert!(issues[0].message.contains("got `page`"));
    }

    #[test]
    fn watchdog_severity_is_fixed() {
        let o = AlertOverride {
            severity: Some("critical".into()),
            ..Default::default()
        };
        assert_eq!(check_overrides(&cfg_with("Watchdog", o)).len(), 1);
    }

    #[test]
    fn valid_overrides_pass_and_apply() {
        let o = AlertOverride {
            enabled: Some(true),
            threshold: Some(3.0),
            for_: Some("1h30m".into()),
            severity: Some("warning".into()),
        };
        let cfg = cfg_with("HostDiskAlmostFull", o);
        assert_eq!(check_overrides(&cfg), []);
        let r = resolve(&cfg);
        let r = r
            .iter()
            .find(|r| r.alert.name == "HostDiskAlmostFull")
            .unwrap();
        assert_eq!(r.threshold, Some(3.0));
        assert_eq!(r.for_.as_deref(), Some("1h30m"));
        assert_eq!(r.severity, "warning");
    }

    #[test]
    fn numbers_print_as_in_promql() {
        assert_eq!(format_number(5.0), "5");
        assert_eq!(format_number(0.05), "0.05");
        assert_eq!(format_number(86400.0), "86400");
    }
}
