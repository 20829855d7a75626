//! The `http_route` label: a configured template when one matches, else a
//! low-cardinality guess, with a hard cap on the number of distinct guesses.

use std::collections::HashSet;
use std::fmt;

/// Heuristic placeholder for a path segment that looks like an identifier.
pub const ID_SEGMENT: &str = "{id}";
/// Heuristic placeholder ending a route whose path had more segments than the limit.
pub const REST_SEGMENT: &str = "{*}";
/// Route of every new path once a matcher has learned its maximum number of routes.
pub const OVERFLOW_ROUTE: &str = "/{overflow}";
/// Route of a target that is not a path: authority-form (`CONNECT host:443`) or unparsable.
pub const NON_PATH_ROUTE: &str = "{other}";
/// Route of the asterisk-form target (`OPTIONS *`).
pub const ASTERISK_ROUTE: &str = "*";

/// A route template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The template as configured.
    pub template: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route template {:?}: {}", self.template, self.reason)
    }
}

impl std::error::Error for RouteError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{name}` (or `*` before the last segment): exactly one non-empty segment.
    Param,
    /// `{*name}` or `*` as the last segment: zero or more segments.
    Rest,
}

#[derive(Debug, Clone)]
struct Template {
    text: String,
    parts: Vec<Part>,
}

/// Maps request targets to `http_route` values.
///
/// Templates are matched segment-wise on the path (query and fragment
/// removed, one trailing `/` ignored): a literal segment matches itself
/// (case-sensitive), `{name}` matches one non-empty segment, and a last
/// segment `{*name}` or `*` matches the rest of the path (possibly nothing).
/// When several templates match, the most specific wins: comparing segment by
/// segment, literal beats `{name}` beats the rest-matcher; ties go to the
/// template listed first. The configured template text is the route.
///
/// Without a matching template the route is a guess: the path's segments,
/// each one that looks like an identifier replaced by [`ID_SEGMENT`], cut
/// after `max_segments` segments with a final [`REST_SEGMENT`]. A segment
/// looks like an identifier when it contains a digit and either has no
/// letter (numbers, dates, versions, addresses), or is at least 8 bytes of
/// hex digits and dashes (hashes, UUIDs), or is at least 8 bytes long with at
/// least 3 digits, or is at least 16 bytes long; also when it is longer than
/// 40 bytes or holds a byte other than ASCII letters, digits, `-`, `.`, `_`
/// (percent-encoded text, e-mail addresses, `~user`). A matcher learns at
/// most `max_routes` distinct guesses; every further new guess is reported as
/// [`OVERFLOW_ROUTE`].
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    templates: Vec<Template>,
    learned: HashSet<Box<str>>,
    scratch: String,
    max_routes: usize,
    max_segments: usize,
}

impl RouteMatcher {
    /// Default cap on distinct heuristic routes per matcher.
    pub const DEFAULT_MAX_ROUTES: usize = 100;
    /// Default number of path segments kept by the heuristic.
    pub const DEFAULT_MAX_SEGMENTS: usize = 5;

    /// Builds a matcher from route templates such as `/api/items/{id}`.
    pub fn new<I, S>(templates: I) -> Result<Self, RouteError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let templates = templates
            .into_iter()
            .map(|t| parse_template(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteMatcher {
            templates,
            learned: HashSet::new(),
            scratch: String::new(),
            max_routes: Self::DEFAULT_MAX_ROUTES,
            max_segments: Self::DEFAULT_MAX_SEGMENTS,
        })
    }

    /// Replaces the cap on distinct heuristic routes and the number of path
    /// segments the heuristic keeps (at least 1).
    pub fn with_limits(mut self, max_routes: usize, max_segments: usize) -> Self {
        self.max_routes = max_routes;
        self.max_segments = max_segments.max(1);
        self
    }

    /// Number of distinct heuristic routes learned so far (at most the cap).
    pub fn learned_routes(&self) -> usize {
        self.learned.len()
    }

    /// The route of a request target (origin-form `/path?query`, absolute-form
    /// `http://host/path`, asterisk-form `*` or authority-form `host:port`).
    pub fn route(&mut self, target: &str) -> &str {
        if target == "*" {
            return ASTERISK_ROUTE;
        }
        let Some(path) = path_of(target) else {
            return NON_PATH_ROUTE;
        };
        if let Some(i) = self.best_template(path) {
            return &self.templates[i].text;
        }
        self.scratch.clear();
        for (i, seg) in segments(path).enumerate() {
            self.scratch.push('/');
            if i == self.max_segments {
                self.scratch.push_str(REST_SEGMENT);
                break;
            }
            self.scratch
                .push_str(if looks_like_id(seg) { ID_SEGMENT } else { seg });
        }
        if self.scratch.is_empty() {
            self.scratch.push('/');
        }
        if !self.learned.contains(self.scratch.as_str()) {
            if self.learned.len() >= self.max_routes {
                return OVERFLOW_ROUTE;
            }
            self.learned.insert(Box::from(self.scratch.as_str()));
        }
        self.learned
            .get(self.scratch.as_str())
            .map_or(OVERFLOW_ROUTE, |r| r)
    }

    fn best_template(&self, path: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, t) in self.templates.iter().enumerate() {
            if !matches(&t.parts, path) {
                continue;
            }
            best = match best {
                Some(b) if !more_specific(&t.parts, &self.templates[b].parts) => Some(b),
                _ => Some(i),
            };
        }
        best
    }
}

/// The path of a target, without query or fragment; None when it has none.
fn path_of(target: &str) -> Option<&str> {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let t = &target[..end];
    if t.starts_with('/') {
        return Some(t);
    }
    let (scheme, rest) = t.split_once("://")?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return None;
    }
    Some(rest.find('/').map_or("/", |i| &rest[i..]))
}

/// Path segments, ignoring the leading `/` and one trailing `/`.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    (!p.is_empty()).then(|| p.split('/')).into_iter().flatten()
}

fn parse_template(text: &str) -> Result<Template, RouteError> {
    let err = |reason| RouteError {
        template: text.to_string(),
        reason,
    };
    if !text.starts_with('/') {
        return Err(err("must start with '/'"));
    }
    if text.contains(['?', '#']) {
        return Err(err("must be a path, without query or fragment"));
    }
    let segs: Vec<&str> = segments(text).collect();
    let mut parts = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let part = if *seg == "*" {
            if last {
                Part::Rest
            } else {
                Part::Param
            }
        } else if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if inner.contains(['{', '}']) {
                return Err(err("'{' and '}' must enclose a whole segment"));
            }
            if let Some(name) = inner.strip_prefix('*') {
                if !last {
                    return Err(err("'{*name}' is only allowed as the last segment"));
                }
                let _ = name;
                Part::Rest
            } else if inner.is_empty() {
                return Err(err("empty parameter name '{}'"));
            } else {
                Part::Param
            }
        } else if seg.contains(['{', '}']) {
            return Err(err("'{' and '}' must enclose a whole segment"));
        } else {
            Part::Literal(seg.to_string())
        };
        parts.push(part);
    }
    Ok(Template {
        text: text.to_string(),
        parts,
    })
}

fn matches(parts: &[Part], path: &str) -> bool {
    let mut segs = segments(path);
    for part in parts {
        match part {
            Part::Rest => return true,
            Part::Param => match segs.next() {
                Some(s) if !s.is_empty() => {}
                _ => return false,
            },
            Part::Literal(l) => {
                if segs.next() != Some(l.as_str()) {
                    return false;
                }
            }
        }
    }
    segs.next().is_none()
}

/// Whether template `a` is strictly more specific than `b` (both match).
fn more_specific(a: &[Part], b: &[Part]) -> bool {
    // Ending exactly beats any part; literal beats parameter beats rest.
    let rank = |p: Option<&Part>| match p {
        None => 3,
        Some(Part::Literal(_)) => 2,
        Some(Part::Param) => 1,
        Some(Part::Rest) => 0,
    };
    for i in 0..=a.len().max(b.len()) {
        let (ra, rb) = (rank(a.get(i)), rank(b.get(i)));
        if ra != rb {
            return ra > rb;
        }
        if ra == 3 {
            break;
        }
    }
    false
}

fn looks_like_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.len() > 40 {
        return true;
    }
    if b.iter()
        .any(|c| !(c.is_ascii_alphanumeric() || b"-._".contains(c)))
    {
        return true;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return false;
    }
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    letters == 0
        || (b.len() >= 8 && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'))
        || (b.len() >= 8 && digits >= 3)
        || b.len() >= 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(templates: &[&str]) -> RouteMatcher {
        RouteMatcher::new(templates).unwrap()
    }

    #[test]
    fn templates_match_segment_wise() {
        let mut r = m(&["/api/items/{id}", "/api/items/{id}/tags", "/static/{*path}"]);
        assert_eq!(r.route("/api/items/42"), "/api/items/{id}");
        assert_eq!(r.route("/api/items/abc?x=1"), "/api/items/{id}");
        assert_eq!(r.route("/api/items/42/"), "/api/items/{id}");
        assert_eq!(r.route("/api/items/42/tags"), "/api/items/{id}/tags");
        assert_eq!(r.route("/static/js/app.js"), "/static/{*path}");
        assert_eq!(r.route("/static"), "/static/{*path}");
        assert_eq!(r.route("http://h:8080/api/items/7"), "/api/items/{id}");
        assert_eq!(r.learned_routes(), 0);
        // {name} needs a non-empty segment; extra segments do not match.
        assert_eq!(r.route("/api/items//tags"), "/api/items//tags");
        assert_eq!(r.route("/api/items/1/tags/2"), "/api/items/{id}/tags/{id}");
    }

    #[test]
    fn most_specific_template_wins() {
        let mut r = m(&["/{*all}", "/users/{id}", "/users/me", "/users/*"]);
        assert_eq!(r.route("/users/me"), "/users/me");
        assert_eq!(r.route("/users/42"), "/users/{id}");
        assert_eq!(r.route("/users"), "/users/*");
        assert_eq!(r.route("/other/x"), "/{*all}");
        assert_eq!(r.route("/"), "/{*all}");
    }

    #[test]
    fn bad_templates_are_rejected() {
        for (t, reason) in [
            ("api/x", "must start with '/'"),
            (
                "/a/{*rest}/b",
                "'{*name}' is only allowed as the last segment",
            ),
            ("/a/v{n}", "'{' and '}' must enclose a whole segment"),
            ("/a/{}", "empty parameter name '{}'"),
            ("/a?b=1", "must be a path, without query or fragment"),
        ] {
            let e = RouteMatcher::new([t]).unwrap_err();
            assert_eq!(e.reason, reason, "{t}");
            assert_eq!(e.template, t);
        }
    }

    #[test]
    fn heuristic_replaces_ids() {
        let mut r = m(&[]);
        let cases = [
            ("/", "/"),
            ("", "{other}"),
            ("/api/v1/users/12345", "/api/v1/users/{id}"),
            (
                "/items/550e8400-e29b-41d4-a716-446655440000/thumb",
                "/items/{id}/thumb",
            ),
            ("/blob/3f2a9c1b7d", "/blob/{id}"),
            ("/t/AbCdEfGhIjKlMnOp1", "/t/{id}"),
            ("/static/js/main.3f2a9c1b.js", "/static/js/{id}"),
            ("/favicon.ico", "/favicon.ico"),
            ("/api/v2/health-check/", "/api/v2/health-check"),
            ("/u/alice%40example.com", "/u/{id}"),
            ("/d/2024-01-05", "/d/{id}"),
            ("/search?q=hello", "/search"),
            ("/a/b/c/d/e/f/g", "/a/b/c/d/e/{*}"),
            ("*", "*"),
            ("example.com:443", "{other}"),
            ("https://example.com", "/"),
        ];
        for (target, want) in cases {
            assert_eq!(r.route(target), want, "{target}");
        }
    }

    #[test]
    fn heuristic_routes_are_capped() {
        let mut r = m(&["/known/{x}"]).with_limits(3, 5);
        assert_eq!(r.route("/a"), "/a");
        assert_eq!(r.route("/b"), "/b");
        assert_eq!(r.route("/c"), "/c");
        assert_eq!(r.route("/d"), OVERFLOW_ROUTE);
        assert_eq!(r.route("/a?again"), "/a");
        assert_eq!(r.route("/known/1"), "/known/{x}");
        assert_eq!(r.learned_routes(), 3);
        for i in 0..1000 {
            let t = format!("/word{}x/y", "z".repeat(i % 50));
            let _ = r.route(&t);
        }
        assert_eq!(r.learned_routes(), 3);
    }
}
