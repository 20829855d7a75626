# Values of the typed options that configgen would refuse when the tree is
# built (crates/configgen/src/validate), refused at evaluation instead, with
# the option's path. `settings` is configgen's own keys, handed over verbatim:
# configgen's message names them (`settings.<its path>`).
{
  lib,
  cfg,
  ...
}: let
  opt = "services.homelab-observability";
  matches = regex: s: builtins.match regex s != null;

  blank = matches "[[:space:]]*";
  labelName = matches "[a-zA-Z_][a-zA-Z0-9_]*";
  plainName = matches "[a-zA-Z0-9_-]+";
  hostName = s: lib.stringLength s <= 253 && matches "[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62}(\\.[a-zA-Z0-9_][a-zA-Z0-9_-]{0,62})*" s;
  host = s: hostName s || matches "[0-9a-fA-F:.]*:[0-9a-fA-F:.]*" s;
  hostPort = s: let
    m = builtins.match "(\\[[0-9a-fA-F:.]+]|[^:]+):0*([1-9][0-9]{0,4})" s;
  in
    m != null && (lib.hasPrefix "[" (lib.head m) || hostName (lib.head m)) && lib.toInt (lib.elemAt m 1) <= 65535;
  # Prometheus durations: units y w d h m s ms, each once, in that order; not 0.
  duration = s: matches "(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?" s && matches ".*[1-9].*" s;
  httpUrl = matches "https?://[^/?#@[:space:]]+([/?#].*)?";

  refuse = path: value: why: {
    assertion = false;
    message = "${opt}.${path} = ${builtins.toJSON value}: ${why}";
  };
  unless = ok: path: value: why: lib.optional (!ok) (refuse path value why);

  labelChecks = path: reserved: labels:
    lib.concatMap (name:
      unless (labelName name) "${path}.${name}" labels.${name} "`${name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
      ++ unless (!lib.hasPrefix "__" name) "${path}.${name}" labels.${name} "label names starting with `__` are reserved"
      ++ unless (!lib.elem name reserved) "${path}.${name}" labels.${name} "the `${name}` label is set by configgen")
    (lib.attrNames labels);

  durationChecks = lib.concatLists (lib.mapAttrsToList (path: value: unless (duration value) path value "not a Prometheus duration (e.g. 30s, 5m, 1h30m, 14d), or 0") {
    scrapeInterval = cfg.scrapeInterval;
    "retention.metrics" = cfg.retention.metrics;
    "retention.logs" = cfg.retention.logs;
    "retention.traces" = cfg.retention.traces;
  });

  serviceChecks = lib.concatLists (lib.mapAttrsToList (name: s: let
    at = "services.${lib.strings.escapeNixIdentifier name}";
  in
    lib.optional (!plainName name) {
      assertion = false;
      message = "${opt}.${at}: a service name may only contain letters, digits, '-' and '_' (it becomes the `service` label and part of file names).";
    }
    ++ labelChecks "${at}.labels" [
      "service"
      "instance"
      "job"
      "host"
    ]
    s.labels
    ++ lib.optionals (s ? interval) (unless (lib.isString s.interval && duration s.interval) "${at}.interval" s.interval "not a Prometheus duration (e.g. 30s, 5m), or 0")
    ++ lib.optionals (s.http != null) (unless (httpUrl s.http.url) "${at}.http.url" s.http.url "not an http:// or https:// URL with a host")
    ++ lib.optionals (s.tcp != null) (unless (hostPort s.tcp) "${at}.tcp" s.tcp "not host:port")
    ++ lib.optionals (s.icmp != null) (unless (host s.icmp) "${at}.icmp" s.icmp "not a host name or IP address")
    ++ lib.optionals (s.red != null) (
      unless (s.red.ports != [] || s.red.unit != null || s.red.container != null || s.red.client_ports != []) "${at}.red" s.red "say what to watch: ports, unit, container or client_ports"
      ++ unless (!lib.elem 0 s.red.ports) "${at}.red.ports" s.red.ports "port 0 is not a usable port"
      ++ unless (!lib.elem 0 s.red.client_ports) "${at}.red.client_ports" s.red.client_ports "port 0 is not a usable port"
      ++ lib.concatMap (key: lib.optionals (s.red.${key} != null) (unless (!blank s.red.${key}) "${at}.red.${key}" s.red.${key} "must not be empty")) ["unit" "container"]
      ++ lib.concatMap (route: unless (lib.hasPrefix "/" route) "${at}.red.routes" route "a route template starts with '/'") s.red.routes
    )
    ++ lib.optionals (s.logs != null) (lib.concatLists (lib.mapAttrsToList (key: value: unless (!blank value) "${at}.logs.${key}" value "must not be empty") s.logs)))
  cfg.services);

  receiverNames = map (r: r.name) cfg.receivers;
  receiverChecks =
    lib.concatMap (r:
      unless (!blank r.name) "receivers" r.name "a receiver name must not be empty"
      ++ unless (lib.count (n: n == r.name) receiverNames == 1) "receivers" r.name "two receivers are named `${r.name}`"
      ++ lib.optionals (r ? url) (unless (lib.isString r.url && httpUrl r.url) "receivers.${r.name}.url" r.url "not an http:// or https:// URL with a host"))
    cfg.receivers
    ++ lib.concatMap (name: unless (lib.elem name receiverNames) "defaultReceivers" name "no receiver is named `${name}` (${opt}.receivers)") cfg.defaultReceivers;

  portChecks = lib.concatLists (lib.mapAttrsToList (name: port: unless (port != 0) "ports.${name}" port "port 0 is not a usable port") cfg.ports);
in {
  assertions =
    lib.optional (blank cfg.hostName) {
      assertion = false;
      message = "${opt}.hostName is empty: it is the `host` label of everything this machine sends, and it defaults to networking.hostName, which is empty when the name comes from DHCP. Set ${opt}.hostName (or networking.hostName).";
    }
    ++ labelChecks "labels" ["host"] cfg.labels
    ++ lib.optionals (cfg.serverAddress != null) (unless (host cfg.serverAddress) "serverAddress" cfg.serverAddress "not a host name or IP address")
    ++ durationChecks
    ++ serviceChecks
    ++ receiverChecks
    ++ portChecks;
}
