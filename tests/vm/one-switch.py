import json

PROMETHEUS = "http://127.0.0.1:9090"
GRAFANA = "http://127.0.0.1:3000"
LOKI = "http://127.0.0.1:3100"

STACK = [
    "prometheus",
    "alertmanager",
    "prometheus-node-exporter",
    "prometheus-blackbox-exporter",
    "cadvisor",
    "loki",
    "tempo",
    "alloy",
    "grafana",
    "homelab-probe",
]
UNITS = STACK + ["nginx", "app-backend"]
PORTS = [9090, 9093, 9100, 9115, 8088, 3100, 3200, 12345, 3000, 9464, 80, 8080]
DATASOURCE_UIDS = ["prometheus", "loki", "tempo", "alertmanager"]
DASHBOARD_UIDS = {
    "homelab-overview",
    "homelab-host",
    "homelab-services",
    "homelab-probes",
    "homelab-logs",
    "homelab-containers",
}

start_all()
machine.wait_for_unit("multi-user.target")
for unit in UNITS:
    machine.wait_for_unit(f"{unit}.service")
for port in PORTS:
    machine.wait_for_open_port(port)

with subtest("every unit is active, none failed"):
    machine.succeed("systemctl is-system-running --wait || systemctl --failed --no-legend | (! grep .)")

with subtest("every TCP and UDP socket of the stack is on loopback, no gossip listener"):
    assert_loopback_only(machine, STACK)

with subtest("every Prometheus target is up"):
    machine.wait_until_succeeds(
        f"curl -sf '{PROMETHEUS}/api/v1/targets?state=active' "
        "| jq -e '.data.activeTargets | length > 0 and all(.health == \"up\")'",
        timeout=300,
    )
    jobs = json.loads(
        machine.succeed(
            f"curl -sf '{PROMETHEUS}/api/v1/targets?state=active' "
            "| jq -c '[.data.activeTargets[].labels.job] | unique'"
        )
    )
    machine.log(f"jobs: {jobs}")
    for job in ["prometheus", "alertmanager", "node", "blackbox_exporter", "cadvisor",
                "red_probe", "loki", "tempo", "alloy", "grafana", "blackbox_http"]:
        assert job in jobs, f"job {job} missing from {jobs}"

with subtest("the nginx virtual host is probed and up"):
    machine.wait_until_succeeds(
        f"curl -sfG '{PROMETHEUS}/api/v1/query' --data-urlencode 'query=probe_success{{service=\"app-local\"}}' "
        "| jq -e '.data.result | length == 1 and .[0].value[1] == \"1\"'",
        timeout=120,
    )

with subtest("alert rules are loaded"):
    machine.succeed(
        f"curl -sf '{PROMETHEUS}/api/v1/rules' "
        "| jq -e '[.data.groups[].rules[].name] | index(\"ServiceProbeFailed\") != null'"
    )

with subtest("Grafana serves every provisioned datasource and dashboard"):
    password = machine.succeed("cat /var/lib/homelab-observability/grafana-admin-password").strip()
    auth = f"-u 'admin:{password}'"
    machine.wait_until_succeeds(f"curl -sf {auth} {GRAFANA}/api/health", timeout=120)
    for uid in DATASOURCE_UIDS:
        machine.succeed(f"curl -sf {auth} {GRAFANA}/api/datasources/uid/{uid} | jq -e '.uid == \"{uid}\"'")
    rendered = set(
        machine.succeed("jq -r .uid /etc/homelab-observability/grafana/dashboards/*.json").split()
    )
    assert rendered == DASHBOARD_UIDS, f"rendered dashboards {rendered}"
    for uid in sorted(rendered):
        machine.wait_until_succeeds(
            f"curl -sf {auth} {GRAFANA}/api/dashboards/uid/{uid} | jq -e '.dashboard.uid == \"{uid}\"'",
            timeout=60,
        )

with subtest("a journal line reaches Loki"):
    machine.succeed("logger -t vm-test 'one-switch log line 7f3a'")
    machine.wait_until_succeeds(
        f"curl -sfG '{LOKI}/loki/api/v1/query_range' "
        "--data-urlencode 'query={host=~\".+\"} |= \"one-switch log line 7f3a\"' "
        "| jq -e '.data.result | length > 0'",
        timeout=120,
    )

with subtest("probe hardening"):
    # Exactly CAP_BPF (39), CAP_PERFMON (38), CAP_SYS_PTRACE (19), CAP_DAC_READ_SEARCH (2).
    machine.succeed(
        "grep -x 'CapEff:\\s*000000c000080004' "
        "/proc/$(systemctl show -p MainPID --value homelab-probe.service)/status"
    )
    machine.log(machine.succeed("systemd-analyze security homelab-probe.service | tail -1"))
