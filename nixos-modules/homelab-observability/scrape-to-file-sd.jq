# One rendered scrape fragment ({"scrape_configs": [...]}) in, Prometheus
# file_sd target groups out. Per-job settings travel as the reserved target
# labels Prometheus honours before its job defaults (job, __metrics_path__,
# __scheme__, __scrape_interval__, __scrape_timeout__, __param_<name>), so one
# scrape config of the NixOS module carries every job with its own job label.

def supported: ["job_name", "static_configs", "metrics_path", "scheme",
  "scrape_interval", "scrape_timeout", "params"];

def unit_ms: {"y": 31536000000, "w": 604800000, "d": 86400000, "h": 3600000,
  "m": 60000, "s": 1000, "ms": 1};

# Milliseconds of a Prometheus duration such as "15s", "1h30m", "500ms".
def ms:
  [match("([0-9]+)(ms|y|w|d|h|m|s)"; "g").captures
   | (.[0].string | tonumber) * unit_ms[.[1].string]]
  | add // 0;

def seconds: ms / 1000;

# The duration as Prometheus prints a job's interval ("60s" -> "1m"): years
# and weeks only when they divide it exactly, then d, h, m, s, ms.
def canonical:
  ms as $total
  | if $total == 0 then "0s" else
      reduce (["y", true], ["w", true], ["d", false], ["h", false], ["m", false],
              ["s", false], ["ms", false]) as [$u, $exact]
        ({left: $total, out: ""};
         unit_ms[$u] as $mult
         | (.left / $mult | floor) as $n
         | if $n == 0 or ($exact and .left % $mult != 0) then .
           else {left: (.left - $n * $mult), out: (.out + "\($n)\($u)")} end)
      | .out
    end;

def job_labels($global_timeout):
  {job: .job_name}
  + (if .metrics_path then {__metrics_path__: .metrics_path} else {} end)
  + (if .scheme then {__scheme__: .scheme} else {} end)
  + (if .scrape_interval then {__scrape_interval__: (.scrape_interval | canonical)} else {} end)
  + (if .scrape_timeout then {__scrape_timeout__: (.scrape_timeout | canonical)}
     # As Prometheus does for a job: the timeout never exceeds the interval.
     elif .scrape_interval and ((.scrape_interval | seconds) < ($global_timeout | seconds))
     then {__scrape_timeout__: (.scrape_interval | canonical)}
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
