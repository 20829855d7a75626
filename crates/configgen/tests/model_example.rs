mod support;

use configgen::model::Config;

#[test]
fn example_parses_into_the_model() {
    let text = std::fs::read_to_string(support::example()).unwrap();
    let cfg: Config = toml::from_str(&text).unwrap();
    assert_eq!(cfg.services.len(), 7);
    assert_eq!(cfg.alerting.receivers.len(), 2);
    let json = serde_json::to_string(&cfg).unwrap();
    let back: Config = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
}
