#!/bin/bash
# Drives rootless podman with rtctr as its OCI runtime: a new unprivileged
# user (made here with subuid/subgid ranges, removed at the end) runs
# podman, which runs conmon and rtctr inside its own user namespace.
#   integration/engines/podman-rootless.sh /abs/path/to/rtctr
# Prints `PASS|FAIL|SKIP <step>: <detail>` per step and `N passed, M failed[, K skipped]`;
# exits non-zero if a step failed. Run as root (to make the user). See
# integration/engines/README.md and docs/rootless.md.
#
# Environment: RTCTR_ARGV_LOG=FILE where the shim logs rtctr calls
# (default /tmp/rtctr-podman-rootless-argv.log, overwritten).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
RTCTR=$(readlink -f "$1")
[ -x "$RTCTR" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (it creates a user)" >&2; exit 2; }

# uidmap: newuidmap/newgidmap for podman's user namespace; slirp4netns:
# rootless podman 4.3's default network.
apt_need podman uidmap slirp4netns busybox-static file || { echo "$0: cannot install podman" >&2; exit 2; }

USER_NAME=rtrl-podman-$$
WORK=$(mktemp -d /var/tmp/rtctr-podman-rootless.XXXXXX)
chmod 755 "$WORK"
ARGV_LOG=${RTCTR_ARGV_LOG:-/tmp/rtctr-podman-rootless-argv.log}
IMG=localhost/rtctr-engines-busybox:latest
C=rtctr-pmr-$$ # container name prefix

useradd --create-home --shell /bin/sh "$USER_NAME" || { echo "$0: useradd failed" >&2; exit 2; }
USER_UID=$(id -u "$USER_NAME")
USER_GID=$(id -g "$USER_NAME")
grep -q "^$USER_NAME:" /etc/subuid || { echo "$0: useradd gave $USER_NAME no /etc/subuid range" >&2; exit 2; }

# The user's processes (podman's pause process, conmon, containers).
user_pids() { ps -u "$USER_UID" -o pid= 2>/dev/null | tr -d ' '; }

cleanup() {
    set +e
    if [ -d "$WORK/storage" ]; then
        PM_TIMEOUT=60 pm rm -af -t 0 >/dev/null 2>&1
        PM_TIMEOUT=60 pm rmi -af >/dev/null 2>&1
    fi
    local p
    for p in $(user_pids); do kill -KILL "$p" 2>/dev/null; done
    wait_for 5 sh -c "! ps -u $USER_UID -o pid= | grep -q ."
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    userdel --remove "$USER_NAME" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/xdg" "$WORK/home"
chmod 700 "$WORK/xdg"
: >"$ARGV_LOG"
chmod 666 "$ARGV_LOG"
make_shim "$WORK/bin"
SHIM=$WORK/bin/rtctr

# The user's containers.conf (CONTAINERS_CONF: the only one podman reads):
# no CAP_SYS_RESOURCE here, so default_ulimits within the hard limits;
# rtctr in runtime_supports_json, for its JSON errors; no systemd.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]

[engine]
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "rtctr"]
cgroup_manager = "cgroupfs"
events_logger = "file"

[engine.runtimes]
rtctr = ["$SHIM"]
EOF
chown -R "$USER_UID:$USER_GID" "$WORK"

# A private podman of the user: its own storage (vfs: no overlay mounts to
# leave), run and tmp dirs.
pm() {
    (cd / && timeout -k 5 "${PM_TIMEOUT:-60}" setpriv --reuid="$USER_UID" --regid="$USER_GID" --init-groups -- \
        env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="/home/$USER_NAME" \
        USER="$USER_NAME" XDG_RUNTIME_DIR="$WORK/xdg" CONTAINERS_CONF="$WORK/containers.conf" \
        podman --root "$WORK/storage" --runroot "$WORK/xdg/run" --tmpdir "$WORK/xdg/tmp" \
        --storage-driver vfs --cgroup-manager=cgroupfs --events-backend=file --runtime rtctr "$@")
}

# The image: a busybox rootfs, imported by the user.
sh "$here/../../bundles/mkrootfs.sh" "$WORK/rootfs" >/dev/null &&
    tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" . && chown "$USER_UID:$USER_GID" "$WORK/rootfs.tar" &&
    pm import -q --change 'CMD ["sh"]' "$WORK/rootfs.tar" "$IMG" >/dev/null ||
    { echo "$0: could not make the image: $(pm import -q "$WORK/rootfs.tar" "$IMG" 2>&1 | tail -n 3)" >&2; exit 2; }
rtctr_version=$("$RTCTR" --version 2>&1)
note "rtctr: $RTCTR (${rtctr_version%%$'\n'*}); podman $(podman --version | awk '{print $3}'); user $USER_NAME (uid $USER_UID, /etc/subuid $(grep "^$USER_NAME:" /etc/subuid | cut -d: -f2-))"

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
host_uid_of() { awk '/^Uid:/ {print $2}' "/proc/$1/status"; }

LOOP='trap "exit 0" TERM; echo started-a; while :; do sleep 1; done'

step_run() {
    # root in the container, the user's own uid outside (podman maps
    # container root to the user, the rest to its subuid range)
    cap pm run --rm "$IMG" sh -c 'echo "hello-rtctr $(id -u)"; cat /proc/self/uid_map'
    local map=" 0 +$USER_UID +1 "
    want_out 0 "hello-rtctr 0" && [[ $OUT =~ $map ]]
}
step_run_exit_code() { cap pm run --rm "$IMG" sh -c 'exit 7'; want_out 7 ""; }
step_run_detached() {
    cap pm run -d --name "$C-a" "$IMG" sh -c "$LOOP"
    want_out 0 "" || return 1
    wait_for 10 is_status "$C-a" running || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    local pid uid
    pid=$(pm inspect -f '{{.State.Pid}}' "$C-a")
    uid=$(host_uid_of "$pid")
    DETAIL="running, pid $pid, host uid $uid"
    [ "$uid" = "$USER_UID" ]
}
step_rtctr_state() {
    # rtctr kept its state in the user's runtime dir, inside podman's namespace
    local id
    id=$(pm inspect -f '{{.Id}}' "$C-a")
    cap pm unshare "$RTCTR" --root "$WORK/xdg/rtctr" state "$id"
    want_out 0 '"status": "running"'
}
step_exec() { cap pm exec "$C-a" sh -c 'echo exec-out $(id -u)'; want_out 0 "exec-out 0"; }
step_exec_exit_code() { cap pm exec "$C-a" sh -c 'exit 5'; want_out 5 ""; }
step_exec_tty() { cap pm exec -t "$C-a" tty; want_out 0 /dev/pts/; }
step_logs() { cap pm logs "$C-a"; want_out 0 started-a; }
step_stop() {
    cap pm stop -t 10 "$C-a"
    want_out 0 "$C-a" || return 1
    is_status "$C-a" exited || { DETAIL="$DETAIL; status $(status_of "$C-a")"; return 1; }
    local code
    code=$(pm inspect -f '{{.State.ExitCode}}' "$C-a")
    DETAIL="exited, code $code"
    [ "$code" = 0 ]
}
step_rm() {
    cap pm rm "$C-a"
    want_out 0 "" || return 1
    if pm inspect "$C-a" >/dev/null 2>&1; then DETAIL="$DETAIL; still known to podman"; return 1; fi
    local left
    left=$(ls "$WORK/xdg/rtctr" 2>/dev/null)
    DETAIL="gone; rtctr state dirs left: '$left'"
    [ -z "$left" ]
}
step_rm_force_running() {
    cap pm run -d --name "$C-b" "$IMG" sleep 1000
    want_out 0 "" || return 1
    cap pm rm -f -t 0 "$C-b"
    want_out 0 "" || return 1
    local left
    left=$(ls "$WORK/xdg/rtctr" 2>/dev/null)
    DETAIL="removed a running container; rtctr state dirs left: '$left'"
    [ -z "$left" ]
}
step_run_tty() { cap pm run --rm -t "$IMG" tty; want_out 0 /dev/pts/; }
step_error_not_in_path() {
    cap pm run --rm "$IMG" no-such-command
    want_out 127 'executable file not found in $PATH'
}
# The user's processes but podman's pause process (comm "podman pause" or
# catatonit), which holds its user namespace for as long as the user has one.
others() { ps -u "$USER_UID" -o pid=,comm=,args= | grep -v -E '^ *[0-9]+ (catatonit|podman pause) '; }
step_no_leftovers() {
    local left procs
    left=$(pm ps -aq)
    # the user's processes: only podman's pause process may stay (conmon
    # and slirp4netns go once podman's cleanup ran)
    wait_for 10 eval '[ -z "$(others)" ]'
    procs=$(others | tr '\n' ' ')
    DETAIL="podman ps -a: '$left'; other processes of the user: '$procs'"
    [ -z "$left" ] && [ -z "${procs// /}" ]
}

# name                     | needs    | function
run_steps <<'STEPS'
run                        | -        | step_run
run exit code              | -        | step_run_exit_code
run -d                     | -        | step_run_detached
rtctr state agrees         | -        | step_rtctr_state
exec                       | exec     | step_exec
exec exit code             | exec     | step_exec_exit_code
exec -t                    | exec,terminal | step_exec_tty
logs                       | -        | step_logs
stop                       | -        | step_stop
rm                         | -        | step_rm
rm -f running              | -        | step_rm_force_running
run -t                     | terminal | step_run_tty
error: not in PATH         | -        | step_error_not_in_path
no containers left         | -        | step_no_leftovers
STEPS

summary
