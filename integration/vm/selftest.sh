#!/usr/bin/env bash
# Self-test of the cgroup v2 VM harness:
#  1. the VM has a pure cgroup v2 layout and exit codes propagate;
#  2. runc and crun (whichever are installed) can run a busybox container,
#     with memory/pids/cpu limits applied (a 64M allocation under a 32M limit
#     must be OOM-killed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm=$here/run-in-vm.sh
fail=0
ok() { echo "selftest: ok: $*"; }
bad() { echo "selftest: FAIL: $*" >&2; fail=1; }

t0=$(date +%s.%N)
rc=0
out=$("$vm" -- sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup/cgroup.controllers
	echo +cpuset +cpu +io +memory +pids >/sys/fs/cgroup/cgroup.subtree_control && cat /sys/fs/cgroup/cgroup.subtree_control
	echo "HOME=$HOME"; exit 3') || rc=$?
t1=$(date +%s.%N)
echo "$out"
[ "$rc" = 3 ] && ok "exit status propagated" || bad "exit status $rc, want 3"
grep -qx '0::/' <<<"$out" && ok "/proc/self/cgroup is 0::/" || bad "/proc/self/cgroup"
grep -qx 'cpuset cpu io memory hugetlb pids rdma misc' <<<"$out" && ok "all v2 controllers" || bad "controllers"
grep -qx 'cpuset cpu io memory pids' <<<"$out" && ok "subtree_control writable" || bad "subtree_control"
echo "selftest: trivial command wall time $(echo "$t1 - $t0" | bc)s"

runtimes=()
for r in runc crun; do command -v "$r" >/dev/null && runtimes+=("$(command -v "$r")"); done
if [ ${#runtimes[@]} = 0 ]; then
	echo "selftest: no runc/crun installed, skipping container test"
	exit $fail
fi

b=$(mktemp -d "${TMPDIR:-/tmp}/rtctr-vm-bundle.XXXXXX")
trap 'rm -rf "$b"' EXIT
mkdir -p "$b/rootfs/bin"
cp /bin/busybox "$b/rootfs/bin/busybox"
chroot "$b/rootfs" /bin/busybox --install -s /bin
(cd "$b" && "${runtimes[0]}" spec)
jq '.process.terminal = false
	| .process.args = ["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?; grep oom_kill /sys/fs/cgroup/memory.events; echo hi"]
	| .linux.namespaces += [{"type": "cgroup"}]
	| .linux.resources = {"memory": {"limit": 33554432}, "pids": {"limit": 20}, "cpu": {"quota": 50000, "period": 100000}}' \
	"$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"

script='set -e'
for r in "${runtimes[@]}"; do
	n=${r##*/}
	script+="; echo \"== $n\"; s=\$(cut -d' ' -f1 /proc/uptime); $r run -b $b t-$n; e=\$(cut -d' ' -f1 /proc/uptime); echo \"$n took \$s -> \$e\""
done
t0=$(date +%s.%N)
rc=0
out=$("$vm" -- sh -c "$script") || rc=$?
t1=$(date +%s.%N)
echo "$out"
[ "$rc" = 0 ] || bad "container run exited $rc"
for r in "${runtimes[@]}"; do
	n=${r##*/}
	sec=$(awk -v n="== $n" '$0 == n {on = 1; next} /^== / {on = 0} on' <<<"$out")
	grep -qx '0::/' <<<"$sec" && grep -qx 33554432 <<<"$sec" && grep -qx 'dd=137' <<<"$sec" &&
		grep -qx 'oom_kill 1' <<<"$sec" && grep -qx hi <<<"$sec" &&
		ok "$n runs a container with v2 limits (OOM kill seen)" || bad "$n container"
done
echo "selftest: container test wall time $(echo "$t1 - $t0" | bc)s"
exit $fail
