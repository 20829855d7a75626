PROMETHEUS = "http://127.0.0.1:9090"
OK, MISSING = 40, 15

start_all()
for unit in ["nginx", "app-backend", "homelab-probe", "prometheus"]:
    machine.wait_for_unit(f"{unit}.service")
machine.wait_for_open_port(80)
machine.wait_for_open_port(9464)

machine.succeed(f"for i in $(seq {OK}); do curl -sf -o /dev/null http://app.local/red/ok; done")
machine.succeed(
    f"for i in $(seq {MISSING}); do test $(curl -s -o /dev/null -w '%{{http_code}}' http://app.local/red/nope$i) = 404; done"
)

query = (
    "sum by (http_response_status_code) "
    "(http_server_request_duration_seconds_count{service_name=\"app-local\", http_route=\"/red/{name}\"})"
)
expected = f'{{"200":"{OK}","404":"{MISSING}"}}'
machine.wait_until_succeeds(
    f"curl -sfG '{PROMETHEUS}/api/v1/query' --data-urlencode 'query={query}' "
    f"| jq -e '[.data.result[] | {{(.metric.http_response_status_code): .value[1]}}] | add == {expected}'",
    timeout=120,
)
