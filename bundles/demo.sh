#!/bin/sh
# What a container sees; copied into bundles/busybox/rootfs by `make bundle`.
echo "== rtctr demo: inside the container"
echo "hostname:   $(hostname)"
echo "pid:        $$ (the container's init)"
echo "user:       $(id)"
echo "cwd:        $(pwd)"
echo "processes:  $(ps -o pid= | wc -l) visible"
echo "caps:       $(grep CapEff /proc/self/status)"
echo "no_new_privs: $(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "cgroup:     $(head -n 3 /proc/self/cgroup | tr '\n' ' ')"
echo "network:    $(ls /sys/class/net | tr '\n' ' ')"
echo "root fs:    $(grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1)"
echo "mounts:"
cut -d' ' -f2,3 /proc/mounts | sed 's/^/  /'
if touch /proc/sys/kernel/x 2>/dev/null; then echo "/proc/sys writable?!"; else echo "/proc/sys:  read-only"; fi
echo "/proc/keys: $(wc -c < /proc/keys) bytes (masked)"
