//! "did you mean" for misspelled keys and enum values.

/// Rewrites serde's `unknown field `x`, expected one of `a`, `b`` (and the
/// same for variants) into `unknown field `x`, did you mean `a`?` when one
/// expected name is close. Returns the unknown name too, to locate its key.
pub fn improve(message: &str) -> (String, Option<String>) {
    let Some((kind, rest)) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| {
            message
                .strip_prefix(p)
                .map(|rest| (&p[..p.len() - 1], rest))
        })
    else {
        return (message.to_string(), None);
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return (message.to_string(), None);
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let unknown_key = (kind == "unknown field ").then(|| name.to_string());
    match closest(name, &candidates) {
        Some(best) => (
            format!("{kind}`{name}`, did you mean `{best}`?"),
            unknown_key,
        ),
        None => (message.to_string(), unknown_key),
    }
}

/// The candidate closest to `name` (case-insensitive edit distance), if close
/// enough to be what was meant.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let msg = "unknown field `intervall`, expected one of `name`, `interval`, `labels`";
        assert_eq!(
            improve(msg),
            (
                "unknown field `intervall`, did you mean `interval`?".to_string(),
                Some("intervall".to_string())
            )
        );
        let msg = "unknown variant `agnet`, expected `server` or `agent`";
        assert_eq!(
            improve(msg).0,
            "unknown variant `agnet`, did you mean `agent`?"
        );
        let msg = "unknown field `zzz`, expected `name` or `url`";
        assert_eq!(improve(msg), (msg.to_string(), Some("zzz".to_string())));
        assert_eq!(improve("missing field `url`").0, "missing field `url`");
    }
}
