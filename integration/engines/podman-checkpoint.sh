#!/bin/bash
# podman container checkpoint / restore with rtctr as the runtime (issue 17).
# CRIU must work here: run it in the cgroup v2 VM (`make test-checkpoint-podman`).
#   integration/engines/podman-checkpoint.sh /abs/path/to/rtctr
# podman's overlay storage needs fuse, which the VM lacks: vfs storage in a
# private --root/--runroot, no network (--network none). Exits non-zero if a
# check fails.
set -u
[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
R=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/rtctr-pmck.XXXXXX")
pm() {
    timeout -k 5 120 podman --root "$W/storage" --runroot "$W/run" --tmpdir "$W/tmp" --storage-driver vfs \
        --cgroup-manager=cgroupfs --events-backend=file --runtime "$R" "$@"
}
cleanup() { pm rm -af -t 0 >/dev/null 2>&1; pm system reset -f >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT
failed=0
check() { # check WHAT CONDITION...
    local what=$1; shift
    if "$@"; then echo "PASS $what"; else echo "FAIL $what"; failed=$((failed + 1)); fi
}
last() { pm logs "$1" 2>/dev/null | tail -1; }
running() { [ "$(pm inspect -f '{{.State.Status}}' "$1" 2>&1)" = running ]; }
wait_count() { # wait_count NAME MIN: the counter printed MIN or more
    local i=0
    while [ $i -lt 300 ]; do
        v=$(last "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.2; i=$((i + 1))
    done
    return 1
}
sh "$here/../../bundles/mkrootfs.sh" "$W/rootfs" >/dev/null && tar -C "$W/rootfs" -cf "$W/rootfs.tar" . &&
    pm import -q "$W/rootfs.tar" localhost/rtctr-ck:latest >/dev/null || { echo "cannot make the image" >&2; exit 2; }
COUNT='i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done'

check "run -d" pm run -d --network none --name ck localhost/rtctr-ck sh -c "$COUNT"
check "counting" wait_count ck 3
check "checkpoint" pm container checkpoint ck
before=$(last ck)
check "checkpoint stops it" test "$(pm inspect -f '{{.State.Status}}' ck)" = exited
check "restore" pm container restore ck
check "restored is running" running ck
check "counter continues past $before" wait_count ck $((before + 3))
check "counted once from 1 (no restart)" test "$(pm logs ck 2>/dev/null | grep -cx 1)" = 1
check "exec in the restored container" test "$(pm exec ck sh -c 'echo in-$((40+2))')" = in-42
check "checkpoint --export" pm container checkpoint --export "$W/ck.tar.gz" ck
at_export=$(last ck)
check "rm" pm rm -f -t 0 ck
check "restore --import as a new container" pm container restore --import "$W/ck.tar.gz" --name ck2
check "imported is running" running ck2
check "imported counter continues past $at_export" wait_count ck2 $((at_export + 3))
check "rm the imported" pm rm -f -t 0 ck2
echo "$failed failed"
[ "$failed" = 0 ]
