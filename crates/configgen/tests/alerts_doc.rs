//! docs/alerts.md is generated from the alert catalogue; this fails when it is
//! stale. `UPDATE_DOCS=1 cargo test -p configgen --test alerts_doc` rewrites it.

mod support;

#[test]
fn docs_alerts_md_is_up_to_date() {
    let path = support::repo_root().join("docs/alerts.md");
    let expected = configgen::alerts::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale: run `UPDATE_DOCS=1 cargo test -p configgen --test alerts_doc`",
        path.display()
    );
}

#[test]
fn every_alert_is_documented_with_its_defaults() {
    let md = configgen::alerts::markdown();
    for a in configgen::alerts::CATALOGUE {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", a.name)))
            .unwrap_or_else(|| panic!("{} missing", a.name));
        assert!(row.contains(&format!("| {} |", a.severity)), "{row}");
        if let Some(t) = a.threshold {
            assert!(row.contains(t.meaning), "{row}");
        }
    }
}

#[test]
fn the_example_config_overrides_known_alerts() {
    let text = std::fs::read_to_string(support::example()).unwrap();
    let cfg: configgen::model::Config = toml::from_str(&text).unwrap();
    assert!(!cfg.alerting.overrides.is_empty());
    assert_eq!(configgen::alerts::check_overrides(&cfg), []);
}
