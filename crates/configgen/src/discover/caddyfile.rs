//! The sites of a Caddyfile and the upstreams they proxy to.
//!
//! Follows the Caddyfile's lexical rules: tokens are separated by whitespace;
//! a token starting with `#` starts a comment to the end of the line;
//! `"..."` (with `\"` escapes) and `` `...` `` quote a token; `{` opens a
//! block at the end of a line and `}` closes it on its own; the tokens of a
//! line are one directive. `(name) { ... }` defines a snippet, `import name
//! [args]` pastes it (with `{args[N]}` / `{args.N}` replaced) and `import
//! path` (a glob, relative to the importing file) pastes files.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::{glob, Server, Vhost};

#[derive(Debug, Clone)]
struct Token {
    text: String,
    quoted: bool,
    line: usize,
}

/// A line's tokens and the block it opens.
#[derive(Debug, Clone)]
struct Directive {
    words: Vec<String>,
    file: PathBuf,
    line: usize,
    block: Option<Vec<Directive>>,
}

fn tokenize(text: &str, file: &Path) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            line += 1;
            chars.next();
        } else if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            while chars.peek().is_some_and(|&c| c != '\n') {
                chars.next();
            }
        } else if c == '"' || c == '`' {
            let start = line;
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => bail!("{}:{start}: unterminated quote", file.display()),
                    Some('\\') if c == '"' && chars.peek() == Some(&'"') => {
                        s.push('"');
                        chars.next();
                    }
                    Some(q) if q == c => break,
                    Some(ch) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        s.push(ch);
                    }
                }
            }
            tokens.push(Token {
                text: s,
                quoted: true,
                line: start,
            });
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            tokens.push(Token {
                text: s,
                quoted: false,
                line,
            });
        }
    }
    Ok(tokens)
}

fn is(t: &Token, brace: &str) -> bool {
    !t.quoted && t.text == brace
}

/// Directives of `tokens[*pos..]` up to the `}` closing the block opened on
/// line `opened`, or the end of the file.
fn parse_block(
    tokens: &[Token],
    pos: &mut usize,
    file: &Path,
    opened: Option<usize>,
) -> Result<Vec<Directive>> {
    let nested = opened.is_some();
    let mut out = Vec::new();
    while *pos < tokens.len() {
        let first = &tokens[*pos];
        if is(first, "}") {
            if nested {
                *pos += 1;
                return Ok(out);
            }
            bail!("{}:{}: unexpected '}}'", file.display(), first.line);
        }
        let line = first.line;
        let mut words = Vec::new();
        let mut block = None;
        // A line ending in ',' continues on the next one (site addresses).
        let mut last_line = line;
        while *pos < tokens.len() {
            let t = &tokens[*pos];
            let continues = words.last().is_some_and(|w: &String| w.ends_with(','));
            if t.line != last_line && !continues {
                break;
            }
            if is(t, "}") {
                break;
            }
            *pos += 1;
            if is(t, "{") {
                block = Some(parse_block(tokens, pos, file, Some(t.line))?);
                break;
            }
            last_line = t.line;
            words.push(t.text.clone());
        }
        out.push(Directive {
            words,
            file: file.to_path_buf(),
            line,
            block,
        });
    }
    if let Some(line) = opened {
        bail!("{}:{line}: this '{{' is never closed", file.display());
    }
    Ok(out)
}

fn parse_file(path: &Path) -> Result<Vec<Directive>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let tokens = tokenize(&text, path)?;
    parse_block(&tokens, &mut 0, path, None)
}

struct Snippets(Vec<(String, Vec<Directive>)>);

fn substitute(d: &Directive, args: &[String]) -> Directive {
    let mut words = Vec::new();
    for w in &d.words {
        if w == "{args[:]}" {
            words.extend(args.iter().cloned());
            continue;
        }
        let mut w = w.clone();
        for (i, a) in args.iter().enumerate() {
            w = w
                .replace(&format!("{{args[{i}]}}"), a)
                .replace(&format!("{{args.{i}}}"), a);
        }
        words.push(w);
    }
    Directive {
        words,
        file: d.file.clone(),
        line: d.line,
        block: d
            .block
            .as_ref()
            .map(|b| b.iter().map(|d| substitute(d, args)).collect()),
    }
}

/// Replaces every `import` with what it names, recursively.
fn expand(dirs: Vec<Directive>, snippets: &Snippets, depth: usize) -> Result<Vec<Directive>> {
    let mut out = Vec::new();
    for mut d in dirs {
        if d.words.first().map(String::as_str) == Some("import") {
            if depth > 10 {
                bail!(
                    "{}:{}: imports nest too deep (a cycle?)",
                    d.file.display(),
                    d.line
                );
            }
            let Some(target) = d.words.get(1) else {
                bail!("{}:{}: import of nothing", d.file.display(), d.line);
            };
            let args = &d.words[2..];
            let pasted = match snippets.0.iter().find(|(n, _)| n == target) {
                Some((_, body)) => body.iter().map(|x| substitute(x, args)).collect(),
                None => {
                    let base = d.file.parent().unwrap_or(Path::new("."));
                    let files = glob(&base.join(target))?;
                    let mut all = Vec::new();
                    for f in files {
                        let parsed = parse_file(&f).map_err(|e| {
                            anyhow!("{e:#}\n  imported at {}:{}", d.file.display(), d.line)
                        })?;
                        all.extend(parsed.iter().map(|x| substitute(x, args)));
                    }
                    all
                }
            };
            out.extend(expand(pasted, snippets, depth + 1)?);
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(expand(block, snippets, depth)?);
        }
        out.push(d);
    }
    Ok(out)
}

fn is_snippet(d: &Directive) -> Option<String> {
    let w = d.words.first()?;
    (d.words.len() == 1 && w.starts_with('(') && w.ends_with(')') && d.block.is_some())
        .then(|| w[1..w.len() - 1].to_string())
}

/// Upstreams of every `reverse_proxy` under `dirs`, in order.
fn upstreams(dirs: &[Directive], out: &mut Vec<String>) {
    for d in dirs {
        if d.words.first().map(String::as_str) == Some("reverse_proxy") {
            let mut args = &d.words[1..];
            // An inline matcher comes first: a path, `*` or a named matcher.
            if args
                .first()
                .is_some_and(|a| a == "*" || a.starts_with('/') || a.starts_with('@'))
            {
                args = &args[1..];
            }
            let to = d
                .block
                .iter()
                .flatten()
                .filter(|s| s.words.first().map(String::as_str) == Some("to"))
                .flat_map(|s| s.words[1..].iter());
            for u in args.iter().chain(to) {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        if let Some(block) = &d.block {
            upstreams(block, out);
        }
    }
}

/// Every site of the Caddyfile at `path` (and what it imports).
pub fn read(path: &Path) -> Result<Vec<Vhost>> {
    let top = parse_file(path)?;
    let mut snippets = Snippets(Vec::new());
    let mut rest = Vec::new();
    for d in top {
        match is_snippet(&d) {
            Some(name) => snippets.0.push((name, d.block.unwrap_or_default())),
            None => rest.push(d),
        }
    }
    let top = expand(rest, &snippets, 0)?;
    // Without braces, a Caddyfile is one site: its first line the addresses.
    let sites: Vec<Directive> = if !top.is_empty() && top.iter().all(|d| d.block.is_none()) {
        let mut first = top[0].clone();
        first.block = Some(top[1..].to_vec());
        vec![first]
    } else {
        top
    };
    let mut vhosts = Vec::new();
    for site in sites {
        // The global options block has no address.
        if site.words.is_empty() {
            continue;
        }
        let Some(block) = &site.block else {
            bail!(
                "{}:{}: `{}` is neither a site block nor a snippet",
                site.file.display(),
                site.line,
                site.words.join(" ")
            );
        };
        let addresses: Vec<String> = site
            .words
            .iter()
            .flat_map(|w| w.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        let mut ups = Vec::new();
        upstreams(block, &mut ups);
        vhosts.push(Vhost {
            server: Server::Caddy,
            source: format!("{}:{}", site.file.display(), site.line),
            address: addresses[0].clone(),
            aliases: addresses[1..].to_vec(),
            https: false,
            port: None,
            upstreams: ups,
        });
    }
    Ok(vhosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<String> {
        tokenize(s, Path::new("t"))
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn comments_quotes_and_placeholders_tokenize_as_caddy_does() {
        assert_eq!(
            tokens("a.lan { # c\n  header X-A \"b \\\"c\\\" d\" `raw \"x\"` {http.request.host}#not\n}"),
            ["a.lan", "{", "header", "X-A", "b \"c\" d", "raw \"x\"", "{http.request.host}#not", "}"]
        );
        assert!(tokenize("a \"open", Path::new("t")).is_err());
    }
}
