//! Connections that were already open when the probe started: accept/connect hooks never
//! saw them, so they are found in /proc/PID/net/tcp{,6} and /proc/PID/fd.

use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt,
    path::Path,
};

use httpflow::Side;

use crate::{
    procfs::{self, TcpSocket, TCP_ESTABLISHED, TCP_LISTEN},
    table::Peer,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    pub tgid: u32,
    pub fd: i32,
    pub watch: u32,
    pub side: Side,
    pub peer: Option<Peer>,
    pub local_port: u16,
}

pub struct Selectors<'a> {
    pub server_ports: &'a HashMap<u16, u32>,
    pub client_ports: &'a HashMap<u16, u32>,
    pub cgroups: &'a HashMap<u64, u32>,
    pub cgroup_root: Option<&'a Path>,
}

struct Netns {
    sockets: HashMap<u64, TcpSocket>,
    listening: HashSet<u16>,
}

/// Decides whether one established socket is watched, and from which side.
pub fn classify(
    sock: &TcpSocket,
    sel: &Selectors<'_>,
    cgroup_watch: Option<u32>,
    listening: &HashSet<u16>,
) -> Option<(u32, Side, Option<Peer>)> {
    if sock.state != TCP_ESTABLISHED {
        return None;
    }
    let peer = || {
        Some(Peer {
            address: sock.remote.to_string(),
            port: sock.remote_port,
        })
    };
    if let Some(&w) = sel.server_ports.get(&sock.local_port) {
        return Some((w, Side::Server, peer()));
    }
    if let Some(&w) = sel.client_ports.get(&sock.remote_port) {
        return Some((w, Side::Client, peer()));
    }
    let w = cgroup_watch?;
    if listening.contains(&sock.local_port) {
        Some((w, Side::Server, peer()))
    } else {
        Some((w, Side::Client, peer()))
    }
}

pub fn existing_connections(sel: &Selectors<'_>) -> Vec<Seeded> {
    let mut namespaces: HashMap<u64, Netns> = HashMap::new();
    let mut out = vec![];
    let me = std::process::id();
    for pid in procfs::pids() {
        if pid == me {
            continue;
        }
        let fds = procfs::socket_fds(pid);
        if fds.is_empty() {
            continue;
        }
        let cgroup_watch = sel
            .cgroup_root
            .filter(|_| !sel.cgroups.is_empty())
            .and_then(|root| {
                let path = procfs::cgroup_v2_path(pid)?;
                let ino = std::fs::metadata(root.join(path.trim_start_matches('/')))
                    .ok()?
                    .ino();
                sel.cgroups.get(&ino).copied()
            });
        let Some(ns) = procfs::netns(pid) else {
            continue;
        };
        let netns = namespaces.entry(ns).or_insert_with(|| {
            let all = procfs::tcp_sockets(&pid.to_string());
            Netns {
                listening: all
                    .iter()
                    .filter(|s| s.state == TCP_LISTEN)
                    .map(|s| s.local_port)
                    .collect(),
                sockets: all.into_iter().map(|s| (s.inode, s)).collect(),
            }
        });
        for (inode, fd) in fds {
            let Some(sock) = netns.sockets.get(&inode) else {
                continue;
            };
            if let Some((watch, side, peer)) = classify(sock, sel, cgroup_watch, &netns.listening) {
                out.push(Seeded {
                    tgid: pid,
                    fd,
                    watch,
                    side,
                    peer,
                    local_port: sock.local_port,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn sock(local_port: u16, remote_port: u16, state: u8) -> TcpSocket {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        TcpSocket {
            local: lo,
            local_port,
            remote: lo,
            remote_port,
            state,
            inode: 1,
        }
    }

    #[test]
    fn classifies_by_port_and_cgroup() {
        let server: HashMap<u16, u32> = [(8080, 0)].into();
        let client: HashMap<u16, u32> = [(5432, 1)].into();
        let cg = HashMap::new();
        let sel = Selectors {
            server_ports: &server,
            client_ports: &client,
            cgroups: &cg,
            cgroup_root: None,
        };
        let none = HashSet::new();
        assert_eq!(
            classify(&sock(8080, 40000, TCP_ESTABLISHED), &sel, None, &none)
                .unwrap()
                .1,
            Side::Server
        );
        let c = classify(&sock(40000, 5432, TCP_ESTABLISHED), &sel, None, &none).unwrap();
        assert_eq!((c.0, c.1), (1, Side::Client));
        assert_eq!(c.2.unwrap().port, 5432);
        assert!(classify(&sock(8080, 1, TCP_LISTEN), &sel, None, &none).is_none());
        assert!(classify(&sock(9000, 1, TCP_ESTABLISHED), &sel, None, &none).is_none());
        let listening: HashSet<u16> = [9000].into();
        assert_eq!(
            classify(&sock(9000, 1, TCP_ESTABLISHED), &sel, Some(2), &listening)
                .unwrap()
                .1,
            Side::Server
        );
        assert_eq!(
            classify(&sock(41000, 80, TCP_ESTABLISHED), &sel, Some(2), &listening)
                .unwrap()
                .1,
            Side::Client
        );
    }
}
