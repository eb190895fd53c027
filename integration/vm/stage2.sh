#!/.rtctr/busybox sh
# Stage 2 init (PID 1 inside the overlay root = host root + tmpfs upper).
# Sets up a pure cgroup v2 system, runs /.rtctr/job/cmd.sh with stdout and
# stderr on virtio-serial ports (rtctr.stdout/rtctr.stderr), writes the exit
# status to /.rtctr/job/exit and powers off.
BB=/.rtctr/busybox
J=/.rtctr/job

$BB mount -t proc -o nosuid,nodev,noexec proc /proc
$BB mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
$BB mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
$BB grep -q " /dev devtmpfs " /proc/mounts || $BB mount -t devtmpfs -o nosuid devtmpfs /dev
$BB mkdir -p /dev/pts /dev/shm /dev/mqueue
$BB mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
$BB ln -sf pts/ptmx /dev/ptmx 2>/dev/null
$BB mount -t tmpfs -o nosuid,nodev shm /dev/shm
$BB mount -t mqueue mqueue /dev/mqueue 2>/dev/null
$BB mount -t tmpfs -o nosuid,nodev,mode=0755 run /run
# /tmp is left as the overlay (host /tmp visible, writes go to RAM) so that
# bundles created by the caller under /tmp are reachable inside the VM.
$BB chmod 1777 /tmp 2>/dev/null
$BB mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
$BB mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
$BB mount -t bpf bpf /sys/fs/bpf 2>/dev/null
$BB ip link set lo up 2>/dev/null
$BB hostname rtctr-vm

# stdout/stderr go to the host over virtio-serial ports (no tty processing)
out=/dev/console err=/dev/console
for d in /sys/class/virtio-ports/*; do
	case $($BB cat $d/name 2>/dev/null) in
	rtctr.stdout) out=/dev/${d##*/} ;;
	rtctr.stderr) err=/dev/${d##*/} ;;
	esac
done

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export TERM=dumb
export container=
unset container

# cmd.sh does the cd and the exec; run it in its own session.
$BB setsid $BB sh $J/cmd.sh </dev/null >$out 2>$err
rc=$?
echo $rc >$J/exit.tmp && $BB mv $J/exit.tmp $J/exit
$BB sync
$BB poweroff -f
