#!/bin/bash
# Drives Docker (Debian's docker.io 20.10: dockerd with its own containerd and
# the runc shim v2) with rtctr as an added runtime, and checks what comes out.
#   integration/engines/docker.sh /abs/path/to/rtctr
# Prints `PASS|FAIL|SKIP <step>: <detail>` per step and `N passed, M failed[, K skipped]`;
# exits non-zero if a step failed. Root only. See integration/engines/README.md.
#
# dockerd runs in a network namespace of its own (`ip netns add`), so its
# docker0 bridge, iptables rules and published ports never touch the host's
# network; its data root, exec root, pidfile, socket and config are under
# /tmp/rtctr-docker-<pid>. The default bridge network is on (iptables, bridge
# 10.203.77.0/24); an "outside" namespace linked to dockerd's by a veth
# (10.203.78.0/24) reaches a published port. Environment: ENGINES_STRICT=1,
# RTCTR_ARGV_LOG=FILE (default /tmp/rtctr-docker-argv.log) as for podman.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
RTCTR=$(readlink -f "$1")
[ -x "$RTCTR" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }

apt_need docker.io busybox-static file bsdutils iproute2 iptables ||
    { echo "$0: cannot install docker.io" >&2; exit 2; }

WORK=/tmp/rtctr-docker-$$
rm -rf "$WORK"
mkdir -p "$WORK"
ARGV_LOG=${RTCTR_ARGV_LOG:-/tmp/rtctr-docker-argv.log}
: >"$ARGV_LOG"
make_shim "$WORK/bin"
SHIM=$WORK/bin/rtctr
SOCK=$WORK/docker.sock
NETNS=rtctr-docker-$$
OUTNS=rtctr-docker-out-$$
# the runc shim's --root for a runtime Docker knows by name (docker 20.10)
# (docker 20.10: <exec-root>/runtime-runc/moby for any runc-shim runtime)
SHIM_ROOT=$WORK/exec/runtime-runc/moby
IMG=rtctr-engines/busybox:latest
C=rtctr-dk-$$
DOCKERD_PID=""
# Debian's client (20.10), not another docker on PATH
DOCKER_BIN=/usr/bin/docker

dk() { timeout -k 5 "${DK_TIMEOUT:-60}" "$DOCKER_BIN" -H "unix://$SOCK" "$@"; }

cleanup() {
    set +e
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        local ids
        ids=$(DK_TIMEOUT=30 dk ps -aq 2>/dev/null)
        [ -n "$ids" ] && DK_TIMEOUT=60 dk rm -f $ids >/dev/null 2>&1
        DK_TIMEOUT=30 dk rmi -f "$IMG" >/dev/null 2>&1
        kill "$DOCKERD_PID"
        local t
        for t in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
    fi
    # its containerd and shims (their command lines name our private directories)
    local p
    for p in $(pgrep -f "$WORK/exec/containerd"); do kill -9 "$p"; done
    if [ -d "$SHIM_ROOT" ]; then
        for t in $("$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null); do
            "$RTCTR" --root "$SHIM_ROOT" delete --force "$t" >/dev/null 2>&1
        done
    fi
    ip netns del "$OUTNS" 2>/dev/null
    ip netns del "$NETNS" 2>/dev/null
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dockerd's network namespace, and an outside one linked to it
ip netns add "$NETNS" && ip netns add "$OUTNS" || { echo "$0: ip netns add failed" >&2; exit 2; }
ip -n "$NETNS" link set lo up
ip -n "$OUTNS" link set lo up
ip -n "$NETNS" link add ext0 type veth peer name eth0 netns "$OUTNS"
ip -n "$NETNS" addr add 10.203.78.1/24 dev ext0
ip -n "$NETNS" link set ext0 up
ip -n "$OUTNS" addr add 10.203.78.2/24 dev eth0
ip -n "$OUTNS" link set eth0 up

echo '{}' >"$WORK/daemon.json"
# nsenter, not `ip netns exec`: the latter mounts a fresh /sys, hiding the
# cgroup hierarchies dockerd needs.
nsenter --net="/run/netns/$NETNS" dockerd --config-file "$WORK/daemon.json" \
    --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/docker.pid" \
    -H "unix://$SOCK" --add-runtime "rtctr=$SHIM" \
    --bip 10.203.77.1/24 --iptables=true --ip-forward=true \
    --storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
dockerd_up() { kill -0 "$DOCKERD_PID" 2>/dev/null || return 2; dk version >/dev/null 2>&1; }
wait_for 30 dockerd_up && dockerd_up ||
    { echo "$0: dockerd did not start:" >&2; tail -5 "$WORK/dockerd.log" >&2; exit 2; }

# The image: a busybox rootfs tarball, imported (no registry)
sh "$here/../../bundles/mkrootfs.sh" "$WORK/rootfs" >/dev/null &&
    tar --owner=0 --group=0 --numeric-owner -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" . &&
    dk import --change 'CMD ["sh"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$WORK/rootfs.tar" "$IMG" >/dev/null ||
    { echo "$0: could not import the image" >&2; exit 2; }
rm -rf "$WORK/rootfs" "$WORK/rootfs.tar"
note "rtctr: $RTCTR ($("$RTCTR" --version 2>&1 | head -1)); docker $(dk version -f '{{.Server.Version}}' 2>/dev/null)"

cap() {
    OUT=$("$@" 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)
}
want_out() {
    DETAIL="rc=$RC out='$OUT'"
    [ "$RC" = "$1" ] && [[ $OUT == *"$2"* ]]
}
status_of() { dk inspect -f '{{.State.Status}}' "$1" 2>/dev/null; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
in_rtctr_list() { "$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null | grep -q "^$1"; }
full_id() { dk inspect -f '{{.Id}}' "$1" 2>/dev/null; }

RUN=(run --runtime rtctr)
LOOP='trap "exit 0" TERM; echo started; while :; do sleep 1; done'

step_run() { cap dk "${RUN[@]}" --rm "$IMG" echo hello-rtctr; want_out 0 hello-rtctr; }
step_run_exit_code() { cap dk "${RUN[@]}" --rm "$IMG" sh -c 'exit 3'; want_out 3 ""; }
step_run_stdin() {
    OUT=$(printf 'line-one\nline-two\n' | dk "${RUN[@]}" --rm -i "$IMG" sh -c 'tr a-z A-Z; echo eof' 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ')
    want_out 0 "LINE-ONE LINE-TWO eof"
}
step_run_tty() {
    # docker run -t needs a terminal of its own: script(1) gives it one
    cap script -qec "$DOCKER_BIN -H unix://$SOCK run --runtime rtctr --rm -t $IMG tty" /dev/null
    want_out 0 /dev/pts/
}
step_run_detached() {
    cap dk "${RUN[@]}" -d --name "$C-d" "$IMG" sh -c "$LOOP"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-d" running || { DETAIL="$DETAIL; status $(status_of "$C-d")"; return 1; }
    local st
    st=$("$RTCTR" --root "$SHIM_ROOT" state "$(full_id "$C-d")" 2>&1 | tr -d ' \n')
    DETAIL="running; rtctr state: $(cut -c1-80 <<<"$st")"
    [[ $st == *'"status":"running"'* ]]
}
step_inspect_runtime() {
    cap dk inspect -f '{{.HostConfig.Runtime}}' "$C-d"
    want_out 0 rtctr
}
step_exec() { cap dk exec "$C-d" sh -c 'echo exec-out; cat /proc/1/cmdline | tr "\0" " "'; want_out 0 "exec-out sh -c"; }
step_exec_exit_code() { cap dk exec "$C-d" sh -c 'exit 4'; want_out 4 ""; }
step_exec_tty() {
    cap script -qec "$DOCKER_BIN -H unix://$SOCK exec -t $C-d tty" /dev/null
    want_out 0 /dev/pts/
}
step_logs() { cap dk logs "$C-d"; want_out 0 started; }
step_stats() {
    cap dk stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.PIDs}}' "$C-d"
    want_out 0 "$C-d" || return 1
    # a memory figure and at least the shell and its sleep
    [[ $OUT =~ [0-9.]+[KMG]i?B\ /\ .*\ ([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ]
}
step_pause_unpause() {
    cap dk pause "$C-d"
    want_out 0 "" || return 1
    is_status "$C-d" paused || { DETAIL="$DETAIL; after pause: $(status_of "$C-d")"; return 1; }
    local frozen pid
    pid=$(dk inspect -f '{{.State.Pid}}' "$C-d")
    frozen=$(awk '/^State:/ {print $2}' "/proc/$pid/status")
    cap dk unpause "$C-d"
    want_out 0 "" || return 1
    is_status "$C-d" running || { DETAIL="$DETAIL; after unpause: $(status_of "$C-d")"; return 1; }
    DETAIL="paused (init in state $frozen), then running"
}
memory_limit() { # memory limit of the container's cgroup, read on the host
    local pid cg
    pid=$(dk inspect -f '{{.State.Pid}}' "$1")
    cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
    if [ -n "$cg" ]; then
        cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes"
    else
        cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
        cat "/sys/fs/cgroup$cg/memory.max"
    fi
}
step_update_memory() {
    cap dk update --memory 64m --memory-swap 128m "$C-d"
    want_out 0 "" || return 1
    local lim
    lim=$(memory_limit "$C-d" 2>&1)
    DETAIL="$DETAIL; cgroup memory limit $lim"
    [ "$lim" = 67108864 ]
}
step_bridge_network() {
    # the default bridge: eth0 in 10.203.77.0/24, the gateway answers
    cap dk exec "$C-d" sh -c 'ip -4 -o addr show eth0; ping -c1 -W2 10.203.77.1 >/dev/null && echo gw-ok'
    want_out 0 "inet 10.203.77." && [[ $OUT == *gw-ok* ]]
}
step_published_port() {
    # outside namespace -> dockerd's namespace:18080 -> the container's :80 (iptables DNAT)
    cap dk "${RUN[@]}" -d --name "$C-p" -p 18080:80 "$IMG" \
        sh -c 'echo "served-by-$(hostname)" >/tmp/index.html; httpd -f -p 80 -h /tmp'
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-p" running || { DETAIL="$DETAIL; status $(status_of "$C-p")"; return 1; }
    local host got
    host=$(dk inspect -f '{{.Config.Hostname}}' "$C-p")
    http_get() { # (bash's /dev/tcp: the host's busybox wget may crash)
        got=$(ip netns exec "$OUTNS" timeout 3 bash -c \
            'exec 3<>/dev/tcp/10.203.78.1/18080; printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3' 2>&1 | tail -n 1)
        [ "$got" = "served-by-$host" ]
    }
    wait_for 10 http_get
    DETAIL="outside got '$got'"
    dk rm -f "$C-p" >/dev/null 2>&1
    [ "$got" = "served-by-$host" ]
}
step_read_only_tmpfs() {
    cap dk "${RUN[@]}" --rm --read-only --tmpfs /scratch "$IMG" \
        sh -c 'touch /x 2>&1 || echo ro-refused; echo w >/scratch/f && cat /scratch/f; grep " /scratch " /proc/mounts'
    want_out 0 "ro-refused" && [[ $OUT == *"w tmpfs /scratch tmpfs"* ]]
}
step_stop() {
    cap dk stop -t 10 "$C-d"
    want_out 0 "" || return 1
    is_status "$C-d" exited || { DETAIL="$DETAIL; status $(status_of "$C-d")"; return 1; }
    local code
    code=$(dk inspect -f '{{.State.ExitCode}}' "$C-d")
    DETAIL="exited with $code after SIGTERM"
    [ "$code" = 0 ]
}
step_rm() {
    local id
    id=$(full_id "$C-d")
    cap dk rm "$C-d"
    want_out 0 "" || return 1
    if in_rtctr_list "$id"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="removed, gone from rtctr list"
}
step_rm_force_running() {
    cap dk "${RUN[@]}" -d --name "$C-f" "$IMG" sleep 1000
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-f" running || return 1
    local id
    id=$(full_id "$C-f")
    cap dk rm -f "$C-f"
    want_out 0 "" || return 1
    if in_rtctr_list "$id"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="force-removed a running container"
}
step_error_not_in_path() {
    cap dk "${RUN[@]}" --rm "$IMG" no-such-command
    DETAIL="rc=$RC out='$OUT'"
    [ "$RC" = 127 ] && [[ $OUT == *no-such-command* ]]
}
step_no_leftovers() {
    local left
    left="containers: $(dk ps -aq | tr '\n' ' ') rtctr: $("$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null | tr '\n' ' ')"
    DETAIL=$left
    [ "$left" = "containers:  rtctr: " ]
}

# name                          | needs         | function
run_steps <<'STEPS'
run --runtime rtctr             | -             | step_run
run exit code                   | -             | step_run_exit_code
run -i with stdin               | -             | step_run_stdin
run -t                          | terminal      | step_run_tty
run -d                          | -             | step_run_detached
inspect shows runtime rtctr     | -             | step_inspect_runtime
exec                            | exec          | step_exec
exec exit code                  | exec          | step_exec_exit_code
exec -t                         | exec,terminal | step_exec_tty
logs                            | -             | step_logs
stats                           | -             | step_stats
pause/unpause                   | pause,resume  | step_pause_unpause
update --memory                 | update        | step_update_memory
default bridge network          | exec          | step_bridge_network
published port from outside    | -             | step_published_port
--read-only with --tmpfs        | -             | step_read_only_tmpfs
stop                            | -             | step_stop
rm                              | -             | step_rm
rm -f running                   | -             | step_rm_force_running
error: not in PATH              | -             | step_error_not_in_path
no containers left              | -             | step_no_leftovers
STEPS

summary
