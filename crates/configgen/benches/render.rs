//! Render benchmark: configs with 10, 100 and 1,000 services (a mix of http,
//! tcp, icmp and dns checks), in each input format. Prints the median time of
//! load + validate + render, and separately of writing the tree. It asserts
//! nothing. Run: `cargo bench -p configgen --bench render`.

use std::time::{Duration, Instant};

use configgen::load::{self, Format, Source};
use serde_json::{json, Value};

fn config(services: usize) -> Value {
    let services: Vec<Value> = (0..services)
        .map(|i| {
            let name = format!("svc-{i}");
            let host = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            let check = match i % 4 {
                0 => json!({ "http": { "url": format!("http://{host}:8080/health") } }),
                1 => json!({ "tcp": format!("{host}:22") }),
                2 => json!({ "icmp": host }),
                _ => json!({ "dns": { "server": host, "query": format!("{name}.lan") } }),
            };
            let category = ["media", "storage", "network"][i % 3];
            let mut service = json!({ "name": name, "labels": { "category": category } });
            service
                .as_object_mut()
                .unwrap()
                .extend(check.as_object().unwrap().clone());
            service
        })
        .collect();
    json!({
        "host": { "name": "bench", "labels": { "site": "lab" } },
        "services": services,
        "network": { "gateway": "10.0.0.1", "resolvers": ["1.1.1.1"] },
        "alerting": {
            "receivers": [{ "type": "ntfy", "name": "phone", "url": "https://ntfy.sh/x" }],
            "default_receivers": ["phone"],
        },
    })
}

/// Block-style YAML for the plain data above (strings, numbers, maps, lists).
fn to_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        to_yaml(v, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {v}\n")),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let mut inner = String::new();
                to_yaml(item, indent + 2, &mut inner);
                out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    println!("services  format  input_bytes  load+validate+render  write_tree  files");
    let sizes: Vec<usize> = std::env::var("BENCH_SERVICES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    for n in sizes {
        let value = config(n);
        let mut yaml = String::new();
        to_yaml(&value, 0, &mut yaml);
        let inputs = [
            ("toml", toml::to_string(&value).unwrap(), Format::Toml),
            ("yaml", yaml, Format::Yaml),
            (
                "json",
                serde_json::to_string_pretty(&value).unwrap(),
                Format::Json,
            ),
            (
                "json-min",
                serde_json::to_string(&value).unwrap(),
                Format::Json,
            ),
        ];
        let runs = if n >= 1000 { 15 } else { 51 };
        for (name, text, format) in inputs {
            let src = Source::new(name, text.clone(), format);
            let mut tree = None;
            let compile: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    let cfg = load::load(&src).expect("bench config is valid");
                    tree = Some(configgen::render::render(&cfg).unwrap());
                    start.elapsed()
                })
                .collect();
            let tree = tree.unwrap();
            let out = tmp.path().join(format!("out-{n}-{name}"));
            let write: Vec<Duration> = (0..runs.min(21))
                .map(|_| {
                    let start = Instant::now();
                    configgen::write::write_tree(&tree, &out, &[]).unwrap();
                    start.elapsed()
                })
                .collect();
            println!(
                "{n:>8}  {name:>6}  {:>11}  {:>18.2?}  {:>10.2?}  {:>5}",
                text.len(),
                median(compile),
                median(write),
                tree.files().count()
            );
        }
    }
}
