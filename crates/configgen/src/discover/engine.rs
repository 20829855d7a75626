//! The running containers of a Docker or Podman API socket
//! (`GET /containers/json`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::Container;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    names: Vec<String>,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP", default)]
    ip: String,
    #[serde(default)]
    public_port: u16,
    #[serde(rename = "Type", default)]
    kind: String,
}

/// The containers the socket lists, in its order.
pub fn read(socket: &Path) -> Result<Vec<Container>> {
    let context = || format!("{}: Docker/Podman API", socket.display());
    let mut stream = UnixStream::connect(socket).with_context(context)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // HTTP/1.0: the answer is never chunked and ends when the connection closes.
    stream
        .write_all(b"GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        .with_context(context)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).with_context(context)?;
    let text = String::from_utf8_lossy(&response);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("{}: not an HTTP answer", context());
    };
    let status = head.lines().next().unwrap_or("");
    if status.split(' ').nth(1) != Some("200") {
        bail!("{}: {status}", context());
    }
    parse(body).with_context(context)
}

/// The containers of a `/containers/json` answer.
pub fn parse(body: &str) -> Result<Vec<Container>> {
    let listed: Vec<Listed> = serde_json::from_str(body)?;
    Ok(listed
        .into_iter()
        .filter_map(|c| {
            let name = c.names.first()?.trim_start_matches('/').to_string();
            let mut published: Vec<(String, u16)> = Vec::new();
            for p in c.ports {
                if p.kind == "tcp"
                    && p.public_port > 0
                    && !published.iter().any(|(_, port)| *port == p.public_port)
                {
                    published.push((p.ip, p.public_port));
                }
            }
            let opted_out = c
                .labels
                .as_ref()
                .and_then(|l| l.get(crate::plan::containers::container_label::ENABLE))
                .is_some_and(|v| v == "false");
            Some(Container {
                name,
                published,
                opted_out,
            })
        })
        .collect())
}
