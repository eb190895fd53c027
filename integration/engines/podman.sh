#!/bin/bash
# Drives podman with rtctr as its OCI runtime and checks what comes out.
#   integration/engines/podman.sh /abs/path/to/rtctr
# Prints `PASS|FAIL|SKIP <step>: <detail>` per step and `N passed, M failed[, K skipped]`;
# exits non-zero if a step failed. Root only. See integration/engines/README.md.
#
# Environment: ENGINES_STRICT=1 turns SKIPs for missing rtctr features into
# FAILs; RTCTR_ARGV_LOG=FILE where the shim logs rtctr calls (default
# /tmp/rtctr-podman-argv.log, overwritten).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
RTCTR=$(readlink -f "$1")
[ -x "$RTCTR" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }

apt_need podman busybox-static file || { echo "$0: cannot install podman" >&2; exit 2; }

WORK=$(mktemp -d /var/tmp/rtctr-podman.XXXXXX)
ARGV_LOG=${RTCTR_ARGV_LOG:-/tmp/rtctr-podman-argv.log}
: >"$ARGV_LOG"
make_shim "$WORK/bin"
SHIM=$WORK/bin/rtctr
IMG=localhost/rtctr-engines-busybox:latest
C=rtctr-pm-$$ # container name prefix

# A private podman: its own storage, run and tmp dirs, so nothing here
# touches the host's containers and images, and cleanup is `rm -rf`.
pm() {
    timeout -k 5 "${PM_TIMEOUT:-60}" podman --root "$WORK/storage" --runroot "$WORK/run" --tmpdir "$WORK/tmp" \
        --cgroup-manager=cgroupfs --events-backend=file --runtime rtctr "$@"
}

cleanup() {
    set +e
    if [ -d "$WORK/storage" ]; then
        PM_TIMEOUT=60 pm rm -af -t 0 >/dev/null 2>&1
        PM_TIMEOUT=60 pm rmi -af >/dev/null 2>&1
        PM_TIMEOUT=60 pm system reset -f >/dev/null 2>&1
        # overlay mounts left by a failure
        grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# /etc/containers/containers.conf: merged idempotently (keys replaced in
# place, missing tables appended); the original is kept once as
# containers.conf.rtctr-orig. podman on a host without CAP_SYS_RESOURCE
# cannot raise the default rlimits, hence default_ulimits; podman passes
# --log-format=json only to runtimes named in runtime_supports_json.
CONF=${CONTAINERS_CONF_PATH:-/etc/containers/containers.conf}
merge_conf() {
    local settings="$1" out
    mkdir -p "$(dirname "$CONF")"
    if [ -e "$CONF" ] && [ ! -e "$CONF.rtctr-orig" ]; then
        cp -p "$CONF" "$CONF.rtctr-orig"
    fi
    touch "$CONF"
    out=$(mktemp "$CONF.XXXXXX")
    awk -v settings="$settings" '
    function flush(sec,   i) {
        for (i = 1; i <= n; i++)
            if (S[i] == sec && !done[i]) { print K[i] " = " V[i]; done[i] = 1 }
    }
    BEGIN {
        n = split(settings, L, "\n")
        for (i = 1; i <= n; i++) {
            split(L[i], f, "\t"); S[i] = f[1]; K[i] = f[2]; V[i] = f[3]
        }
        sec = ""; skipping = 0
    }
    skipping { if ($0 ~ /\]/) skipping = 0; next }
    /^[ \t]*\[[^]]+\][ \t]*(#.*)?$/ {
        flush(sec)
        s = $0; sub(/^[ \t]*\[/, "", s); sub(/\].*$/, "", s); sec = s
        print; next
    }
    {
        for (i = 1; i <= n; i++) {
            if (S[i] == sec && match($0, "^[ \t]*" K[i] "[ \t]*=")) {
                print K[i] " = " V[i]; done[i] = 1
                v = $0; sub(/^[^=]*=[ \t]*/, "", v)
                if (v ~ /^\[/ && v !~ /\]/) skipping = 1
                next
            }
        }
        print
    }
    END {
        flush(sec)
        for (i = 1; i <= n; i++)
            if (!done[i]) {
                if (!hdr[S[i]]) { print ""; print "[" S[i] "]"; hdr[S[i]] = 1 }
                print K[i] " = " V[i]; done[i] = 1
                for (j = i + 1; j <= n; j++)
                    if (S[j] == S[i] && !done[j]) { print K[j] " = " V[j]; done[j] = 1 }
            }
    }' "$CONF" >"$out" && cat "$out" >"$CONF"
    rm -f "$out"
}
merge_conf "$(printf '%s\t%s\t%s\n' \
    containers default_ulimits '["nofile=20000:20000", "nproc=32768:32768"]' \
    engine runtime_supports_json '["crun", "runc", "kata", "runsc", "krun", "rtctr"]' \
    engine.runtimes rtctr "[\"$RTCTR\"]")"

# This run's podman reads a copy of that file in which runtime `rtctr` is
# the logging shim (CONTAINERS_CONF: the only containers.conf podman reads).
cp "$CONF" "$WORK/containers.conf"
CONF=$WORK/containers.conf merge_conf "$(printf '%s\t%s\t%s\n' engine.runtimes rtctr "[\"$SHIM\"]")"
export CONTAINERS_CONF=$WORK/containers.conf

# The image: a busybox rootfs, imported.
bundle_dir=$WORK/rootfs
sh "$here/../../bundles/mkrootfs.sh" "$bundle_dir" >/dev/null &&
    tar -C "$bundle_dir" -cf "$WORK/rootfs.tar" . &&
    pm import -q --change 'CMD ["sh"]' "$WORK/rootfs.tar" "$IMG" >/dev/null ||
    { echo "$0: could not make the image" >&2; exit 2; }
rtctr_version=$("$RTCTR" --version 2>&1)
note "rtctr: $RTCTR (${rtctr_version%%$'\n'*}); podman $(podman --version | awk '{print $3}')"

# cap CMD...: OUT = stdout+stderr, RC = exit status.
cap() {
    OUT=$("$@" 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)
}
status_of() { pm inspect -f '{{.State.Status}}' "$1" 2>&1; }
is_status() { [ "$(status_of "$1")" = "$2" ]; }
want_out() { # want_out RC-WANTED SUBSTRING
    DETAIL="rc=$RC out='$OUT'"
    [ "$RC" = "$1" ] && [[ $OUT == *"$2"* ]]
}

# The steps. A long-running container $C-a is used by many of them; it
# exits 0 on SIGTERM.
LOOP='trap "exit 0" TERM; echo started-a; echo to-stderr >&2; while :; do sleep 1; done'

step_run() { cap pm run --rm "$IMG" echo hello-rtctr; want_out 0 hello-rtctr; }
step_run_exit_code() { cap pm run --rm "$IMG" sh -c 'exit 7'; want_out 7 ""; }
step_run_stdin() {
    OUT=$(printf 'line-one\nline-two\n' | pm run --rm -i "$IMG" sh -c 'tr a-z A-Z; echo eof' 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ')
    want_out 0 "LINE-ONE LINE-TWO eof"
}
step_run_resources() {
    # limits set at create time reach the container's cgroup (v1 or v2)
    cap pm run --rm --memory 48m --pids-limit 77 "$IMG" sh -c \
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true'
    want_out 0 50331648 && [[ $OUT == *77* ]]
}
step_run_user_env_hostname() {
    cap pm run --rm --user 1000:1000 --env FOO=bar-env --hostname rtctr-host "$IMG" sh -c 'echo "$(id -u):$(id -g) $FOO $(hostname)"'
    want_out 0 "1000:1000 bar-env rtctr-host"
}
step_run_read_only() {
    # touch's error goes to /dev/null: conmon may interleave stderr anywhere.
    cap pm run --rm --read-only "$IMG" sh -c 'touch /x 2>/dev/null && echo wrote || echo refused; touch /tmp/y && echo tmp-ok'
    want_out 0 "refused tmp-ok"
}
step_run_tmpfs() {
    # podman adds tmpcopyup to --tmpfs mounts (runc copies the image's
    # files into the new tmpfs); /etc has passwd in the image
    cap pm run --rm --tmpfs /etc "$IMG" sh -c 'grep -c root /etc/passwd; grep " /etc " /proc/mounts'
    want_out 0 "tmpfs" && [[ $OUT == "1 "* ]]
}
step_run_detached() {
    cap pm run -d --name "$C-a" "$IMG" sh -c "$LOOP"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-a" running || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    local pid
    pid=$(pm inspect -f '{{.State.Pid}}' "$C-a")
    DETAIL="running, pid $pid"
    [ "$pid" -gt 0 ] && [ -d "/proc/$pid" ]
}
step_inspect_runtime() {
    cap pm inspect -f '{{.OCIRuntime}}' "$C-a"
    want_out 0 rtctr && [ "$OUT" = rtctr ] || return 1
    # and podman's own view of the runtime: `podman info` with --runtime rtctr
    local path
    path=$(pm info --format '{{.Host.OCIRuntime.Path}}' 2>&1)
    DETAIL="$DETAIL; podman info runtime path $path"
    [ "$path" = "$SHIM" ]
}
step_rtctr_state() {
    # podman made the container through rtctr: rtctr's own state agrees
    local id
    id=$(pm inspect -f '{{.Id}}' "$C-a")
    cap "$RTCTR" state "$id"
    want_out 0 '"status": "running"' || want_out 0 '"status":"running"'
}
step_exec() { cap pm exec "$C-a" sh -c 'echo exec-out; tr "\\0" " " </proc/1/cmdline'; want_out 0 exec-out; }
step_exec_exit_code() { cap pm exec "$C-a" sh -c 'exit 5'; want_out 5 ""; }
step_exec_tty() { cap pm exec -t "$C-a" tty; want_out 0 /dev/pts/; }
step_logs() {
    cap pm logs "$C-a"
    want_out 0 started-a && [[ $OUT == *to-stderr* ]]
}
step_top() { cap pm top "$C-a"; want_out 0 sleep; }
step_stats() {
    cap pm stats --no-stream --format '{{.Name}} mem={{.MemUsage}} pids={{.PIDs}}' "$C-a"
    want_out 0 "$C-a mem=" && ! [[ $OUT == *"mem=0B"* ]]
}
step_pause_unpause() {
    cap pm pause "$C-a"
    want_out 0 "" || return 1
    is_status "$C-a" paused || { DETAIL="$DETAIL; after pause: $(status_of "$C-a")"; return 1; }
    cap pm unpause "$C-a"
    want_out 0 "" || return 1
    is_status "$C-a" running || { DETAIL="$DETAIL; after unpause: $(status_of "$C-a")"; return 1; }
    DETAIL="paused, then running"
}
memory_limit_of() { # the memory cgroup (v1) limit of a container's init
    local pid cg
    pid=$(pm inspect -f '{{.State.Pid}}' "$1")
    cg=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
    if [ -n "$cg" ]; then
        cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes"
    else
        cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
        cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null || cat "/sys/fs/cgroup/unified$cg/memory.max"
    fi
}
step_update_memory() {
    cap pm update --memory 64m "$C-a"
    want_out 0 "" || return 1
    local lim
    lim=$(memory_limit_of "$C-a" 2>&1)
    DETAIL="$DETAIL; cgroup memory limit $lim"
    [ "$lim" = 67108864 ]
}
step_stop() {
    cap pm stop -t 10 "$C-a"
    want_out 0 "$C-a" || return 1
    is_status "$C-a" exited || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    local code
    code=$(pm inspect -f '{{.State.ExitCode}}' "$C-a")
    DETAIL="exited, code $code"
    [ "$code" = 0 ]
}
step_restart() {
    cap pm restart "$C-a"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-a" running || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    DETAIL="running again"
}
step_kill() {
    cap pm kill "$C-a"
    want_out 0 "$C-a" || return 1
    wait_for 10 is_status "$C-a" exited || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    local code
    code=$(pm inspect -f '{{.State.ExitCode}}' "$C-a")
    DETAIL="exited, code $code"
    [ "$code" = 137 ]
}
step_rm() {
    local id
    id=$(pm inspect -f '{{.Id}}' "$C-a")
    cap pm rm "$C-a"
    want_out 0 "" || return 1
    if pm inspect "$C-a" >/dev/null 2>&1; then DETAIL="$DETAIL; still known to podman"; return 1; fi
    if "$RTCTR" list -q 2>/dev/null | grep -qx "$id"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="gone from podman and from rtctr list"
}
step_rm_force_running() {
    cap pm run -d --name "$C-b" "$IMG" sleep 1000
    want_out 0 "" || return 1
    local id
    id=$(pm inspect -f '{{.Id}}' "$C-b")
    cap pm rm -f -t 0 "$C-b"
    want_out 0 "" || return 1
    if "$RTCTR" list -q 2>/dev/null | grep -qx "$id"; then DETAIL="$DETAIL; still in rtctr list"; return 1; fi
    DETAIL="removed a running container"
}
step_error_not_in_path() {
    # rtctr's own message, runc's words, which podman maps to 127
    cap pm run --rm "$IMG" no-such-command
    want_out 127 'exec: "no-such-command": executable file not found in $PATH'
}
step_error_missing_executable() {
    cap pm run --rm "$IMG" /nonexistent
    want_out 127 '/nonexistent' && [[ ${OUT,,} == *"no such file or directory"* ]]
}
step_error_not_executable() {
    cap pm run --rm "$IMG" /etc/passwd
    want_out 126 '/etc/passwd' && [[ ${OUT,,} == *"permission denied"* ]]
}
step_run_tty() { cap pm run --rm -t "$IMG" tty; want_out 0 /dev/pts/; }
step_run_tty_interactive() {
    OUT=$(echo 'echo in-tty; exit 3' | pm run --rm -it "$IMG" sh 2>&1)
    RC=$?
    OUT=$(printf '%s' "$OUT" | tr '\n' ' ' | cut -c1-300)
    want_out 3 in-tty
}
step_no_leftovers() {
    local left
    left=$(pm ps -aq)
    DETAIL="podman ps -a: '$left'"
    [ -z "$left" ]
}

# name                     | needs    | function
run_steps <<'STEPS'
run                        | -        | step_run
run exit code              | -        | step_run_exit_code
run -i with stdin          | -        | step_run_stdin
run --memory --pids-limit  | -        | step_run_resources
run --user --env --hostname| -        | step_run_user_env_hostname
run --read-only            | -        | step_run_read_only
run --tmpfs                | -        | step_run_tmpfs
run -d                     | -        | step_run_detached
inspect shows rtctr        | -        | step_inspect_runtime
rtctr state agrees         | -        | step_rtctr_state
exec                       | exec     | step_exec
exec exit code             | exec     | step_exec_exit_code
exec -t                    | exec,terminal | step_exec_tty
logs                       | -        | step_logs
top                        | -        | step_top
stats --no-stream          | -        | step_stats
pause/unpause              | pause    | step_pause_unpause
update --memory            | update   | step_update_memory
stop                       | -        | step_stop
restart                    | -        | step_restart
kill                       | -        | step_kill
rm                         | -        | step_rm
rm -f running              | -        | step_rm_force_running
error: not in PATH         | -        | step_error_not_in_path
error: missing executable  | -        | step_error_missing_executable
error: not executable      | -        | step_error_not_executable
run -t                     | terminal | step_run_tty
run -it with stdin         | terminal | step_run_tty_interactive
no containers left         | -        | step_no_leftovers
STEPS

summary
