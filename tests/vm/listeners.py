import re

GOSSIP_PORT = 9094  # Alertmanager's cluster listener, off without peers


def stack_sockets(node, units):
    """Every listening TCP socket and bound UDP socket of the given systemd
    units, as (proto, local address, unit)."""
    owners: dict[str, str] = {}
    for line in node.succeed(
        "for pid in $(ss -Htulnp | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do "
        "echo \"$pid $(tail -1 /proc/$pid/cgroup 2>/dev/null)\"; done"
    ).splitlines():
        fields = line.split(maxsplit=1)
        if len(fields) == 2:  # else the process has exited meanwhile
            owners[fields[0]] = fields[1].rsplit("/", 1)[-1].removesuffix(".service")
    sockets: list[tuple[str, str, str]] = []
    for proto in ["tcp", "udp"]:
        for line in node.succeed(f"ss -Hln --{proto} -p").splitlines():
            local = line.split()[3]
            for pid in set(re.findall(r"pid=(\d+)", line)):
                if owners.get(pid) in units:
                    sockets.append((proto, local, owners[pid]))
    return sorted(set(sockets))


def is_loopback(local):
    host = local.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


def port_of(local):
    return int(local.rsplit(":", 1)[1])


def assert_loopback_only(node, units, public=None):
    """Every socket of `units` is bound to loopback, except the ports `public`
    allows per unit ({unit: {port, ...}}); nothing listens on the gossip port."""
    public = public or {}
    sockets = stack_sockets(node, units)
    node.log("\n".join(f"{proto} {local} {unit}" for proto, local, unit in sockets))
    seen = {unit for _, _, unit in sockets}
    missing = set(units) - seen
    assert not missing, f"units without any socket (not running?): {sorted(missing)}"
    for proto, local, unit in sockets:
        assert port_of(local) != GOSSIP_PORT, f"{unit} listens on {proto} {local}"
        if port_of(local) in public.get(unit, set()):
            continue
        assert is_loopback(local), f"{unit} listens beyond loopback: {proto} {local}"


