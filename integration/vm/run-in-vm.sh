#!/usr/bin/env bash
# Boot a throw-away pure cgroup v2 Linux VM (qemu, host kernel, busybox
# initramfs, host / shared read-only over 9p with a tmpfs overlay on top) and
# run a command in it as root, in the caller's cwd.  Exits with the command's
# exit status.  See README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	cat <<USAGE
usage: $0 [--mem SIZE] [--smp N] [--timeout SECS] [--env NAME]... [--keep] [-v] -- CMD [ARGS...]

  --mem SIZE      guest memory (default \${RTCTR_VM_MEM:-2G})
  --smp N         guest CPUs (default \${RTCTR_VM_SMP:-2})
  --timeout SECS  kill the VM after SECS seconds, exit 124 (default \${RTCTR_VM_TIMEOUT:-600})
  --env NAME      pass the caller's \$NAME into the VM (repeatable; RUST_BACKTRACE,
                  RUST_LOG, RUST_TEST_THREADS, CARGO_TARGET_DIR, CARGO_HOME,
                  RUSTUP_HOME, TMPDIR and RTCTR_* are always passed if set)
  --keep          keep the per-run job dir (console.log, cmd.sh)
  -v              copy the guest kernel console to stderr (live)

Environment: RTCTR_VM_KERNEL (default /boot/vmlinuz-\$(uname -r), falling back to the
newest /boot/vmlinuz-*), RTCTR_VM_ACCEL (default tcg), RTCTR_VM_CACHE (initramfs and
vmlinux cache dir, default \${TMPDIR:-/tmp}/rtctr-vm), RTCTR_VM_TIMING=1,
RTCTR_VM_APPEND (extra kernel args), RTCTR_VM_MSIZE, RTCTR_VM_9P_CACHE,
RTCTR_VM_BIOS, RTCTR_VM_NO_VMLINUX=1.  See README.md.

Exit status: CMD's, 124 on timeout, 125 if the VM failed before CMD ran.
USAGE
}

mem=${RTCTR_VM_MEM:-2G}
smp=${RTCTR_VM_SMP:-2}
timeout_s=${RTCTR_VM_TIMEOUT:-600}
keep=0
verbose=0
envs=(RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS CARGO_TARGET_DIR CARGO_HOME RUSTUP_HOME TMPDIR)
while [ $# -gt 0 ]; do
	case $1 in
	--mem) mem=$2; shift 2 ;;
	--mem=*) mem=${1#*=}; shift ;;
	--smp) smp=$2; shift 2 ;;
	--smp=*) smp=${1#*=}; shift ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	--env) envs+=("$2"); shift 2 ;;
	--env=*) envs+=("${1#*=}"); shift ;;
	--keep) keep=1; shift ;;
	-v) verbose=1; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	*) echo "run-in-vm: unknown option $1" >&2; usage >&2; exit 125 ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; exit 125; }

fail() { echo "run-in-vm: $*" >&2; exit 125; }

# ---- kernel -------------------------------------------------------------
kernel=${RTCTR_VM_KERNEL:-}
if [ -z "$kernel" ]; then
	if [ -r "/boot/vmlinuz-$(uname -r)" ]; then
		kernel=/boot/vmlinuz-$(uname -r)
	else
		kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
	fi
fi
[ -n "$kernel" ] && [ -r "$kernel" ] ||
	fail "no readable kernel (apt-get install linux-image-amd64, or set RTCTR_VM_KERNEL)"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -r "$moddir/modules.dep" ] || fail "no $moddir/modules.dep for kernel $kernel"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
busybox=${RTCTR_VM_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || fail "$busybox not found (apt-get install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	! command -v file >/dev/null || fail "$busybox is not statically linked (apt-get install busybox-static)"

# ---- initramfs (cached) -------------------------------------------------
want_mods=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console
	netfs fscache 9pnet 9pnet_virtio 9p overlay)

# resolve module names -> ordered list of paths (deps first) from modules.dep
resolve_mods() {
	awk -v want="${want_mods[*]}" '
	function base(p,  b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.(xz|gz|zst))?$/, "", b); gsub(/-/, "_", b); return b }
	function visit(p,  n, i, d) {
		if (p in seen) return; seen[p] = 1
		n = split(deps[p], d, " ")
		for (i = 1; i <= n; i++) visit(d[i])
		print p
	}
	{ p = $1; sub(/:$/, "", p); deps[p] = ""; for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i; byname[base(p)] = p }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) if (w[i] in byname) visit(byname[w[i]])
	}' "$moddir/modules.dep"
}
mapfile -t mods < <(resolve_mods)

cache=${RTCTR_VM_CACHE:-${TMPDIR:-/tmp}/rtctr-vm}
mkdir -p "$cache"
key=$( {
	echo "$kver"; stat -Lc '%s %Y' "$kernel" "$busybox"
	cat "$here/init.sh" "$here/stage2.sh"; printf '%s\n' "${mods[@]}"
	for m in "${mods[@]}"; do stat -Lc '%s %Y' "$moddir/$m"; done
} | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$kver-$key.cpio.gz

if [ ! -s "$initrd" ]; then
	build=$(mktemp -d "$cache/build.XXXXXX")
	trap 'rm -rf "$build"' EXIT
	mkdir -p "$build"/{bin,dev,proc,sys,lib/modules,lower,upper,newroot}
	cp "$busybox" "$build/bin/busybox"
	ln -s busybox "$build/bin/sh"
	: >"$build/lib/modules/modules.list"
	for m in "${mods[@]}"; do
		f=$(basename "$m")
		case $f in
		*.ko) cp "$moddir/$m" "$build/lib/modules/$f" ;;
		*.ko.xz) xz -dc "$moddir/$m" >"$build/lib/modules/${f%.xz}"; f=${f%.xz} ;;
		*.ko.gz) gzip -dc "$moddir/$m" >"$build/lib/modules/${f%.gz}"; f=${f%.gz} ;;
		*.ko.zst) zstd -qdc "$moddir/$m" >"$build/lib/modules/${f%.zst}"; f=${f%.zst} ;;
		esac
		echo "$f" >>"$build/lib/modules/modules.list"
	done
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		grep -q "^$m\.ko$" "$build/lib/modules/modules.list" ||
			grep -q "^CONFIG_$(echo "$m" | tr a-z A-Z)=y" "/boot/config-$kver" 2>/dev/null ||
			echo "run-in-vm: warning: module $m not found for $kver (built in?)" >&2
	done
	install -m 0755 "$here/init.sh" "$build/init"
	install -m 0755 "$here/stage2.sh" "$build/stage2.sh"
	(cd "$build" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
		gzip -1 >"$initrd.tmp.$$"
	mv "$initrd.tmp.$$" "$initrd"
	rm -rf "$build"
	trap - EXIT
	# drop stale images
	find "$cache" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mmin +60 ! -name "${initrd##*/}" -delete 2>/dev/null || true
fi

# ---- uncompressed kernel (cached) ------------------------------------------
# Decompressing the bzImage under TCG costs several seconds per boot.  A kernel
# built with CONFIG_PVH=y can be booted directly as an ELF vmlinux, so extract
# it once (like scripts/extract-vmlinux) and boot that instead.
boot_kernel=$kernel
if [ "${RTCTR_VM_NO_VMLINUX:-}" != 1 ] && grep -q '^CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null; then
	vmlinux=$cache/vmlinux-$kver-$(stat -Lc '%s-%Y' "$kernel")
	if [ ! -s "$vmlinux" ]; then
		tmp=$vmlinux.tmp.$$
		python3 - "$kernel" "$tmp" <<'PY' || rm -f "$tmp"
import lzma, gzip, subprocess, sys
data = open(sys.argv[1], 'rb').read()
for magic, dec in ((b'\xfd7zXZ\x00', lambda b: lzma.LZMADecompressor().decompress(b)),
                   (b'\x1f\x8b\x08', lambda b: gzip.GzipFile(fileobj=__import__('io').BytesIO(b)).read()),
                   (b'\x28\xb5\x2f\xfd', lambda b: subprocess.run(['zstd', '-qdc'], input=b, capture_output=True).stdout)):
    i = data.find(magic)
    while i >= 0:
        try:
            out = dec(data[i:])
        except Exception:
            out = b''
        if out[:4] == b'\x7fELF':
            open(sys.argv[2], 'wb').write(out)
            sys.exit(0)
        i = data.find(magic, i + 1)
sys.exit(1)
PY
		if [ -s "$tmp" ]; then
			mv "$tmp" "$vmlinux"
			find "$cache" -maxdepth 1 -name 'vmlinux-*' -mmin +60 ! -name "${vmlinux##*/}" -delete 2>/dev/null || true
		fi
	fi
	[ -s "$vmlinux" ] && boot_kernel=$vmlinux
fi

# ---- job dir ---------------------------------------------------------------
job=$(mktemp -d "${TMPDIR:-/tmp}/rtctr-vm-job.XXXXXX")
qpid=
cleanup() {
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	kill ${out_pid:-} ${err_pid:-} ${con_pid:-} 2>/dev/null || true
	if [ "$keep" = 1 ]; then echo "run-in-vm: job dir kept: $job" >&2; else rm -rf "$job"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }
{
	echo "# generated by run-in-vm.sh"
	for e in "${envs[@]}" $(compgen -e | grep '^RTCTR_' || true); do
		[ -n "${!e+x}" ] && echo "export $e=$(q "${!e}")"
	done
	# the caller's PATH (same filesystem), then the standard dirs
	echo "export PATH=$(q "${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")"
	echo "cd $(q "$PWD") || exit 125"
	printf 'exec'
	for a in "$@"; do printf ' %s' "$(q "$a")"; done
	echo
} >"$job/cmd.sh"

# ---- boot ----------------------------------------------------------------
accel=${RTCTR_VM_ACCEL:-tcg}
cpu=max
[ "$accel" = tcg ] || cpu=host
console_log=$job/console.log
console=(-chardev "file,id=con,path=$console_log")
cmdline="console=ttyS0 quiet loglevel=4 panic=-1 cgroup_no_v1=all rdinit=/init random.trust_cpu=on"
[ -z "${RTCTR_VM_APPEND:-}" ] || cmdline+=" $RTCTR_VM_APPEND"
[ -z "${RTCTR_VM_MSIZE:-}" ] || cmdline+=" rtctr.msize=$RTCTR_VM_MSIZE"
[ -z "${RTCTR_VM_9P_CACHE:-}" ] || cmdline+=" rtctr.cache=$RTCTR_VM_9P_CACHE"

# The guest's stdout/stderr arrive through fifos copied by cat, so they end up
# on our own fds (qemu reopening /dev/fd/N would get a separate file offset).
# With -v the console goes the same way (to our stderr).
fifos=("$job/stdout" "$job/stderr")
mkfifo "$job/stdout" "$job/stderr"
cat "$job/stdout" &
out_pid=$!
cat "$job/stderr" >&2 &
err_pid=$!
con_pid=
if [ "$verbose" = 1 ]; then
	mkfifo "$console_log"
	fifos+=("$console_log")
	cat "$console_log" >&2 &
	con_pid=$!
fi

start=$(date +%s.%N)
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
	-name rtctr-vm -machine q35,accel="$accel" -cpu "$cpu" -m "$mem" -smp "$smp" \
	${RTCTR_VM_BIOS:+-bios "$RTCTR_VM_BIOS"} -nodefaults -no-user-config -nographic -no-reboot \
	-kernel "$boot_kernel" -initrd "$initrd" -append "$cmdline" \
	"${console[@]}" -serial chardev:con \
	-device virtio-serial-pci,id=vser \
	-chardev "file,id=out,path=$job/stdout" -device virtserialport,chardev=out,name=rtctr.stdout \
	-chardev "file,id=err,path=$job/stderr" -device virtserialport,chardev=err,name=rtctr.stderr \
	-fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=job,path="$job",security_model=none \
	-device virtio-9p-pci,fsdev=job,mount_tag=job \
	-device virtio-rng-pci \
	</dev/null &
qpid=$!

show_console() {
	echo "--- guest console (tail) ---" >&2
	tail -n 40 "$console_log" 2>/dev/null | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' >&2 || true
}

rc=0
wait "$qpid" || rc=$?
qpid=
# if qemu never opened a fifo its cat is stuck in open(): an O_RDWR open never
# blocks on Linux, lets that cat's open complete, and the close gives it EOF
for f in "${fifos[@]}"; do exec 7<>"$f"; exec 7>&-; done
wait "$out_pid" "$err_pid" $con_pid 2>/dev/null || true
elapsed=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?')

if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	echo "run-in-vm: TIMEOUT after ${timeout_s}s, VM killed" >&2
	[ "$verbose" = 1 ] || show_console
	exit 124
fi
if [ ! -s "$job/exit" ]; then
	echo "run-in-vm: VM exited (qemu status $rc) without running the command to completion" >&2
	[ "$verbose" = 1 ] || show_console
	exit 125
fi
status=$(cat "$job/exit")
[ -z "${RTCTR_VM_TIMING:-}" ] || echo "run-in-vm: VM wall time ${elapsed}s, exit $status" >&2
exit "$status"
