//! Reading /proc: TCP socket tables, socket fds of processes, process names and cgroups.

use std::{
    collections::HashMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
};

pub const TCP_ESTABLISHED: u8 = 0x01;
pub const TCP_LISTEN: u8 = 0x0A;

/// One line of /proc/net/tcp or /proc/net/tcp6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: IpAddr,
    pub local_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
    pub state: u8,
    pub inode: u64,
}

/// Parses the kernel's hex address "0100007F:1F90" (IPv4) or 32 hex digits (IPv6),
/// each 32-bit word in host (little-endian) order.
fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_le_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some((ip, port))
}

pub fn parse_tcp_table(text: &str) -> Vec<TcpSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, local_port) = parse_addr(f.get(1)?)?;
            let (remote, remote_port) = parse_addr(f.get(2)?)?;
            Some(TcpSocket {
                local,
                local_port,
                remote,
                remote_port,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// TCP sockets of the network namespace of `pid` ("self" works too).
pub fn tcp_sockets(pid: &str) -> Vec<TcpSocket> {
    ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| {
            let text = fs::read_to_string(format!("/proc/{pid}/net/{t}")).unwrap_or_default();
            parse_tcp_table(&text)
        })
        .collect()
}

/// All process ids (thread-group leaders) in /proc.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Socket inode -> fd for the open fds of `pid`.
pub fn socket_fds(pid: u32) -> HashMap<u64, i32> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
            if let Ok(inode) = inode.parse() {
                out.insert(inode, fd);
            }
        }
    }
    out
}

/// Network namespace inode of `pid`.
pub fn netns(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

pub fn comm(pid: u32) -> Option<String> {
    let c = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let c = c.trim();
    (!c.is_empty()).then(|| c.to_string())
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The cgroup path of `pid` that names its service: the cgroup v2 path ("0::/...") when it
/// is not the root, else the systemd v1 hierarchy ("name=systemd").
pub fn cgroup_path(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    service_cgroup_path(&text)
}

pub fn service_cgroup_path(text: &str) -> Option<String> {
    let mut v2 = None;
    let mut systemd = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && ctrl.is_empty() {
            v2 = Some(path.to_string());
        } else if ctrl == "name=systemd" {
            systemd = Some(path.to_string());
        }
    }
    match v2 {
        Some(p) if p != "/" => Some(p),
        _ => systemd.or(v2),
    }
}

/// The cgroup v2 path of `pid` ("0::" line), used to find its cgroup id.
pub fn cgroup_v2_path(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
}

/// Mount point of the cgroup v2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on
/// hybrid hosts).
pub fn cgroup2_mount() -> Option<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(str::to_string))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 22222 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 0 10 -1
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_ipv4_table() {
        let s = parse_tcp_table(TCP);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s[0].local_port, 8080);
        assert_eq!(s[0].state, TCP_LISTEN);
        assert_eq!(s[1].remote_port, 0xD431);
        assert_eq!(s[1].state, TCP_ESTABLISHED);
        assert_eq!(s[1].inode, 22222);
    }

    #[test]
    fn parses_ipv6_table_and_maps_v4() {
        let s = parse_tcp_table(TCP6);
        assert_eq!(s[0].local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s[0].local_port, 80);
        assert_eq!(s[1].local, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(s[1].inode, 444);
    }

    #[test]
    fn ignores_garbage_lines() {
        assert!(parse_tcp_table("header\nnonsense\n 0: zz:zz\n").is_empty());
    }

    #[test]
    fn picks_the_service_cgroup() {
        let hybrid = "9:name=systemd:/system.slice/nginx.service\n0::/\n";
        assert_eq!(
            service_cgroup_path(hybrid).unwrap(),
            "/system.slice/nginx.service"
        );
        let v2 = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(
            service_cgroup_path(v2).unwrap(),
            "/system.slice/docker-abc.scope"
        );
        assert_eq!(service_cgroup_path("0::/\n").unwrap(), "/");
    }
}
