#!/bin/bash
# Interleaved blocks of lifecycles (`run` + `delete --force` of `true`)
# for each rtctr build given, as `make bench` runs them: in a private mount
# namespace with /sys/fs/cgroup/unified unmounted and the state roots on a
# tmpfs. The first block of each build is a warm-up; the order of the
# builds rotates from block to block. Prints each build's median wall time
# per lifecycle over the blocks, and its range (docs/bench.md, "What each
# change bought").
#
#   integration/bench/lifecycle-blocks.sh BLOCKS PER_BLOCK BUNDLE BIN...
#
# BUNDLE: a bundle whose process is `true` (root). Root only.
set -eu
if [ $# -lt 4 ]; then
    echo "usage: $0 BLOCKS PER_BLOCK BUNDLE BIN..." >&2
    exit 1
fi
if [ -z "${LIFECYCLE_BLOCKS_NS:-}" ]; then
    LIFECYCLE_BLOCKS_NS=1 exec unshare -m "$0" "$@"
fi
blocks=$1 per=$2 bundle=$3
shift 3
bins=("$@")
umount /sys/fs/cgroup/unified 2>/dev/null || true
work=$(mktemp -d)
mount -t tmpfs tmpfs "$work"
trap 'umount -l "$work"; rmdir "$work"' EXIT
declare -A times
n=${#bins[@]}
for ((k = 0; k <= blocks; k++)); do
    for ((j = 0; j < n; j++)); do
        i=$(((j + k) % n))
        bin=${bins[$i]}
        start=$(date +%s%N)
        for ((c = 0; c < per; c++)); do
            id="lb$k-$c"
            "$bin" --root "$work/$i" run --bundle "$bundle" "$id" >/dev/null 2>&1 </dev/null || true
            "$bin" --root "$work/$i" delete --force "$id" >/dev/null 2>&1 || true
        done
        end=$(date +%s%N)
        if [ "$k" -gt 0 ]; then
            times[$i]+="$(((end - start) / per / 1000)) "
        fi
    done
done
for ((i = 0; i < n; i++)); do
    # shellcheck disable=SC2086
    sorted=$(printf '%s\n' ${times[$i]} | sort -n)
    count=$(echo "$sorted" | wc -l)
    median=$(echo "$sorted" | sed -n "$(((count + 1) / 2))p")
    printf '%s: %d.%03d ms per lifecycle [%s-%s us over %d blocks]\n' "${bins[$i]}" \
        $((median / 1000)) $((median % 1000)) "$(echo "$sorted" | head -1)" "$(echo "$sorted" | tail -1)" "$count"
done
