//! Secret files whose content would break the daemon that reads them.
//!
//! configgen never reads secrets while rendering: the files live on the
//! monitoring host and are read there by the daemons at run time (often
//! configgen runs elsewhere, e.g. in a Nix build). `configgen check`, run on
//! that host, looks at the files it can read and warns: a warning, not an
//! error, because the same file is fine for a daemon version that trims it.

use std::path::Path;

use crate::diagnostic::ConfigIssue;
use crate::model::{Config, Receiver};

/// One secret file of the config and how its reader treats whitespace.
struct SecretFile<'a> {
    /// Field path in the config.
    path: String,
    file: &'a str,
    /// Who uses the bytes as they are (no trimming), when that breaks.
    untrimmed_by: &'static str,
}

fn secret_files(cfg: &Config) -> Vec<SecretFile<'_>> {
    let mut files = Vec::new();
    for (i, r) in cfg.alerting.receivers.iter().enumerate() {
        match r {
            Receiver::Email(e) => {
                if let Some(f) = &e.password_file {
                    files.push(SecretFile {
                        path: format!("alerting.receivers[{i}].password_file"),
                        file: f,
                        untrimmed_by: "Alertmanager 0.25 (Debian bookworm) sends the password \
                                       byte for byte, so SMTP authentication fails",
                    });
                }
            }
            Receiver::Pushover(p) => {
                for (field, file) in [
                    ("user_key_file", &p.user_key_file),
                    ("token_file", &p.token_file),
                ] {
                    files.push(SecretFile {
                        path: format!("alerting.receivers[{i}].{field}"),
                        file,
                        untrimmed_by: "Alertmanager (0.26 to 0.34 at least) sends Pushover's \
                                       keys byte for byte, so Pushover refuses every notification",
                    });
                }
            }
            _ => {}
        }
    }
    files
}

/// Warnings about secret files readable here whose content would break their
/// reader. Unreadable or missing files are not reported: they may only exist
/// on the host that runs the daemon.
pub fn check(cfg: &Config) -> Vec<ConfigIssue> {
    secret_files(cfg)
        .into_iter()
        .filter_map(|s| {
            let bytes = std::fs::read(Path::new(s.file)).ok()?;
            let trailing = bytes.len() - bytes.trim_ascii_end().len();
            if trailing == 0 {
                return None;
            }
            let what = match &bytes[bytes.len() - trailing..] {
                b"\n" => "a trailing newline".to_string(),
                b"\r\n" => "a trailing CRLF".to_string(),
                _ => format!("{trailing} trailing whitespace bytes"),
            };
            Some(ConfigIssue::new(
                s.path,
                format!(
                    "{} ends with {what}: {}. Rewrite it without: printf '%s' 'the-secret' > {}",
                    s.file, s.untrimmed_by, s.file
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with_password_file(path: &Path) -> Config {
        toml::from_str(&format!(
            r#"
            [[alerting.receivers]]
            type = "email"
            name = "mail"
            to = "me@example.org"
            from = "lab@example.org"
            smarthost = "smtp.example.org:587"
            username = "lab"
            password_file = "{}"
            "#,
            path.display()
        ))
        .unwrap()
    }

    #[test]
    fn trailing_newline_is_reported_with_the_field_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp");
        std::fs::write(&file, "hunter2\n").unwrap();
        let issues = check(&cfg_with_password_file(&file));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "alerting.receivers[0].password_file");
        assert!(
            issues[0].message.contains("a trailing newline"),
            "{}",
            issues[0].message
        );
        assert!(
            issues[0].message.contains("printf '%s'"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn pushover_keys_with_a_trailing_newline_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (user, token) = (dir.path().join("user"), dir.path().join("token"));
        std::fs::write(&user, "u-key").unwrap();
        std::fs::write(&token, "app-token\r\n").unwrap();
        let cfg: Config = toml::from_str(&format!(
            r#"
            [[alerting.receivers]]
            type = "pushover"
            name = "push"
            user_key_file = "{}"
            token_file = "{}"
            "#,
            user.display(),
            token.display()
        ))
        .unwrap();
        let issues = check(&cfg);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, "alerting.receivers[0].token_file");
        assert!(
            issues[0].message.contains("a trailing CRLF") && issues[0].message.contains("Pushover"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn clean_missing_and_unreadable_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp");
        std::fs::write(&file, "hunter2").unwrap();
        assert_eq!(check(&cfg_with_password_file(&file)), []);
        assert_eq!(
            check(&cfg_with_password_file(&dir.path().join("absent"))),
            []
        );
    }
}
