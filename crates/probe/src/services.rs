//! Service names (from the systemd unit or container of a process, else its name) and the
//! cgroups of watched units and containers.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::procfs;

pub const DOCKER_ROOT: &str = "/var/lib/docker";
pub const PODMAN_STORAGE: &str = "/var/lib/containers/storage";

/// Where the container runtimes keep their state (Docker's `data-root`, Podman's
/// storage `graphroot`): container names come from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtimes {
    pub docker_root: PathBuf,
    pub podman_storage: PathBuf,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes {
            docker_root: DOCKER_ROOT.into(),
            podman_storage: PODMAN_STORAGE.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Unit(String),
    /// Full container id (hex).
    Container(String),
}

/// Reads a cgroup path: `.../x.service` -> unit; `docker-<id>.scope`, `libpod-<id>.scope`,
/// `cri-containerd-<id>.scope` or `/docker/<id>` -> container. The innermost match wins.
pub fn identity_from_cgroup(path: &str) -> Option<Identity> {
    for part in path.rsplit('/') {
        if let Some(scope) = part.strip_suffix(".scope") {
            let id = scope.rsplit('-').next().unwrap_or("");
            if is_container_id(id) {
                return Some(Identity::Container(id.to_string()));
            }
        }
        if is_container_id(part) {
            return Some(Identity::Container(part.to_string()));
        }
        if part.ends_with(".service") && !part.starts_with("user@") {
            return Some(Identity::Unit(part.to_string()));
        }
    }
    None
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The name the metrics use for a process: unit (without ".service"), container name
/// (or short id when the runtime's files are unreadable), else the process name (from /proc,
/// else `comm` as the kernel reported it when the process already exited).
pub fn service_name(pid: u32, comm: Option<&str>, runtimes: &Runtimes) -> String {
    let from_cgroup = procfs::cgroup_path(pid).and_then(|p| identity_from_cgroup(&p));
    match from_cgroup {
        Some(Identity::Unit(u)) => u.trim_end_matches(".service").to_string(),
        Some(Identity::Container(id)) => runtimes
            .container_name(&id)
            .unwrap_or_else(|| id[..12].into()),
        None => procfs::comm(pid)
            .or_else(|| comm.map(String::from))
            .unwrap_or_else(|| format!("pid-{pid}")),
    }
}

impl Runtimes {
    fn docker_containers(&self) -> PathBuf {
        self.docker_root.join("containers")
    }

    /// Container name from Docker's config.v2.json or Podman's containers.json.
    pub fn container_name(&self, id: &str) -> Option<String> {
        let docker = self.docker_containers().join(id).join("config.v2.json");
        if let Ok(text) = fs::read_to_string(docker) {
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            return v["Name"]
                .as_str()
                .map(|n| n.trim_start_matches('/').to_string());
        }
        self.podman_containers()
            .into_iter()
            .find(|(cid, _)| cid == id)
            .and_then(|(_, names)| names.into_iter().next())
    }

    fn podman_containers(&self) -> Vec<(String, Vec<String>)> {
        let json = self
            .podman_storage
            .join("overlay-containers/containers.json");
        let Ok(text) = fs::read_to_string(json) else {
            return vec![];
        };
        let Ok(serde_json::Value::Array(list)) = serde_json::from_str(&text) else {
            return vec![];
        };
        list.iter()
            .filter_map(|c| {
                let id = c["id"].as_str()?.to_string();
                let names = c["names"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                Some((id, names))
            })
            .collect()
    }

    /// Ids of the containers called `name` (Docker and Podman).
    pub fn container_ids(&self, name: &str) -> Vec<String> {
        let mut ids = vec![];
        if let Ok(dir) = fs::read_dir(self.docker_containers()) {
            for e in dir.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                if self.container_name(&id).as_deref() == Some(name) {
                    ids.push(id);
                }
            }
        }
        for (id, names) in self.podman_containers() {
            if names.iter().any(|n| n == name) {
                ids.push(id);
            }
        }
        ids
    }
}

/// cgroup v2 ids (directory inodes) of every cgroup under `root` whose directory name
/// matches, and of their descendants.
pub fn cgroup_ids(root: &Path, matches: &dyn Fn(&str) -> bool) -> Vec<u64> {
    let mut out = vec![];
    walk(root, false, matches, &mut out, 0);
    out
}

fn walk(dir: &Path, inside: bool, matches: &dyn Fn(&str) -> bool, out: &mut Vec<u64>, depth: u32) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        let hit = inside || matches(&name);
        if hit {
            if let Ok(m) = e.metadata() {
                out.push(m.ino());
            }
        }
        walk(&e.path(), hit, matches, out, depth + 1);
    }
}

/// cgroup ids of a systemd unit.
pub fn unit_cgroup_ids(root: &Path, unit: &str) -> Vec<u64> {
    cgroup_ids(root, &|name| name == unit)
}

/// cgroup ids of the containers called `name`.
pub fn container_cgroup_ids(root: &Path, name: &str, runtimes: &Runtimes) -> Vec<u64> {
    let ids = runtimes.container_ids(name);
    if ids.is_empty() {
        return vec![];
    }
    cgroup_ids(root, &|dir| ids.iter().any(|id| dir.contains(id.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2a9e0b7d4c3e8f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e";

    #[test]
    fn unit_from_cgroup() {
        assert_eq!(
            identity_from_cgroup("/system.slice/jellyfin.service"),
            Some(Identity::Unit("jellyfin.service".into()))
        );
        assert_eq!(
            identity_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice"),
            None
        );
        assert_eq!(identity_from_cgroup("/"), None);
    }

    #[test]
    fn containers_from_cgroup() {
        let docker = format!("/system.slice/docker-{ID}.scope");
        assert_eq!(
            identity_from_cgroup(&docker),
            Some(Identity::Container(ID.into()))
        );
        let podman = format!("/machine.slice/libpod-{ID}.scope/container");
        assert_eq!(
            identity_from_cgroup(&podman),
            Some(Identity::Container(ID.into()))
        );
        let cgroupfs = format!("/docker/{ID}");
        assert_eq!(
            identity_from_cgroup(&cgroupfs),
            Some(Identity::Container(ID.into()))
        );
    }

    #[test]
    fn walks_cgroup_directories() {
        let root = tempfile::tempdir().unwrap();
        let unit = root.path().join("system.slice/web.service");
        fs::create_dir_all(unit.join("sub")).unwrap();
        fs::create_dir_all(root.path().join("system.slice/other.service")).unwrap();
        let ids = unit_cgroup_ids(root.path(), "web.service");
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&fs::metadata(&unit).unwrap().ino()));
    }

    #[test]
    fn container_names_from_runtime_files() {
        let docker = tempfile::tempdir().unwrap();
        let podman = tempfile::tempdir().unwrap();
        let dir = docker.path().join("containers").join(ID);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.v2.json"),
            r#"{"ID":"x","Name":"/immich_server"}"#,
        )
        .unwrap();
        let pid2 = "1".repeat(64);
        fs::create_dir_all(podman.path().join("overlay-containers")).unwrap();
        fs::write(
            podman.path().join("overlay-containers/containers.json"),
            format!(r#"[{{"id":"{pid2}","names":["jellyfin"]}}]"#),
        )
        .unwrap();
        let rt = Runtimes {
            docker_root: docker.path().into(),
            podman_storage: podman.path().into(),
        };
        assert_eq!(rt.container_name(ID).as_deref(), Some("immich_server"));
        assert_eq!(rt.container_name(&pid2).as_deref(), Some("jellyfin"));
        assert_eq!(rt.container_ids("immich_server"), vec![ID.to_string()]);
        assert_eq!(rt.container_ids("jellyfin"), vec![pid2]);
        assert!(rt.container_ids("nope").is_empty());
    }
}
