PROMETHEUS = "http://127.0.0.1:9090"

def notifications(status):
    return (
        "journalctl -u alert-sink.service -o cat "
        "| sed -n 's/^NOTIFICATION //p' "
        "| jq -e -s --arg status " + status + " "
        "'any(.[]; .status == $status and any(.alerts[]; .labels.alertname == \"ServiceProbeFailed\" "
        "and .labels.service == \"app-local\"))'"
    )

start_all()
for unit in ["nginx", "app-backend", "alert-sink", "prometheus", "alertmanager", "prometheus-blackbox-exporter"]:
    machine.wait_for_unit(f"{unit}.service")
machine.wait_until_succeeds(
    f"curl -sfG '{PROMETHEUS}/api/v1/query' --data-urlencode 'query=probe_success{{service=\"app-local\"}} == 1' "
    "| jq -e '.data.result | length == 1'",
    timeout=120,
)

with subtest("stopping the backend fires ServiceProbeFailed"):
    machine.succeed("systemctl stop app-backend.service")
    machine.wait_until_succeeds(notifications("firing"), timeout=180)

with subtest("starting it again resolves the alert"):
    machine.succeed("systemctl start app-backend.service")
    machine.wait_until_succeeds(notifications("resolved"), timeout=300)
