//! Helpers shared by the Loki, Alloy, Tempo and Grafana renderers.

use anyhow::{bail, Context, Result};

use crate::plan;
use crate::validate::parse_duration_ms;

/// `http://host:port` of a daemon on this host (a wildcard listener is
/// reached over loopback).
pub fn local_url(listen: &str, port: u16) -> String {
    format!("http://{}", plan::scrape_address(listen, port))
}

/// A Prometheus duration ("30d", "1h30m", "2w") as a Go duration in its
/// largest whole unit ("720h", "90m"), which Loki and Tempo both accept
/// (Tempo parses with Go's time.ParseDuration: no "d" unit).
pub fn go_duration(field: &str, text: &str) -> Result<String> {
    let ms = parse_duration_ms(text)
        .filter(|ms| ms % 1000 == 0)
        .with_context(|| {
            format!("{field}: invalid duration {text:?} (expected e.g. \"30d\", \"12h\", \"90m\")")
        })?;
    if ms == 0 {
        bail!("{field}: duration must be greater than zero");
    }
    Ok(match ms / 1000 {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_go_durations() {
        assert_eq!(go_duration("x", "30d").unwrap(), "720h");
        assert_eq!(go_duration("x", "2w").unwrap(), "336h");
        assert_eq!(go_duration("x", "1h30m").unwrap(), "90m");
        assert_eq!(go_duration("x", "45s").unwrap(), "45s");
        let err = go_duration("tempo.retention", "14 days").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("tempo.retention: invalid duration"));
        assert!(go_duration("x", "0d").is_err());
        assert!(go_duration("x", "").is_err());
    }

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(local_url("0.0.0.0", 3100), "http://127.0.0.1:3100");
        assert_eq!(local_url("::1", 3100), "http://[::1]:3100");
        assert_eq!(local_url("::", 3100), "http://[::1]:3100");
        assert_eq!(local_url("10.0.0.2", 3100), "http://10.0.0.2:3100");
    }
}
