# Services found in the machine's own NixOS configuration, in the shape of
# configgen's `[[services]]` entries, keyed by service name.
{lib}: {
  config,
  cfg,
}: let
  # Service names allow letters, digits, '-' and '_'.
  serviceName = lib.stringAsChars (c:
    if builtins.match "[A-Za-z0-9_-]" c != null
    then c
    else "-");

  # The local port behind a reverse proxy target such as "http://127.0.0.1:8096"
  # or Caddy's ":8096" (configgen's discover::local_port).
  localPort = target: let
    m = builtins.match "(https?://)?(127\\.0\\.0\\.1|localhost|\\[::1])?:([0-9]+).*" target;
    port = lib.toIntBase10 (lib.elemAt m 2);
  in
    if m == null || port > 65535
    then null
    else port;

  # RED ports: the local ports among the upstreams, sorted, each once.
  redOn = upstreams: let
    ports = lib.sort lib.lessThan (lib.unique (lib.filter (p: p != null) (map localPort upstreams)));
  in
    lib.optionalAttrs (ports != []) {red.ports = ports;};

  # Names that are not one concrete host (wildcards, regexes, catch-alls) cannot be probed.
  probeable = host: builtins.match "[A-Za-z0-9.-]+" host != null;

  # The upstreams of every reverse_proxy of a Caddy site, as configgen's
  # Caddyfile reader finds them: its arguments after an inline matcher (a
  # path, `*` or `@name`) and the `to` lines of its block. One directive a
  # line, braces as words of their own, as Caddyfiles are written.
  caddyUpstreams = text: let
    words = line: lib.filter (w: builtins.isString w && w != "") (builtins.split "[[:space:]]+" line);
    matcher = w: w == "*" || lib.hasPrefix "/" w || lib.hasPrefix "@" w;
    step = state: line: let
      ws = words line;
      directive =
        if ws == []
        then null
        else lib.head ws;
      args = lib.filter (w: w != "{" && w != "}") (lib.drop 1 ws);
      depth = state.depth + lib.count (w: w == "{") ws - lib.count (w: w == "}") ws;
      found =
        if directive == "reverse_proxy"
        then
          (
            if args != [] && matcher (lib.head args)
            then lib.drop 1 args
            else args
          )
        else if directive == "to" && state.proxy != null
        then args
        else [];
    in {
      inherit depth;
      # The depth a reverse_proxy block opened at, while inside it.
      proxy =
        if directive == "reverse_proxy" && lib.elem "{" ws
        then state.depth
        else if state.proxy != null && depth <= state.proxy
        then null
        else state.proxy;
      upstreams = state.upstreams ++ found;
    };
  in
    (lib.foldl' step {
      depth = 0;
      proxy = null;
      upstreams = [];
    } (lib.splitString "\n" text))
    .upstreams;

  nginxService = name: vhost: let
    nginx = config.services.nginx;
    host =
      if vhost.serverName != null
      then vhost.serverName
      else name;
    https = vhost.onlySSL || vhost.forceSSL;
    listenPorts = map (l: l.port) (lib.filter (l: l.port != null && (l.ssl or false) == https) vhost.listen);
    port =
      if listenPorts != []
      then lib.head listenPorts
      else if https
      then nginx.defaultSSLListenPort
      else nginx.defaultHTTPListenPort;
    defaultPort =
      if https
      then 443
      else 80;
    authority = host + lib.optionalString (port != defaultPort) ":${toString port}";
    root = vhost.locations."/" or {proxyPass = null;};
    backends = lib.optional (root.proxyPass != null) root.proxyPass;
  in
    {
      name = serviceName host;
      http.url = "${
        if https
        then "https"
        else "http"
      }://${authority}/";
      labels.discovered_from = "nginx";
    }
    // redOn backends;

  caddyService = name: vhost: let
    addr = vhost.hostName;
    plainHttp = lib.hasPrefix "http://" addr;
    hostPort = lib.removePrefix "http://" (lib.removePrefix "https://" addr);
    # ":8080" serves every name on that port, over plain HTTP.
    anyHost = lib.hasPrefix ":" hostPort;
    https = !plainHttp && !anyHost;
    local = builtins.match "(localhost|127\\.0\\.0\\.1)(:[0-9]+)?" hostPort != null;
  in
    {
      name = serviceName (
        if anyHost
        then "caddy${hostPort}"
        else hostPort
      );
      http =
        {
          url = "${
            if https
            then "https"
            else "http"
          }://${
            if anyHost
            then "127.0.0.1${hostPort}"
            else hostPort
          }/";
        }
        # Caddy serves localhost with its own internal CA.
        // lib.optionalAttrs (https && local) {insecure_skip_verify = true;};
      labels.discovered_from = "caddy";
    }
    // redOn (caddyUpstreams vhost.extraConfig);

  # "8080:80", "127.0.0.1:8080:80", "8080:80/tcp" -> host address and port; null for
  # UDP, ranges and unpublished ports.
  publishedPort = spec: let
    m = builtins.match "((.*):)?([0-9]+):([0-9]+)(/tcp)?" spec;
    addr =
      if m == null
      then null
      else lib.elemAt m 1;
  in
    if m == null
    then null
    else {
      address =
        if addr == null || addr == "" || addr == "0.0.0.0" || addr == "[::]"
        then "127.0.0.1"
        else addr;
      port = lib.elemAt m 2;
    };

  containerService = name: container: let
    published = lib.filter (p: p != null) (map publishedPort container.ports);
  in
    {
      name = serviceName name;
      logs.container = name;
      labels.discovered_from = "oci-containers";
    }
    // lib.optionalAttrs (published != []) {
      tcp = with lib.head published; "${address}:${port}";
    };

  byName = services: lib.listToAttrs (map (s: lib.nameValuePair s.name s) services);

  nginx = lib.optionals (cfg.discovery.nginx && config.services.nginx.enable) (
    lib.mapAttrsToList nginxService (
      lib.filterAttrs (
        name: vhost:
          probeable (
            if vhost.serverName != null
            then vhost.serverName
            else name
          )
      )
      config.services.nginx.virtualHosts
    )
  );
  caddy = lib.optionals (cfg.discovery.caddy && config.services.caddy.enable) (
    lib.mapAttrsToList caddyService (
      lib.filterAttrs (
        name: vhost: let
          hostPort = lib.removePrefix "http://" (lib.removePrefix "https://" vhost.hostName);
        in
          lib.hasPrefix ":" hostPort || probeable (lib.head (lib.splitString ":" hostPort))
      )
      config.services.caddy.virtualHosts
    )
  );
  containers = lib.optionals cfg.discovery.ociContainers (
    lib.mapAttrsToList containerService config.virtualisation.oci-containers.containers
  );
in
  byName (containers ++ caddy ++ nginx)
