# One rendered scrape fragment ({"scrape_configs": [...]}) in, Prometheus
# file_sd target groups out. Per-job settings travel as the reserved target
# labels Prometheus honours before its job defaults (job, __metrics_path__,
# __scheme__, __scrape_interval__, __scrape_timeout__, __param_<name>), so one
# scrape config of the NixOS module carries every job with its own job label.

def supported: ["job_name", "static_configs", "metrics_path", "scheme",
  "scrape_interval", "scrape_timeout", "params"];

# Seconds of a single-unit Prometheus duration such as "15s", "5m", "500ms".
def seconds:
  capture("^(?<n>[0-9]+)(?<u>ms|s|m|h|d)$") as $d
  | ($d.n | tonumber) * ({"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[$d.u]);

def job_labels($global_timeout):
  {job: .job_name}
  + (if .metrics_path then {__metrics_path__: .metrics_path} else {} end)
  + (if .scheme then {__scheme__: .scheme} else {} end)
  + (if .scrape_interval then {__scrape_interval__: .scrape_interval} else {} end)
  + (if .scrape_timeout then {__scrape_timeout__: .scrape_timeout}
     # As Prometheus does for a job: the timeout never exceeds the interval.
     elif .scrape_interval and ((.scrape_interval | seconds) < ($global_timeout | seconds))
     then {__scrape_timeout__: .scrape_interval}
     else {} end)
  + ((.params // {}) | with_entries({key: ("__param_" + .key), value: (.value | first)}));

[ .scrape_configs[]
  | (keys - supported) as $extra
  | if ($extra | length) > 0 then
      error("job \(.job_name): \($extra | join(", ")) cannot be expressed as file_sd target labels")
    else . end
  | job_labels($global_timeout) as $labels
  | .static_configs[]
  | {targets: .targets, labels: ($labels + (.labels // {}))}
]
