//! `configgen render` never loses a user's file: the real binary refuses an
//! --out that holds the config file, a file the config names, or anything it
//! did not write there, and then leaves every byte in place (the whole temp
//! dir is compared before and after, so no staging dir is left either).

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use configgen::write::MARKER;
use support::cli::{configgen, snapshot, stderr};

/// A temp dir holding a config file; `out` is where it renders to.
struct Setup {
    tmp: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn out(&self) -> PathBuf {
        self.path("etc/homelab-observability")
    }

    /// Writes `text` to `rel` (creating its directories) and returns the path.
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn render(&self, config: &Path) -> std::process::Output {
        configgen(
            &[
                "render",
                "--config",
                config.to_str().unwrap(),
                "--out",
                self.out().to_str().unwrap(),
            ],
            None,
        )
    }

    fn render_ok(&self, config: &Path) {
        let out = self.render(config);
        assert!(out.status.success(), "render failed: {}", stderr(&out));
    }

    /// Renders, expects a refusal that leaves the whole temp dir unchanged,
    /// and returns the error message.
    fn refused(&self, config: &Path) -> String {
        let before = snapshot(self.tmp.path());
        let out = self.render(config);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "not refused: {message}");
        assert_eq!(
            snapshot(self.tmp.path()),
            before,
            "a refused render changed files"
        );
        println!("{message}");
        message
    }
}

fn remote_write_config(password_file: &Path) -> String {
    format!(
        "[[prometheus.remote_write]]\nurl = \"http://127.0.0.1:8428/api/v1/write\"\n\
         basic_auth = {{ username = \"homelab\", password_file = \"{}\" }}\n",
        password_file.display()
    )
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn an_out_holding_the_config_file_is_refused() {
    let s = Setup::new();
    let out = s.out();
    let config = s.file("etc/homelab-observability/homelab.toml", "");
    let message = s.refused(&config);
    assert_mentions(
        &message,
        &[
            &format!("refusing to render into {}", out.display()),
            &format!("the config file {}", config.display()),
            "nothing was changed",
        ],
    );

    // Also over an earlier output, and through a symlink to the config file.
    let elsewhere = s.path("homelab.toml");
    fs::rename(&config, &elsewhere).unwrap();
    s.render_ok(&elsewhere);
    fs::rename(&elsewhere, out.join("homelab.toml")).unwrap();
    symlink(out.join("homelab.toml"), &elsewhere).unwrap();
    let message = s.refused(&elsewhere);
    assert_mentions(&message, &["the config file", "homelab.toml"]);
}

#[test]
fn an_out_holding_a_secret_the_config_names_is_refused() {
    let s = Setup::new();
    let out = s.out();
    let secret = out.join("secrets/remote-write-password");
    let config = s.file("homelab.toml", &remote_write_config(&secret));
    // Refused before the secret exists (a render would point Prometheus at a
    // file inside the directory that every render replaces) ...
    let message = s.refused(&config);
    assert_mentions(
        &message,
        &[
            &format!("refusing to render into {}", out.display()),
            &secret.display().to_string(),
            "prometheus.remote_write[0].basic_auth.password_file",
        ],
    );
    // ... and once it does, also over an earlier output of configgen's.
    let other = s.file("other.toml", "");
    s.render_ok(&other);
    s.file(
        "etc/homelab-observability/secrets/remote-write-password",
        "pw\n",
    );
    s.refused(&config);

    // A path that reaches into --out through a symlink is the same file.
    let link = s.path("secrets-link");
    symlink(&out, &link).unwrap();
    let via_link = s.file(
        "via-link.toml",
        &remote_write_config(&link.join("secrets/remote-write-password")),
    );
    let message = s.refused(&via_link);
    assert_mentions(&message, &["secrets-link/secrets/remote-write-password"]);
}

#[test]
fn every_kind_of_named_file_is_protected() {
    let s = Setup::new();
    let out = s.out().display().to_string();
    let config = s.file(
        "homelab.toml",
        &format!(
            "[grafana]\nadmin_password_file = \"{out}/grafana-admin\"\n\
             [alerting]\nextra_rule_files = [\"/etc/rules/mine.yml\", \"{out}/mine.yml\"]\n"
        ),
    );
    let message = s.refused(&config);
    assert_mentions(
        &message,
        &[
            &format!("{out}/grafana-admin (the config's grafana.admin_password_file)"),
            &format!("{out}/mine.yml (the config's alerting.extra_rule_files[1])"),
            "Keep those files outside",
        ],
    );
    assert!(!message.contains("/etc/rules/mine.yml"), "{message}");
}

#[test]
fn files_configgen_did_not_write_are_refused() {
    let s = Setup::new();
    let out = s.out();
    let config = s.file("homelab.toml", "");
    s.render_ok(&config);
    s.file("etc/homelab-observability/notes.txt", "mine");
    s.file("etc/homelab-observability/secrets/token", "secret");
    s.file(
        "etc/homelab-observability/prometheus/rules/mine.yml",
        "groups: []\n",
    );
    let message = s.refused(&config);
    assert_mentions(
        &message,
        &[
            &format!(
                "refusing to render into {}: it holds files configgen did not write: \
                 notes.txt, prometheus/rules/mine.yml, secrets/.",
                out.display()
            ),
            "nothing was changed",
        ],
    );
}

#[test]
fn symlinks_in_the_output_are_never_followed() {
    let s = Setup::new();
    let out = s.out();
    let config = s.file("homelab.toml", "");
    s.render_ok(&config);
    let user_dir = s.path("home/me/data");
    s.file("home/me/data/photo.jpg", "precious");
    symlink(&user_dir, out.join("data")).unwrap();
    let message = s.refused(&config);
    assert_mentions(&message, &["data (a symbolic link)"]);
    fs::remove_file(out.join("data")).unwrap();

    // A rendered file replaced by a link to the user's own file.
    let rendered = out.join("prometheus/prometheus.yml");
    let mine = s.file("home/me/prometheus.yml", "mine");
    fs::remove_file(&rendered).unwrap();
    symlink(&mine, &rendered).unwrap();
    let message = s.refused(&config);
    assert_mentions(&message, &["prometheus/prometheus.yml (a symbolic link)"]);
    assert_eq!(fs::read_to_string(&mine).unwrap(), "mine");

    // --out itself as a symlink to the user's directory.
    fs::remove_file(&rendered).unwrap();
    let real = s.path("etc/real");
    fs::rename(&out, &real).unwrap();
    symlink(&real, &out).unwrap();
    let message = s.refused(&config);
    assert_mentions(&message, &["is a symbolic link"]);
}

#[test]
fn a_render_over_its_own_output_replaces_it() {
    let s = Setup::new();
    let out = s.out();
    let with_service = s.file(
        "with.toml",
        "[[services]]\nname = \"web\"\nhttp = { url = \"http://127.0.0.1:8080/\" }\n",
    );
    s.render_ok(&with_service);
    let first = snapshot(&out);
    // Rendered files edited by hand are configgen's: they are replaced.
    fs::write(out.join("prometheus/prometheus.yml"), "edited").unwrap();
    s.render_ok(&with_service);
    assert_eq!(snapshot(&out), first);

    let without = s.file("without.toml", "");
    s.render_ok(&without);
    let second = snapshot(&out);
    assert_ne!(first, second, "the service's files should be gone");
    let marker = fs::read_to_string(out.join(MARKER)).unwrap();
    for path in second.keys().filter(|p| *p != MARKER) {
        let listed = if second[path].1.is_none() {
            format!("{path}/")
        } else {
            path.clone()
        };
        assert!(
            marker.lines().any(|l| l == listed),
            "{listed} not in the marker"
        );
    }
    s.render_ok(&with_service);
    assert_eq!(snapshot(&out), first);
}

/// Outputs of configgen before the marker listed its paths hold a one-line
/// marker. Such a directory is replaced when it holds only what this render
/// writes; anything else (a user's file, or a leftover of an older render)
/// is refused, since configgen cannot tell the two apart.
#[test]
fn an_old_marker_without_a_list_trusts_only_what_this_render_writes() {
    let s = Setup::new();
    let out = s.out();
    let old_marker =
        "Written by `configgen render`; the whole directory is replaced on every render.\n";
    let config = s.file("homelab.toml", "");
    s.render_ok(&config);
    fs::write(out.join(MARKER), old_marker).unwrap();
    s.render_ok(&config);
    assert!(fs::read_to_string(out.join(MARKER))
        .unwrap()
        .starts_with("configgen-output 2\n"));

    fs::write(out.join(MARKER), old_marker).unwrap();
    s.file("etc/homelab-observability/secrets/token", "secret");
    let message = s.refused(&config);
    assert_mentions(
        &message,
        &[
            "comes from an older configgen that did not list the files it wrote",
            "secrets/",
        ],
    );
}
