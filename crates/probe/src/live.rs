//! The requests in flight now: served as JSON on `/requests` (from the collector thread,
//! which owns the connection table) and printed by `homelab-probe requests`.

use std::{io::Write, process::ExitCode, time::Duration};

use serde::{Deserialize, Serialize};

/// One request whose response is not complete yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRequest {
    pub service: String,
    /// "server" (the watched process answers it) or "client" (it sent it).
    pub side: String,
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// Since the first request byte.
    pub age_seconds: f64,
    /// Server side: the client's address and port.
    pub client: Option<String>,
    /// Client side: the server's address and port.
    pub server: Option<String>,
    pub pid: u32,
    pub fd: i32,
    /// `pid/fd`.
    pub connection: String,
}

/// A question to the collector thread, answered at its next poll (50 ms at most).
pub type Query = tokio::sync::oneshot::Sender<Vec<LiveRequest>>;

/// How the HTTP endpoint asks the collector (None: nothing is watched).
pub type Asker = Option<std::sync::mpsc::Sender<Query>>;

pub async fn ask(asker: &Asker) -> Vec<LiveRequest> {
    let Some(tx) = asker else {
        return vec![];
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if tx.send(reply).is_err() {
        return vec![];
    }
    answer.await.unwrap_or_default()
}

fn format_age(seconds: f64) -> String {
    if seconds < 10.0 {
        format!("{:.0}ms", seconds * 1000.0)
    } else if seconds < 600.0 {
        format!("{seconds:.1}s")
    } else {
        format!("{:.0}m", seconds / 60.0)
    }
}

/// A fixed-width table, oldest request first.
pub fn table(requests: &[LiveRequest]) -> String {
    let header = [
        "SERVICE",
        "SIDE",
        "METHOD",
        "PATH",
        "AGE",
        "PEER",
        "CONNECTION",
    ];
    let rows: Vec<[String; 7]> = requests
        .iter()
        .map(|r| {
            [
                r.service.clone(),
                r.side.clone(),
                r.method.clone(),
                r.path.clone(),
                format_age(r.age_seconds),
                r.client.clone().or(r.server.clone()).unwrap_or_default(),
                r.connection.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<LiveRequest>> {
    let resp = client.get(url).send().await?.error_for_status()?;
    Ok(resp.json().await?)
}

/// `homelab-probe requests`: prints the table once, or every `watch` seconds like `top`.
pub fn command(base: &str, watch: Option<f64>) -> ExitCode {
    let url = format!("{}/requests", base.trim_end_matches('/'));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("homelab-probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("homelab-probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let requests = match rt.block_on(fetch(&client, &url)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("homelab-probe: cannot read {url}: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        let shown = match watch {
            Some(every) => write!(
                out,
                "\x1b[H\x1b[2J{} request(s) in flight, from {url}, every {every} s\n\n{}",
                requests.len(),
                table(&requests)
            ),
            None => write!(out, "{}", table(&requests)),
        };
        if shown.and_then(|()| out.flush()).is_err() {
            return ExitCode::SUCCESS; // stdout closed (e.g. piped to head)
        }
        drop(out);
        match watch {
            Some(every) => std::thread::sleep(Duration::from_secs_f64(every)),
            None => return ExitCode::SUCCESS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_oldest_first() {
        let r = |path: &str, age: f64, client: Option<&str>, server: Option<&str>| LiveRequest {
            service: "web".into(),
            side: if client.is_some() { "server" } else { "client" }.into(),
            method: "GET".into(),
            path: path.into(),
            age_seconds: age,
            client: client.map(Into::into),
            server: server.map(Into::into),
            pid: 42,
            fd: 7,
            connection: "42/7".into(),
        };
        let text = table(&[
            r("/slow", 12.34, Some("127.0.0.1:50000"), None),
            r("/a", 0.0421, None, Some("[::1]:80")),
        ]);
        assert_eq!(
            text,
            "SERVICE  SIDE    METHOD  PATH   AGE    PEER             CONNECTION\n\
             web      server  GET     /slow  12.3s  127.0.0.1:50000  42/7\n\
             web      client  GET     /a     42ms   [::1]:80         42/7\n"
        );
    }
}
