//! What a valid value of each kind looks like: durations, label names,
//! host names, host:port, LAN ranges.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::plan::MAX_SWEEP_PREFIX;

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Milliseconds of a Prometheus duration (`1h30m`, `14d`, `500ms`, `0`): units
/// y w d h m s ms, each at most once and in that order. None if malformed.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            rest.get(..1)?
        };
        let i = UNITS.iter().position(|(u, _)| *u == unit)?;
        if i < next_unit {
            return None;
        }
        next_unit = i + 1;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// An IPv4 range of at most /22 written as its network address.
pub fn check_sweep_cidr(cidr: &str) -> Result<(), String> {
    let bad = || format!("`{cidr}` is not an IPv4 CIDR such as 192.168.1.0/24");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    if prefix < MAX_SWEEP_PREFIX {
        return Err(format!(
            "/{prefix} has {} addresses; a LAN sweep covers at most /{MAX_SWEEP_PREFIX} (1,024 addresses)",
            1u64 << (32 - prefix)
        ));
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(addr) & mask);
    if network != addr {
        return Err(format!(
            "`{cidr}` has host bits set; did you mean {network}/{prefix}?"
        ));
    }
    Ok(())
}

/// `host:port` or `[v6]:port` with a port in 1..=65535.
pub fn check_host_port(value: &str) -> Result<(), String> {
    let bad = || format!("`{value}` is not host:port (e.g. 192.168.1.20:445 or [fd00::1]:445)");
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(bad)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (None, port)
    } else {
        let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(format!(
                "`{value}`: write IPv6 addresses in brackets, e.g. [fd00::1]:445"
            ));
        }
        (Some(host), port)
    };
    if let Some(host) = host {
        if host.parse::<Ipv4Addr>().is_err() && !is_host_name(host) {
            return Err(format!(
                "`{host}` in `{value}` is not a host name or IP address"
            ));
        }
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!("`{value}`: port 0 is not a usable port")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("`{port}` in `{value}` is not a port (1-65535)")),
    }
}

/// A name that travels into labels, file names and regexes unquoted (service
/// names, log file jobs): letters, digits, '-' and '_'.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A DNS host name: dot-separated labels of letters, digits, '-' and '_'.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, ms) in [
            ("30s", 30_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("0", 0),
            ("1y2w", 0),
        ] {
            let parsed = parse_duration_ms(text);
            assert!(parsed.is_some(), "{text}");
            if ms != 0 {
                assert_eq!(parsed, Some(ms), "{text}");
            }
        }
        for text in [
            "",
            "30",
            "s",
            "1m1h",
            "1.5h",
            "1hh",
            "5 m",
            "-1s",
            "1d1d",
            "99999999999999999999y",
        ] {
            assert_eq!(parse_duration_ms(text), None, "{text}");
        }
    }

    #[test]
    fn host_ports() {
        for ok in [
            "192.168.1.20:445",
            "nas.lan:22",
            "[fd00::1]:53",
            "smtp.example.org:587",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "nas",
            "nas:0",
            "nas:http",
            ":80",
            "fd00::1:53",
            "[fd00::1]",
            "a b:1",
            "nas:65536",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sweep_cidrs() {
        assert_eq!(check_sweep_cidr("192.168.1.0/24"), Ok(()));
        assert_eq!(check_sweep_cidr("10.0.0.0/22"), Ok(()));
        assert!(check_sweep_cidr("10.0.0.0/21")
            .unwrap_err()
            .contains("2048 addresses"));
        assert!(check_sweep_cidr("192.168.1.7/24")
            .unwrap_err()
            .contains("192.168.1.0/24"));
        assert!(check_sweep_cidr("192.168.1.0").is_err());
        assert!(check_sweep_cidr("fd00::/120").is_err());
        assert!(check_sweep_cidr("10.0.0.0/33").is_err());
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("site"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
