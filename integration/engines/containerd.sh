#!/bin/bash
# Drives containerd (runc shim v2, io.containerd.runc.v2) with rtctr as the
# runc binary, through `ctr`, and checks what comes out.
#   integration/engines/containerd.sh /abs/path/to/rtctr
# Prints `PASS|FAIL|SKIP <step>: <detail>` per step and `N passed, M failed[, K skipped]`;
# exits non-zero if a step failed. Root only. See integration/engines/README.md.
#
# It starts its own containerd (private config, root, state and socket under
# /tmp/rtctr-ctrd-<pid>) and stops it at the end; the host's containerd, if
# any, is not touched. Environment: ENGINES_STRICT=1, RTCTR_ARGV_LOG=FILE
# (default /tmp/rtctr-containerd-argv.log) as for podman.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
RTCTR=$(readlink -f "$1")
[ -x "$RTCTR" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }

apt_need containerd busybox-static file bsdutils || { echo "$0: cannot install containerd" >&2; exit 2; }

WORK=/tmp/rtctr-ctrd-$$
rm -rf "$WORK"
mkdir -p "$WORK"
ARGV_LOG=${RTCTR_ARGV_LOG:-/tmp/rtctr-containerd-argv.log}
: >"$ARGV_LOG"
make_shim "$WORK/bin"
SHIM=$WORK/bin/rtctr
SOCK=$WORK/containerd.sock
NS=rtctr-engines-$$
# the runc shim's default --root for runc: /run/containerd/runc/<namespace>
SHIM_ROOT=/run/containerd/runc/$NS
IMG=docker.io/rtctr/busybox:engines
C=rtctr-cd-$$
CTRD_PID=""

ctr_() { timeout -k 5 "${CTR_TIMEOUT:-60}" ctr --address "$SOCK" --namespace "$NS" "$@"; }

cleanup() {
    set +e
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        local t
        for t in $(CTR_TIMEOUT=10 ctr_ task ls -q 2>/dev/null); do
            CTR_TIMEOUT=10 ctr_ task kill -a -s SIGKILL "$t" >/dev/null 2>&1
        done
        sleep 0.5
        for t in $(CTR_TIMEOUT=10 ctr_ task ls -q 2>/dev/null); do
            CTR_TIMEOUT=10 ctr_ task delete -f "$t" >/dev/null 2>&1
        done
        for t in $(CTR_TIMEOUT=10 ctr_ container ls -q 2>/dev/null); do
            CTR_TIMEOUT=10 ctr_ container delete "$t" >/dev/null 2>&1
        done
        CTR_TIMEOUT=10 ctr_ image rm "$IMG" >/dev/null 2>&1
        CTR_TIMEOUT=10 ctr_ content prune references >/dev/null 2>&1
        CTR_TIMEOUT=10 ctr --address "$SOCK" namespace rm "$NS" >/dev/null 2>&1
        kill "$CTRD_PID"
        for t in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$CTRD_PID" 2>/dev/null && kill -9 "$CTRD_PID"
    fi
    # shims this containerd started (their -address is our private socket)
    local p
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK"); do kill -9 "$p"; done
    # containers a failed step left in rtctr's state under the shim's root
    if [ -d "$SHIM_ROOT" ]; then
        for t in $("$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null); do
            "$RTCTR" --root "$SHIM_ROOT" delete --force "$t" >/dev/null 2>&1
        done
        rm -rf "$SHIM_ROOT"
    fi
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private containerd. No CRI plugin: ctr needs none, and it would want
# CNI and a sandbox image.
cat >"$WORK/config.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$WORK/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/opt"
EOF
containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
CTRD_PID=$!
wait_for 20 test -S "$SOCK" && wait_for 10 ctr --address "$SOCK" version >/dev/null 2>&1 ||
    { echo "$0: containerd did not start:" >&2; tail -5 "$WORK/containerd.log" >&2; exit 2; }

# The image: an OCI archive of a busybox rootfs, made by hand (one
# uncompressed layer), imported.
make_image() {
    local oci=$WORK/oci arch l ls c cs m ms
    arch=$(dpkg --print-architecture)
    mkdir -p "$oci/blobs/sha256"
    sh "$here/../../bundles/mkrootfs.sh" "$WORK/rootfs" >/dev/null || return 1
    tar --sort=name --owner=0 --group=0 --numeric-owner -C "$WORK/rootfs" -cf "$WORK/layer.tar" . || return 1
    put() { # put FILE -> digest and size in $d $s
        d=$(sha256sum "$1" | cut -d' ' -f1)
        s=$(stat -c %s "$1")
        mv "$1" "$oci/blobs/sha256/$d"
    }
    local d s
    put "$WORK/layer.tar"; l=$d; ls=$s
    printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$arch" "$l" >"$WORK/config.json"
    put "$WORK/config.json"; c=$d; cs=$s
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$c" "$cs" "$l" "$ls" >"$WORK/manifest.json"
    put "$WORK/manifest.json"; m=$d; ms=$s
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"engines"}}]}' \
        "$m" "$ms" "$arch" "$IMG" >"$oci/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
    tar -C "$oci" -cf "$WORK/image.tar" oci-layout index.json blobs &&
        ctr_ image import "$WORK/image.tar" >/dev/null
}
make_image || { echo "$0: could not make the image" >&2; exit 2; }
rtctr_version=$("$RTCTR" --version 2>&1)
note "rtctr: $RTCTR (${rtctr_version%%$'\n'*}); containerd $(containerd --version | awk '{print $3}')"

cap() {
    OUT=$("$@" 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)
}
want_out() {
    DETAIL="rc=$RC out='$OUT'"
    [ "$RC" = "$1" ] && [[ $OUT == *"$2"* ]]
}
task_status() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
is_status() { [ "$(task_status "$1")" = "$2" ]; }
in_rtctr_list() { "$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null | grep -qx "$1"; }

RUN=(run --runc-binary "$SHIM")
LOOP='trap "exit 0" TERM; echo started; while :; do sleep 1; done'

step_run() { cap ctr_ "${RUN[@]}" --rm "$IMG" "$C-r1" echo hello-rtctr; want_out 0 hello-rtctr; }
step_run_exit_code() { cap ctr_ "${RUN[@]}" --rm "$IMG" "$C-r2" sh -c 'exit 3'; want_out 3 ""; }
step_run_stdin() {
    # ctr (1.6) does not close the task's stdin at EOF of its own (with runc
    # too), so the container reads a known number of lines instead of to EOF.
    OUT=$(printf 'line-one\nline-two\n' | CTR_TIMEOUT=20 ctr_ "${RUN[@]}" --rm "$IMG" "$C-r3" \
        sh -c 'read a; read b; echo "$a $b" | tr a-z A-Z; echo eof' 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ')
    if [ "$RC" != 0 ]; then
        ctr_ task kill -s SIGKILL "$C-r3" >/dev/null 2>&1
        sleep 0.5
        ctr_ task delete -f "$C-r3" >/dev/null 2>&1
        ctr_ container delete "$C-r3" >/dev/null 2>&1
    fi
    want_out 0 "LINE-ONE LINE-TWO eof"
}
step_run_resources() {
    # a create-time limit reaches the task's cgroup (read from the host:
    # ctr's default spec has no cgroup namespace to look through)
    cap ctr_ "${RUN[@]}" -d --memory-limit 50331648 --env FOO=bar-env "$IMG" "$C-r4" sh -c 'echo $FOO; sleep 1000'
    want_out 0 "" || return 1
    local lim pid cg
    wait_for 10 is_status "$C-r4" RUNNING
    pid=$(ctr_ task ls | awk -v id="$C-r4" '$1 == id {print $2}')
    cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
    if [ -n "$cg" ]; then
        lim=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>&1)
    else
        cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
        lim=$(cat "/sys/fs/cgroup$cg/memory.max" 2>&1)
    fi
    DETAIL="pid $pid cgroup $cg memory limit $lim"
    ctr_ task kill -s SIGKILL "$C-r4" >/dev/null 2>&1
    wait_for 10 is_status "$C-r4" STOPPED
    ctr_ task delete "$C-r4" >/dev/null 2>&1
    ctr_ container delete "$C-r4" >/dev/null 2>&1
    [ "$lim" = 50331648 ]
}
step_run_detached() {
    cap ctr_ "${RUN[@]}" -d "$IMG" "$C-d" sh -c "$LOOP"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-d" RUNNING || { DETAIL="$DETAIL; status $(task_status "$C-d")"; return 1; }
    local st
    st=$("$RTCTR" --root "$SHIM_ROOT" state "$C-d" 2>&1 | tr -d ' \n')
    DETAIL="RUNNING; rtctr state: $(cut -c1-80 <<<"$st")"
    [[ $st == *'"status":"running"'* ]]
}
step_container_info() {
    # the runtime containerd recorded: the runc shim, and in its options
    # (containerd.runc.v1.Options, protobuf, base64 in the JSON) our binary
    OUT=$(ctr_ container info "$C-d" 2>&1)
    RC=$?
    local name opts
    name=$(grep -A1 '"Runtime"' <<<"$OUT" | sed -n 's/.*"Name": "\(.*\)".*/\1/p')
    opts=$(sed -n 's/.*"value": "\(.*\)".*/\1/p' <<<"$OUT" | head -1 | base64 -d 2>/dev/null | tr -c '[:print:]' ' ')
    DETAIL="rc=$RC runtime $name, options '$opts'"
    [ "$RC" = 0 ] && [ "$name" = io.containerd.runc.v2 ] && [[ $opts == *"$SHIM"* ]]
}
step_task_ps() { cap ctr_ task ps "$C-d"; want_out 0 PID && [ "$(wc -w <<<"$OUT")" -ge 4 ]; }
step_exec() {
    cap ctr_ task exec --exec-id e1 "$C-d" sh -c 'echo exec-out; tr "\\0" " " </proc/1/cmdline'
    want_out 0 exec-out
}
step_exec_exit_code() { cap ctr_ task exec --exec-id e2 "$C-d" sh -c 'exit 4'; want_out 4 ""; }
step_pause_resume() {
    cap ctr_ task pause "$C-d"
    want_out 0 "" || return 1
    is_status "$C-d" PAUSED || { DETAIL="$DETAIL; after pause: $(task_status "$C-d")"; return 1; }
    cap ctr_ task resume "$C-d"
    want_out 0 "" || return 1
    is_status "$C-d" RUNNING || { DETAIL="$DETAIL; after resume: $(task_status "$C-d")"; return 1; }
    DETAIL="PAUSED, then RUNNING"
}
step_metrics() {
    cap ctr_ task metrics "$C-d"
    want_out 0 memory
}
step_kill() {
    cap ctr_ task kill -s SIGTERM "$C-d"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-d" STOPPED || { DETAIL="$DETAIL; status $(task_status "$C-d")"; return 1; }
    DETAIL="STOPPED after SIGTERM"
}
step_delete() {
    cap ctr_ task delete "$C-d"
    want_out 0 "" || return 1
    cap ctr_ container delete "$C-d"
    want_out 0 "" || return 1
    if in_rtctr_list "$C-d"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="task and container deleted, gone from rtctr list"
}
step_delete_force_running() {
    cap ctr_ "${RUN[@]}" -d "$IMG" "$C-f" sleep 1000
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-f" RUNNING || { DETAIL="$DETAIL; status $(task_status "$C-f")"; return 1; }
    cap ctr_ task delete -f "$C-f"
    want_out 0 "" || return 1
    ctr_ container delete "$C-f" >/dev/null 2>&1
    if in_rtctr_list "$C-f"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="force-deleted a running task"
}
step_kill_all() {
    # kill --all: the shim sends it for `ctr task kill -a`
    cap ctr_ "${RUN[@]}" -d "$IMG" "$C-k" sh -c "$LOOP"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-k" RUNNING || { DETAIL="$DETAIL; status $(task_status "$C-k")"; return 1; }
    cap ctr_ task kill -a -s SIGKILL "$C-k"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-k" STOPPED || { DETAIL="$DETAIL; status $(task_status "$C-k")"; return 1; }
    ctr_ task delete "$C-k" >/dev/null 2>&1
    ctr_ container delete "$C-k" >/dev/null 2>&1
    DETAIL="STOPPED after kill -a"
}
step_error_not_in_path() {
    cap ctr_ "${RUN[@]}" --rm "$IMG" "$C-e1" no-such-command
    ctr_ container delete "$C-e1" >/dev/null 2>&1
    DETAIL="rc=$RC out='$OUT'"
    [ "$RC" != 0 ] && [[ $OUT == *'exec: "no-such-command": executable file not found in $PATH'* ]]
}
step_run_tty() {
    # ctr -t needs a terminal of its own: script(1) gives it one
    cap script -qec "ctr --address $SOCK --namespace $NS run --runc-binary $SHIM --rm -t $IMG $C-t tty" /dev/null
    ctr_ container delete "$C-t" >/dev/null 2>&1
    want_out 0 /dev/pts/
}
step_no_leftovers() {
    local left
    left="tasks: $(ctr_ task ls -q | tr '\n' ' ') containers: $(ctr_ container ls -q | tr '\n' ' ') rtctr: $("$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null | tr '\n' ' ')"
    DETAIL=$left
    [ "$left" = "tasks:  containers:  rtctr: " ]
}

# name                          | needs         | function
run_steps <<'STEPS'
run --runc-binary               | -             | step_run
run exit code                   | -             | step_run_exit_code
run with stdin                  | -             | step_run_stdin
run --memory-limit              | -             | step_run_resources
run -d                          | -             | step_run_detached
container info shows rtctr      | -             | step_container_info
task ps                         | ps            | step_task_ps
task exec                       | exec          | step_exec
task exec exit code             | exec          | step_exec_exit_code
task pause/resume               | pause,resume  | step_pause_resume
task metrics                    | -             | step_metrics
task kill                       | -             | step_kill
task delete, container delete   | -             | step_delete
task delete -f running          | -             | step_delete_force_running
task kill -a                    | -             | step_kill_all
error: not in PATH              | -             | step_error_not_in_path
run -t                          | terminal      | step_run_tty
no tasks or containers left     | -             | step_no_leftovers
STEPS

summary
