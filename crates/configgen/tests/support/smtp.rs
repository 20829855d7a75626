//! A tiny SMTP server on 127.0.0.1 that accepts one fixed AUTH PLAIN
//! credential and records the messages it is given, like a mail provider.
//! Enough of RFC 5321 for Go's net/smtp client (Alertmanager's).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Clone, Debug)]
pub struct Log {
    /// Full DATA of every accepted message (headers and body).
    pub messages: Vec<String>,
    /// AUTH attempts: (the base64 answer, accepted).
    pub auth_attempts: Vec<(String, bool)>,
}

pub struct SmtpSink {
    port: u16,
    log: Arc<Mutex<Log>>,
}

impl SmtpSink {
    /// `accepted_plain`: the base64 AUTH PLAIN answer ("\0user\0password")
    /// that authenticates; any other fails with 535.
    pub fn start(accepted_plain: &'static str) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let l = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let l = l.clone();
                std::thread::spawn(move || {
                    let _ = session(conn, accepted_plain, &l);
                });
            }
        });
        SmtpSink { port, log }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }
}

fn session(conn: TcpStream, accepted: &str, log: &Mutex<Log>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    let mut reply = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    reply("220 localhost ESMTP test")?;
    let mut authenticated = false;
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => reply("250-localhost\r\n250 AUTH PLAIN")?,
            "AUTH" => {
                let answer = line.split(' ').nth(2).unwrap_or("").to_string();
                let ok = answer == accepted;
                log.lock().unwrap().auth_attempts.push((answer, ok));
                authenticated = ok;
                reply(if ok {
                    "235 authenticated"
                } else {
                    "535 authentication failed"
                })?
            }
            "MAIL" if !authenticated => reply("530 authentication required")?,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => reply("250 ok")?,
            "DATA" => {
                reply("354 go on")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l)? == 0 || l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                log.lock().unwrap().messages.push(data);
                reply("250 queued")?
            }
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("502 not implemented")?,
        }
    }
}
