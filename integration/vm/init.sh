#!/bin/busybox sh
# Stage 1 /init of the rtctr test VM initramfs (runs as PID 1 from the
# initramfs).  Loads the 9p/virtio/overlay modules, mounts the host root
# read-only over 9p with a tmpfs overlay on top, and switch_roots into it,
# running stage2 (/.rtctr/init) as the new PID 1.
/bin/busybox mkdir -p /proc /sys /dev /lower /upper /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev

die() {
	echo "rtctr-vm init: $*" >/dev/console
	/bin/busybox poweroff -f
	while :; do /bin/busybox sleep 1; done
}

# Modules, in dependency order (see modules.list written at build time).
while read -r m; do
	[ -n "$m" ] || continue
	/bin/busybox insmod "/lib/modules/$m" || die "insmod $m failed"
done </lib/modules/modules.list

# 9p tuning knobs from the kernel command line (rtctr.msize=, rtctr.cache=)
MSIZE=512000 CACHE=loose
for a in $(/bin/busybox cat /proc/cmdline); do
	case $a in
	rtctr.msize=*) MSIZE=${a#*=} ;;
	rtctr.cache=*) CACHE=${a#*=} ;;
	esac
done
/bin/busybox mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=$MSIZE,cache=$CACHE hostroot /lower ||
	die "mounting host root over 9p failed"
/bin/busybox mount -t tmpfs -o mode=0755 upper /upper || die "tmpfs upper"
/bin/busybox mkdir -p /upper/upper /upper/work
/bin/busybox mount -t overlay -o lowerdir=/lower,upperdir=/upper/upper,workdir=/upper/work overlay /newroot ||
	die "overlay mount failed"

/bin/busybox mkdir -p /newroot/.rtctr/job
/bin/busybox cp /bin/busybox /newroot/.rtctr/busybox
/bin/busybox cp /stage2.sh /newroot/.rtctr/init
/bin/busybox chmod 0755 /newroot/.rtctr/init /newroot/.rtctr/busybox
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=$MSIZE,cache=none job /newroot/.rtctr/job ||
	die "mounting job dir over 9p failed"

# Keep the raw 9p view of the host root reachable (read-only) for debugging
# and for comparing 9p vs overlay performance.
/bin/busybox mkdir -p /newroot/.rtctr/lower
/bin/busybox mount --move /lower /newroot/.rtctr/lower || true
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev 2>/dev/null || /bin/busybox umount /dev
exec /bin/busybox switch_root /newroot /.rtctr/init
