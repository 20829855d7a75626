//! Overrides: whatever a user writes, `check_overrides` either accepts it and
//! the rules render with the new values, or reports it and rendering refuses;
//! never a panic, never a silently broken rule file.

use configgen::alerts::{check_overrides, format_number, CATALOGUE};
use configgen::model::{AlertOverride, Config};
use proptest::prelude::*;

fn rules_text(cfg: &Config) -> Result<String, String> {
    let tree = configgen::render::render(cfg).map_err(|e| e.to_string())?;
    Ok(tree
        .files()
        .filter(|(p, _)| p.starts_with("prometheus/rules/"))
        .map(|(_, t)| t)
        .collect())
}

fn rule_of<'a>(rules: &'a str, name: &str) -> Option<&'a str> {
    let start = rules.find(&format!("- alert: {name}\n"))?;
    let rest = &rules[start + 1..];
    Some(&rest[..rest.find("- alert: ").unwrap_or(rest.len())])
}

fn duration() -> impl Strategy<Value = String> {
    (
        1u32..500,
        prop::sample::select(vec!["ms", "s", "m", "h", "d"]),
    )
        .prop_map(|(n, u)| format!("{n}{u}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn valid_overrides_render_with_their_values(
        idx in 0..CATALOGUE.len(),
        fraction in 0.0f64..=1.0,
        for_ in duration(),
        severity in prop::sample::select(vec!["critical", "warning", "info"]),
    ) {
        let a = &CATALOGUE[idx];
        // 0.01 ..= 99.99: valid for every unit.
        let threshold = a.threshold.map(|_| (fraction * 9998.0).round() / 100.0 + 0.01);
        let o = AlertOverride {
            enabled: Some(true),
            threshold,
            for_: Some(for_.clone()),
            severity: (a.name != "Watchdog").then(|| severity.to_string()),
        };
        let mut cfg = Config::default();
        cfg.alerting.overrides.insert(a.name.into(), o);
        prop_assert_eq!(check_overrides(&cfg), vec![]);
        let rules = rules_text(&cfg).unwrap();
        let rule = rule_of(&rules, a.name).unwrap();
        let for_line = format!("\n        for: {}\n", for_);
        prop_assert!(rule.contains(&for_line), "{}", rule);
        if a.name != "Watchdog" {
            let severity_line = format!("severity: {}\n", severity);
            prop_assert!(rule.contains(&severity_line), "{}", rule);
        }
        if let Some(t) = threshold {
            prop_assert!(rule.contains(&format_number(t)), "{} not in {}", t, rule);
        }
    }

    #[test]
    fn anything_else_is_reported_and_refused(
        name in "[A-Za-z]{1,30}",
        threshold in prop::option::of(any::<f64>()),
        for_ in prop::option::of("[0-9a-z .]{0,8}"),
        severity in prop::option::of("[a-z]{0,9}"),
        enabled in prop::option::of(any::<bool>()),
    ) {
        let mut cfg = Config::default();
        cfg.alerting.overrides.insert(name, AlertOverride { enabled, threshold, for_, severity });
        let issues = check_overrides(&cfg);
        let rendered = rules_text(&cfg);
        prop_assert_eq!(issues.is_empty(), rendered.is_ok(), "{:?} / {:?}", issues, rendered.err());
        for issue in &issues {
            prop_assert!(issue.path.starts_with("alerting.overrides."));
            prop_assert!(!issue.message.is_empty());
        }
    }

    #[test]
    fn disabling_removes_exactly_that_alert(idx in 0..CATALOGUE.len()) {
        let a = &CATALOGUE[idx];
        let mut cfg = Config::default();
        cfg.alerting.overrides.insert(a.name.into(), AlertOverride { enabled: Some(false), ..Default::default() });
        let rules = rules_text(&cfg).unwrap();
        prop_assert!(rule_of(&rules, a.name).is_none());
        for other in CATALOGUE.iter().filter(|o| o.name != a.name) {
            prop_assert!(rule_of(&rules, other.name).is_some(), "{} vanished", other.name);
        }
    }
}
