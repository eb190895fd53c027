#!/bin/bash
# Kubernetes' path to rtctr: containerd's CRI plugin with a runtime handler
# `rtctr` (io.containerd.runc.v2, BinaryName = rtctr), pod networking by
# rtctr-cni, and a CRI client playing kubelet (cri-kubelet, integration/cri).
#   integration/engines/cri.sh /abs/path/to/rtctr
# rtctr-cni and cri-kubelet are taken from rtctr's directory (the same cargo
# target dir), or from $RTCTR_CNI and $CRI_KUBELET.
# Prints `PASS|FAIL <step>: <detail>` per step and `N passed, M failed`; exits
# non-zero if a step failed. Root only. See integration/engines/README.md.
#
# containerd runs in a network namespace of its own (the "node"): the pods'
# bridge (10.204.90.0/24, rtcri0), rtctr's nftables table and the host ports
# live there, and an "outside" namespace linked to it (node 10.204.91.1,
# outside 10.204.91.2) plays another host. Its config, root, state, socket,
# CNI dirs and the runc shim's --root are under /tmp/rtctr-cri-<pid>.
# CRI_BENCH=N also times N pod starts with rtctr (handler rtctr-direct: no
# logging shim) and with runc as the handler (interleaved). RTCTR_ARGV_LOG=FILE (default /tmp/rtctr-cri-argv.log).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 /abs/path/to/rtctr" >&2; exit 2; }
RTCTR=$(readlink -f "$1")
[ -x "$RTCTR" ] || { echo "$0: $1 is not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root" >&2; exit 2; }
CNI_BIN=${RTCTR_CNI:-$(dirname "$RTCTR")/rtctr-cni}
KUBELET=${CRI_KUBELET:-$(dirname "$RTCTR")/cri-kubelet}
for b in "$CNI_BIN" "$KUBELET"; do
    [ -x "$b" ] || { echo "$0: $b is missing (cargo build --release --workspace --bins)" >&2; exit 2; }
done

apt_need containerd containernetworking-plugins runc busybox-static file iproute2 nftables jq gcc libc6-dev ||
    { echo "$0: cannot install containerd" >&2; exit 2; }

WORK=/tmp/rtctr-cri-$$
rm -rf "$WORK"
mkdir -p "$WORK"
ARGV_LOG=${RTCTR_ARGV_LOG:-/tmp/rtctr-cri-argv.log}
: >"$ARGV_LOG"
make_shim "$WORK/bin"
SHIM=$WORK/bin/rtctr
SOCK=$WORK/containerd.sock
NETNS=rtctr-cri-$$
OUTNS=rtctr-cri-out-$$
SHIM_ROOT=$WORK/runc-root/rtctr
RUNC_ROOT=$WORK/runc-root/runc
DIRECT_ROOT=$WORK/runc-root/rtctr-direct
PAUSE_IMG=rtctr.local/pause:1
IMG=rtctr.local/busybox:1
NETDIR=$WORK/netstate
CTRD_PID=""

ctr_() { timeout -k 5 60 ctr --address "$SOCK" --namespace k8s.io "$@"; }
nsnames() { ls /run/netns 2>/dev/null | grep '^cni-' | sort; }
NETNS_BEFORE=$(nsnames)

cleanup() {
    set +e
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        kill "$CTRD_PID"
        local t
        for t in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$CTRD_PID" 2>/dev/null && kill -9 "$CTRD_PID"
    fi
    local p r t
    for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK"); do kill -9 "$p"; done
    for r in "$SHIM_ROOT" "$RUNC_ROOT" "$DIRECT_ROOT"; do
        [ -d "$r" ] || continue
        for t in $("$RTCTR" --root "$r" list -q 2>/dev/null); do
            "$RTCTR" --root "$r" delete --force "$t" >/dev/null 2>&1
        done
    done
    # pod netns files a failure left (created by this containerd after we started)
    for t in $(comm -13 <(echo "$NETNS_BEFORE") <(nsnames)); do
        umount "/run/netns/$t" 2>/dev/null; rm -f "/run/netns/$t"
    done
    ip netns del "$OUTNS" 2>/dev/null
    ip netns del "$NETNS" 2>/dev/null
    grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the node's and the outside host's network namespaces
ip netns add "$NETNS" && ip netns add "$OUTNS" || { echo "$0: ip netns add failed" >&2; exit 2; }
ip -n "$NETNS" link set lo up
ip -n "$OUTNS" link set lo up
ip -n "$NETNS" link add ext0 type veth peer name eth0 netns "$OUTNS"
ip -n "$NETNS" addr add 10.204.91.1/24 dev ext0
ip -n "$NETNS" link set ext0 up
ip -n "$OUTNS" addr add 10.204.91.2/24 dev eth0
ip -n "$OUTNS" link set eth0 up

# CNI: rtctr-cni for the pods, the reference loopback plugin CRI runs for lo
mkdir -p "$WORK/cni-bin" "$WORK/cni-conf"
cp "$CNI_BIN" "$WORK/cni-bin/rtctr-cni"
if [ -n "${CRI_CNI_TRACE:-}" ]; then # CRI_CNI_TRACE=FILE: log each call's env and stdin
    mv "$WORK/cni-bin/rtctr-cni" "$WORK/cni-bin/rtctr-cni.real"
    printf '#!/bin/bash\nin=$(cat); { env | grep ^CNI_; echo "$in"; } >>%q\nprintf %%s "$in" | %q\n' \
        "$CRI_CNI_TRACE" "$WORK/cni-bin/rtctr-cni.real" >"$WORK/cni-bin/rtctr-cni"
    chmod 755 "$WORK/cni-bin/rtctr-cni"
fi
ln -s /usr/lib/cni/loopback "$WORK/cni-bin/loopback"
cat >"$WORK/cni-conf/10-rtctr.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "rtctr-pods",
  "plugins": [
    {
      "type": "rtctr-cni",
      "subnet": "10.204.90.0/24",
      "bridge": "rtcri0",
      "ipMasq": true,
      "stateDir": "$NETDIR",
      "capabilities": {"portMappings": true}
    }
  ]
}
EOF

cat >"$WORK/config.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$WORK/state"
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
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMG"
  # no CAP_SYS_RESOURCE on some hosts (CI VMs): keep oom_score_adj at or
  # above the current value instead of failing every pod
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rtctr]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rtctr.options]
        BinaryName = "$SHIM"
        Root = "$SHIM_ROOT"
    # the bench's: rtctr itself, without the logging shim (as runc below)
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rtctr-direct]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rtctr-direct.options]
        BinaryName = "$RTCTR"
        Root = "$DIRECT_ROOT"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$RUNC_ROOT"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$WORK/cni-bin"
    conf_dir = "$WORK/cni-conf"
EOF
nsenter --net="/run/netns/$NETNS" containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
CTRD_PID=$!
ctrd_up() { kill -0 "$CTRD_PID" 2>/dev/null || return 2; ctr --address "$SOCK" version >/dev/null 2>&1; }
wait_for 30 ctrd_up && ctrd_up ||
    { echo "$0: containerd did not start:" >&2; tail -5 "$WORK/containerd.log" >&2; exit 2; }

# images: the pause program (integration/cri/pause.c, static) and busybox
mkdir -p "$WORK/pause-rootfs"
cc -static -O2 -o "$WORK/pause-rootfs/pause" "$here/../cri/pause.c" &&
    oci_archive "$WORK/pause-rootfs" "$PAUSE_IMG" "$WORK/pause.tar" '{"Entrypoint":["/pause"]}' &&
    ctr_ image import "$WORK/pause.tar" >/dev/null ||
    { echo "$0: could not make the pause image" >&2; exit 2; }
sh "$here/../../bundles/mkrootfs.sh" "$WORK/rootfs" >/dev/null &&
    oci_archive "$WORK/rootfs" "$IMG" "$WORK/busybox.tar" \
        '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' &&
    ctr_ image import "$WORK/busybox.tar" >/dev/null ||
    { echo "$0: could not make the busybox image" >&2; exit 2; }
rm -rf "$WORK/rootfs" "$WORK/pause-rootfs" "$WORK"/*.tar
note "rtctr: $RTCTR ($("$RTCTR" --version 2>&1 | head -1)); containerd $(containerd --version | awk '{print $3}')"

"$KUBELET" steps --socket "$SOCK" --handler rtctr --image "$IMG" \
    --outside-ns "/run/netns/$OUTNS" --outside-ip 10.204.91.2 --node-ip 10.204.91.1 \
    --host-port 18081 --subnet-prefix 10.204.90. | tee "$WORK/steps.out" |
    grep -vE '^[0-9]+ passed, [0-9]+ failed$' # the lane's own summary comes last
PASSED=$(grep -c '^PASS ' "$WORK/steps.out")
FAILED=$(grep -c '^FAIL ' "$WORK/steps.out")
if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/steps.out"; then
    say "FAIL cri-kubelet: did not finish"
    FAILED=$((FAILED + 1))
fi

step_rtctr_ran_the_pods() {
    local n
    n=$(grep -c '\] exit=0: .* create ' "$ARGV_LOG")
    DETAIL="$n rtctr creates through the shim"
    [ "$n" -ge 5 ] # 2 sandboxes, 3 containers
}
step_nothing_left() {
    local rt veths leases nft ns shims
    rt=$("$RTCTR" --root "$SHIM_ROOT" list -q 2>/dev/null | tr '\n' ' ')
    veths=$(ip -n "$NETNS" -br link show type veth | awk '$1 !~ /^ext0/ {print $1}' | tr '\n' ' ')
    leases=$(jq -r '.leases | length' "$NETDIR/rtctr-pods.json" 2>&1)
    nft=$(ip netns exec "$NETNS" nft list table inet rtctr 2>/dev/null | grep -c 'ctr=')
    ns=$(comm -13 <(echo "$NETNS_BEFORE") <(nsnames) | tr '\n' ' ')
    shims=$(pgrep -fc "containerd-shim-runc-v2 .*-address $SOCK")
    DETAIL="rtctr containers '$rt', veths '$veths', leases $leases, nft rules naming a pod $nft, pod netns '$ns', shims $shims"
    [ -z "$rt" ] && [ -z "$veths" ] && [ "$leases" = 0 ] && [ "$nft" = 0 ] && [ -z "$ns" ] && [ "$shims" = 0 ]
}
run_steps <<'STEPS'
rtctr ran the pods            | - | step_rtctr_ran_the_pods
nothing left after removal    | - | step_nothing_left
STEPS

if [ -n "${CRI_BENCH:-}" ]; then
    # rtctr-direct: rtctr without the logging shim, as runc is run
    "$KUBELET" bench --socket "$SOCK" --image "$IMG" --handlers rtctr-direct,runc --runs "$CRI_BENCH" | sed 's/^/# /'
fi
summary
