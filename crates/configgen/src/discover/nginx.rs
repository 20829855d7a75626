//! The `server` blocks of nginx site files and the upstreams they proxy to,
//! parsed with the nginx-lint-parser crate. `include` is followed (globs,
//! relative paths from nginx's prefix directory), `upstream` blocks from
//! every file read are resolved in `proxy_pass http://name`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nginx_lint_parser::ast::{ConfigItem, Directive};

use super::{glob, Server, Vhost};

/// A directive with the file it came from (after includes are pasted).
struct Located<'a> {
    d: &'a Directive,
    file: &'a Path,
}

struct Files {
    /// Relative includes are resolved from here (nginx's conf prefix).
    prefix: PathBuf,
    parsed: Vec<(PathBuf, nginx_lint_parser::ast::Config)>,
}

impl Files {
    fn load(&mut self, path: &Path, depth: usize) -> Result<()> {
        if depth > 10 {
            bail!("{}: includes nest too deep (a cycle?)", path.display());
        }
        if self.parsed.iter().any(|(p, _)| p == path) {
            return Ok(());
        }
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let cfg = nginx_lint_parser::parse_string(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let includes: Vec<String> = includes(&cfg.items);
        self.parsed.push((path.to_path_buf(), cfg));
        for inc in includes {
            let p = Path::new(&inc);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.prefix.join(p)
            };
            for f in glob(&p)? {
                self.load(&f, depth + 1)?;
            }
        }
        Ok(())
    }

    fn get(&self, path: &Path) -> Option<&[ConfigItem]> {
        self.parsed
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.items.as_slice())
    }

    /// The directives of `items`, with every `include` replaced by the
    /// directives of the files it names.
    fn flatten<'a>(&'a self, items: &'a [ConfigItem], file: &'a Path, out: &mut Vec<Located<'a>>) {
        for item in items {
            let ConfigItem::Directive(d) = item else {
                continue;
            };
            if d.is("include") {
                if let Some(inc) = d.first_arg() {
                    let p = Path::new(inc);
                    let p = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        self.prefix.join(p)
                    };
                    for f in glob(&p).unwrap_or_default() {
                        if let Some((path, cfg)) = self.parsed.iter().find(|(x, _)| *x == f) {
                            self.flatten(&cfg.items, path, out);
                        }
                    }
                }
                continue;
            }
            out.push(Located { d, file });
        }
    }
}

fn includes(items: &[ConfigItem]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        if let ConfigItem::Directive(d) = item {
            if d.is("include") {
                out.extend(d.first_arg().map(String::from));
            }
            if let Some(b) = &d.block {
                out.extend(includes(&b.items));
            }
        }
    }
    out
}

/// The directive's arguments as nginx reads them: the parser splits
/// `http://$name:8989` at the variable, nginx does not.
fn args(d: &Directive) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut end = None;
    for a in &d.args {
        let text = if a.is_quoted() {
            a.as_str()
        } else {
            a.raw.as_str()
        };
        match out.last_mut() {
            Some(last) if end == Some(a.span.start.offset) => last.push_str(text),
            _ => out.push(text.to_string()),
        }
        end = Some(a.span.end.offset);
    }
    out
}

/// The port of a `listen` (`443`, `[::]:443`, `127.0.0.1:8080`, `*:80`);
/// None for a unix socket.
fn listen_port(addr: &str) -> Option<u16> {
    if addr.starts_with("unix:") {
        return None;
    }
    let port = addr.rsplit_once(':').map_or(addr, |(_, p)| p);
    port.parse().ok()
}

/// `proxy_pass` targets of a server block, with upstream names resolved.
fn proxied(
    files: &Files,
    block: &[ConfigItem],
    file: &Path,
    upstreams: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<String>,
) {
    let mut dirs = Vec::new();
    files.flatten(block, file, &mut dirs);
    for Located { d, file } in dirs {
        if d.is("proxy_pass") || d.is("grpc_pass") {
            if let Some(target) = args(d).first() {
                let (scheme, rest) = target.split_once("://").unwrap_or(("", target));
                let host = rest.split(['/', ':']).next().unwrap_or("");
                let resolved = match upstreams.get(host) {
                    Some(servers) => servers.iter().map(|s| format!("{scheme}://{s}")).collect(),
                    None => vec![target.clone()],
                };
                for r in resolved {
                    if !out.contains(&r) {
                        out.push(r);
                    }
                }
            }
        }
        if let Some(b) = &d.block {
            proxied(files, &b.items, file, upstreams, out);
        }
    }
}

/// Every `server` block of the files `paths` (and what they include);
/// relative includes are resolved from `prefix` (nginx's, e.g. /etc/nginx).
/// `context` files are read only for their `upstream` blocks.
pub fn read(paths: &[PathBuf], prefix: &Path, context: &[PathBuf]) -> Result<Vec<Vhost>> {
    let mut files = Files {
        prefix: prefix.to_path_buf(),
        parsed: Vec::new(),
    };
    for p in paths.iter().chain(context) {
        files.load(p, 0)?;
    }
    // Every upstream of every file read: one may be declared in conf.d and used in a site.
    let mut upstreams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, cfg) in &files.parsed {
        for d in cfg.all_directives() {
            if d.is("upstream") {
                if let (Some(name), Some(b)) = (d.first_arg(), &d.block) {
                    let servers = b
                        .directives()
                        .filter(|s| s.is("server"))
                        .filter_map(|s| s.first_arg().map(String::from))
                        .collect();
                    upstreams.insert(name.to_string(), servers);
                }
            }
        }
    }
    let mut vhosts = Vec::new();
    for p in paths {
        let items = files.get(p).unwrap_or_default();
        let mut top = Vec::new();
        files.flatten(items, p, &mut top);
        let mut queue: Vec<Located> = top;
        while let Some(Located { d, file }) = queue.pop() {
            let Some(block) = &d.block else { continue };
            // Site files hold `server` blocks; a full nginx.conf nests them in `http`.
            if d.is("http") {
                files.flatten(&block.items, file, &mut queue);
                continue;
            }
            if !d.is("server") {
                continue;
            }
            let mut inner = Vec::new();
            files.flatten(&block.items, file, &mut inner);
            let names: Vec<String> = inner
                .iter()
                .filter(|l| l.d.is("server_name"))
                .flat_map(|l| args(l.d))
                .collect();
            let listens: Vec<(Option<u16>, bool)> = inner
                .iter()
                .filter(|l| l.d.is("listen"))
                .map(|l| {
                    let a = args(l.d);
                    (
                        a.first().and_then(|x| listen_port(x)),
                        a.iter().any(|x| x == "ssl"),
                    )
                })
                .collect();
            let https = listens.iter().any(|(_, ssl)| *ssl);
            let port = listens
                .iter()
                .filter(|(_, ssl)| *ssl == https)
                .find_map(|(p, _)| *p);
            let mut ups = Vec::new();
            proxied(&files, &block.items, file, &upstreams, &mut ups);
            vhosts.push(Vhost {
                server: Server::Nginx,
                source: format!("{}:{}", file.display(), d.span.start.line),
                address: names.first().cloned().unwrap_or_default(),
                aliases: names.iter().skip(1).cloned().collect(),
                https,
                port,
                upstreams: ups,
            });
        }
    }
    vhosts.sort_by_key(|v| source_order(&v.source));
    Ok(vhosts)
}

/// (file, line) of a `file:line` source, for ordering by file then line.
fn source_order(source: &str) -> (String, usize) {
    let (f, l) = source.rsplit_once(':').unwrap_or((source, "0"));
    (f.to_string(), l.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_ports_in_every_form() {
        assert_eq!(listen_port("443"), Some(443));
        assert_eq!(listen_port("[::]:443"), Some(443));
        assert_eq!(listen_port("127.0.0.1:8080"), Some(8080));
        assert_eq!(listen_port("*:80"), Some(80));
        assert_eq!(listen_port("unix:/run/nginx.sock"), None);
    }
}
