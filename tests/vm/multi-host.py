PROMETHEUS = "http://127.0.0.1:9090"
LOKI = "http://127.0.0.1:3100"

AGENT_UNITS = ["alloy", "prometheus-node-exporter", "prometheus-blackbox-exporter", "cadvisor", "homelab-probe"]
SERVER_UNITS = AGENT_UNITS + ["prometheus", "alertmanager", "loki", "tempo", "grafana"]

start_all()
for unit in SERVER_UNITS:
    server.wait_for_unit(f"{unit}.service")
server.wait_for_open_port(9090)
server.wait_for_open_port(3100)
for unit in AGENT_UNITS:
    agent.wait_for_unit(f"{unit}.service")

with subtest("only the ports agents push to listen beyond loopback"):
    # Prometheus' remote-write receiver (its HTTP), Loki's push API (its HTTP)
    # and Tempo's OTLP gRPC receiver, the ports the firewall opens; Loki's
    # gRPC, Tempo's HTTP, gRPC and memberlist stay on loopback.
    assert_loopback_only(
        server,
        SERVER_UNITS,
        public={"prometheus": {9090}, "loki": {3100}, "tempo": {4327}},
    )

with subtest("every socket of the agent is on loopback"):
    assert_loopback_only(agent, AGENT_UNITS)

with subtest("the agent runs no server daemons"):
    agent.fail("systemctl is-active prometheus.service")
    agent.fail("systemctl is-active grafana.service")

with subtest("the agent's metrics arrive at the server"):
    server.wait_until_succeeds(
        f"curl -sfG '{PROMETHEUS}/api/v1/query' --data-urlencode 'query=node_uname_info{{host=\"agent\"}}' "
        "| jq -e '.data.result | length == 1'",
        timeout=300,
    )

with subtest("the agent's logs arrive at the server"):
    agent.succeed("logger -t vm-test 'agent log line 91c2'")
    server.wait_until_succeeds(
        f"curl -sfG '{LOKI}/loki/api/v1/query_range' "
        "--data-urlencode 'query={host=\"agent\"} |= \"agent log line 91c2\"' "
        "| jq -e '.data.result | length > 0'",
        timeout=180,
    )
