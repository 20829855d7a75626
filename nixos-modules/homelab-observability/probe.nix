# The eBPF RED probe: its own unit, with only the privileges it needs. The
# capabilities are those the probe was measured to need (docs/probe.md,
# "Capabilities"); their one home is configgen's runtime model
# (`probe_capabilities` in crates/configgen/src/runtime.rs), and nix-checks'
# flag_parity test requires this unit's to be equal. How each directive was
# checked is listed in docs/nixos.md.
{
  lib,
  cfg,
  model,
  on,
  flags,
  containerSockets,
  ...
}: let
  # The Podman API sockets the probe asks for containers' labels (homelab.red),
  # as configgen decides it (`containers::probe_sockets`): with container
  # discovery on, every socket not named docker.sock (Docker's labels are read
  # on disk).
  podmanSockets =
    lib.optionals (model.discovery.containers or true)
    (builtins.filter (s: baseNameOf s != "docker.sock") containerSockets);
  usesSockets = podmanSockets != [];
  capabilities =
    [
      "CAP_BPF" # load the BPF programs and maps
      "CAP_PERFMON" # attach them to the syscall tracepoints
      "CAP_DAC_READ_SEARCH" # tracefs event ids (mode 0700), other users' /proc/<pid>/fd, Docker's container configs
      "CAP_SYS_PTRACE" # readlink of other users' /proc/<pid>/fd: connections open before the probe started
    ]
    # libssl uprobes: the uprobe PMU refuses CAP_PERFMON alone
    ++ lib.optional model.exporters.probe.tls "CAP_SYS_ADMIN"
    # Podman's sockets are 0660 (root's, or the rootless user's); the probe
    # runs as a dynamic user
    ++ lib.optional usesSockets "CAP_DAC_OVERRIDE";
in
  lib.mkIf on.probe {
    systemd.services.homelab-probe = {
      description = "homelab-observability eBPF RED probe";
      wantedBy = ["multi-user.target"];
      # Tracepoint ids are read from tracefs; the probe cannot mount it itself
      # here (/sys is read-only, no CAP_SYS_ADMIN, no mount()).
      wants = ["sys-kernel-tracing.mount"];
      after = [
        "network.target"
        "sys-kernel-tracing.mount"
      ];
      serviceConfig = {
        ExecStart = lib.escapeShellArgs (["${cfg.probe.package}/bin/homelab-probe"] ++ flags.probe);
        Restart = "on-failure";
        RestartSec = 5;

        DynamicUser = true;
        AmbientCapabilities = capabilities;
        CapabilityBoundingSet = capabilities;
        NoNewPrivileges = true;

        ProtectSystem = "strict";
        # Rootless users' Podman sockets are under /run/user.
        ProtectHome =
          if usesSockets
          then "read-only"
          else true;
        PrivateTmp = true;
        PrivateDevices = true;
        # Not PrivateUsers: capabilities inside a user namespace do not count
        # for bpf() and perf_event_open() on the host.
        ProtectHostname = true;
        ProtectClock = true;
        # /sys (with /sys/kernel/tracing and /sys/kernel/btf) read-only: enough
        # to read tracepoint ids and BTF.
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        # Read-only /sys/fs/cgroup, same cgroup namespace: the cgroup ids of
        # watched units match what BPF sees (not "private"/"strict").
        ProtectControlGroups = true;
        # Its only sockets: the metrics listener (tokio's signal pipe is a
        # socketpair(), which this does not restrict), and Podman's API sockets.
        RestrictAddressFamilies =
          [
            "AF_INET"
            "AF_INET6"
          ]
          ++ lib.optional usesSockets "AF_UNIX";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        # bpf is in @privileged, perf_event_open in @debug: neither is in
        # @system-service.
        SystemCallFilter = [
          "@system-service"
          "bpf"
          "perf_event_open"
        ];
        # A filtered call (e.g. mount) fails with EPERM, which the probe
        # reports, instead of killing it with SIGSYS.
        SystemCallErrorNumber = "EPERM";
        UMask = "0077";
      };
    };
  }
