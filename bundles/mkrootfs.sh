#!/bin/sh
# Builds a busybox root filesystem from Debian's busybox-static, with no
# network download: bundles/mkrootfs.sh DIR  ->  DIR/bin/busybox + applet links,
# /etc/passwd, /etc/group, and the usual empty directories.
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
if ! "$busybox" --list >/dev/null 2>&1; then
    echo "mkrootfs.sh: $busybox is not a busybox binary (apt-get install busybox-static)" >&2
    exit 1
fi
if file -L "$busybox" 2>/dev/null | grep -q dynamically; then
    echo "mkrootfs.sh: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi
mkdir -p "$dir/bin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/root" "$dir/home/user" "$dir/var"
chmod 1777 "$dir/tmp"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$busybox" --list); do
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
cat > "$dir/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dir/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$dir/home/user"
