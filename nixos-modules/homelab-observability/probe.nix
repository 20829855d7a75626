# The eBPF RED probe: its own unit, with only the privileges eBPF tracing needs.
{
  lib,
  cfg,
  on,
  tree,
  ...
}: let
  capabilities = [
    "CAP_BPF" # load BPF programs and maps
    "CAP_PERFMON" # attach to tracepoints and uprobes, read kernel memory through BPF
    "CAP_SYS_RESOURCE" # raise RLIMIT_MEMLOCK for BPF maps on kernels older than 5.11
    "CAP_SYS_PTRACE" # read /proc/<pid>/fd and /proc/<pid>/exe of other users' processes
    "CAP_DAC_READ_SEARCH" # enter those /proc directories
  ];
in
  lib.mkIf on.probe {
    systemd.services.homelab-probe = {
      description = "homelab-observability eBPF RED probe";
      wantedBy = ["multi-user.target"];
      after = ["network.target"];
      serviceConfig = {
        ExecStart = "${cfg.probe.package}/bin/homelab-probe --config ${tree}/probe/probe.toml";
        Restart = "on-failure";
        RestartSec = 5;

        DynamicUser = true;
        AmbientCapabilities = capabilities;
        CapabilityBoundingSet = capabilities;
        LimitMEMLOCK = "infinity";
        NoNewPrivileges = true;

        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        # Not PrivateUsers: capabilities in a user namespace do not cover bpf().
        # Not ProtectProc=invisible: the probe names processes of every user.
        ProtectHostname = true;
        ProtectClock = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "bpf"
          "perf_event_open"
        ];
        UMask = "0077";
      };
    };
  }
