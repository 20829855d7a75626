//! The loader and validator on arbitrary and mutated input: never a panic,
//! always Ok or located, one-line errors inside the file.

mod support;

use configgen::load::{self, Format, Source};
use proptest::prelude::*;

const FORMATS: [Format; 3] = [Format::Toml, Format::Yaml, Format::Json];

fn check_one(text: &str, format: Format) {
    let src = Source::new("input", text, format);
    if let Err(diagnostics) = load::load(&src) {
        assert!(!diagnostics.is_empty());
        let lines = text.split('\n').count();
        for d in diagnostics {
            assert!(!d.message.is_empty(), "{d}");
            assert!(!d.to_string().contains('\n'), "multi-line message: {d:?}");
            let pos = d.pos.expect("errors in a text are located");
            assert!(
                pos.line >= 1 && pos.line <= lines && pos.col >= 1,
                "{d} of {lines} lines"
            );
        }
    }
}

fn check_all(text: &str) {
    for format in FORMATS {
        check_one(text, format);
    }
}

fn valid_texts() -> Vec<String> {
    let toml_text = std::fs::read_to_string(support::example()).unwrap();
    let value: toml::Value = toml::from_str(&toml_text).unwrap();
    let yaml =
        std::fs::read_to_string(support::crate_dir().join("tests/fixtures/homelab.yaml")).unwrap();
    vec![
        toml_text,
        yaml,
        serde_json::to_string_pretty(&value).unwrap(),
        serde_json::to_string(&value).unwrap(),
    ]
}

/// Replace `len` bytes at a relative position with `insert` (kept on char boundaries).
fn mutate(text: &str, at: f64, len: usize, insert: &str) -> String {
    let mut start = ((text.len() as f64) * at) as usize;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    format!("{}{}{}", &text[..start], insert, &text[end..])
}

/// A key with a line break (written as an escape in JSON, quoted in YAML)
/// is quoted back in the message: still one line.
#[test]
fn keys_with_control_characters_give_one_line_errors() {
    for (text, format) in [
        (
            "{\"host\": {\"name\": \"x\"}, \"servi\\nces\": []}",
            Format::Json,
        ),
        ("host: {name: x}\n\"servi\\nces\": []\n", Format::Yaml),
        ("host.name = \"x\"\n\"servi\\nces\" = []\n", Format::Toml),
    ] {
        assert!(load::load(&Source::new("input", text, format)).is_err());
        check_one(text, format);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        check_all(&text);
    }

    #[test]
    fn syntax_soup_never_panics(text in r#"[\[\]{}:,="'\-#&*!|>?%@` \n\ta-z0-9._/]{0,300}"#) {
        check_all(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_all(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_valid_configs_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec(
            (0.0f64..1.0, 0usize..20, r#"[\[\]{}:,="'\-#&*0-9a-z \n]{0,8}"#),
            1..4,
        ),
    ) {
        let mut text = valid_texts().swap_remove(which);
        for (at, len, insert) in &edits {
            text = mutate(&text, *at, *len, insert);
        }
        let format = [Format::Toml, Format::Yaml, Format::Json, Format::Json][which];
        check_one(&text, format);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [100, 10_000] {
        check_all(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        check_all(&format!("a = {}{}", "[".repeat(depth), "]".repeat(depth)));
        check_all(&format!("{}1", "- ".repeat(depth)));
        check_all(&"a:\n".repeat(depth));
    }
}

#[test]
fn the_valid_texts_load() {
    for (text, format) in
        valid_texts()
            .iter()
            .zip([Format::Toml, Format::Yaml, Format::Json, Format::Json])
    {
        load::load(&Source::new("input", text.as_str(), format)).unwrap();
    }
}
