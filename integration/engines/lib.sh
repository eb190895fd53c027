# Shared helpers for the engine scripts (podman.sh, containerd.sh).
# Sourced, not run. Needs bash.
#
# A script sets RTCTR (absolute path of the binary under test) and WORK (its
# private scratch directory), defines one function per step, lists the steps
# in a table, and calls run_steps.
#
# Step table: one step a line, `name | needs | function`.
#   needs  what rtctr must have for the step to work, comma-separated: a
#          subcommand name (exec, pause, update, ps, ...), `terminal`, or `-` for nothing
#          beyond create/start/state/kill/delete. When a step fails and rtctr
#          lacks what it needs (no such subcommand, or rtctr's message says
#          terminals are not supported), the step is reported SKIP with the
#          reason and the error, not FAIL; ENGINES_STRICT=1 makes it FAIL.
#   function  returns 0 for pass; sets DETAIL to say what it saw.

PASSED=0
FAILED=0
SKIPPED=0
FAILED_STEPS=()
DETAIL=""

say() { printf '%s\n' "$*"; }
note() { printf '# %s\n' "$*"; }

# apt_need PKG...: installs the Debian packages that are missing.
apt_need() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    note "installing: ${missing[*]}"
    apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# make_shim DIR: DIR/rtctr logs every call (argv, exit status, and on failure
# the tail of the --log file the engine gave) to $ARGV_LOG, then runs $RTCTR.
# Engines see a runtime whose basename is `rtctr`.
make_shim() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/rtctr" <<EOF
#!/bin/bash
# Logging shim made by integration/engines/lib.sh.
log='$ARGV_LOG'
real='$RTCTR'
EOF
    cat >>"$dir/rtctr" <<'EOF'
logfile=""
prev=""
for a in "$@"; do
    case $prev in --log) logfile=$a ;; esac
    case $a in --log=*) logfile=${a#--log=} ;; esac
    prev=$a
done
line=$(printf ' %q' "$@")
echo "[$$] start:$line" >>"$log"
"$real" "$@"
rc=$?
echo "[$$] exit=$rc:$line" >>"$log"
if [ $rc -ne 0 ] && [ -n "$logfile" ] && [ -f "$logfile" ]; then
    tail -n 3 "$logfile" | sed "s/^/[$$]   log: /" >>"$log"
fi
exit $rc
EOF
    chmod 755 "$dir/rtctr"
}

# rtctr_has NEED: does this rtctr have what a step needs?
rtctr_has() {
    case $1 in
    - | "") return 0 ;;
    terminal) return 0 ;; # decided by rtctr's message, see run_steps
    *) "$RTCTR" "$1" --help >/dev/null 2>&1 ;;
    esac
}

# The last rtctr error the shim logged since line $1 of the argv log.
rtctr_errors_since() {
    tail -n +"$(($1 + 1))" "$ARGV_LOG" 2>/dev/null | grep -E '\] (exit=[1-9]|  log: )' | tail -n 4 | tr '\n' ' '
}

# run_steps: reads the step table on stdin and runs each step.
run_steps() {
    local name needs fn mark before errs
    while IFS='|' read -r name needs fn; do
        name=$(echo $name)
        needs=$(echo $needs)
        fn=$(echo $fn)
        case $name in '' | '#'*) continue ;; esac
        DETAIL=""
        before=$(wc -l <"$ARGV_LOG" 2>/dev/null || echo 0)
        if "$fn" </dev/null; then
            mark=PASS
        else
            mark=FAIL
            errs=$(rtctr_errors_since "$before")
            [ -n "$errs" ] && DETAIL="$DETAIL; rtctr: $errs"
            if [ "${ENGINES_STRICT:-0}" != 1 ]; then
                local need why=""
                for need in ${needs//,/ }; do
                    if [ "$need" = terminal ] && grep -q "terminals are not supported" <<<"$DETAIL"; then
                        why="${why}rtctr says terminals are not supported yet; "
                    elif ! rtctr_has "$need"; then
                        why="${why}rtctr has no '$need' command yet; "
                    fi
                done
                if [ -n "$why" ]; then
                    mark=SKIP
                    DETAIL="$why$DETAIL"
                fi
            fi
        fi
        DETAIL=$(printf '%s' "$DETAIL" | tr '\n' ' ' | cut -c1-600)
        say "$mark $name: $DETAIL"
        case $mark in
        PASS) PASSED=$((PASSED + 1)) ;;
        FAIL) FAILED=$((FAILED + 1)); FAILED_STEPS+=("$name") ;;
        SKIP) SKIPPED=$((SKIPPED + 1)) ;;
        esac
    done
}

# summary: the last line; returns non-zero if any step failed.
summary() {
    if [ -s "$ARGV_LOG" ]; then
        note "rtctr calls logged in $ARGV_LOG; distinct argv shapes:"
        argv_shapes "$ARGV_LOG" | sed 's/^/#   /'
    fi
    local s="$PASSED passed, $FAILED failed"
    [ "$SKIPPED" -gt 0 ] && s="$s, $SKIPPED skipped"
    say "$s"
    [ "$FAILED" -eq 0 ]
}

# argv_shapes LOG: the calls with ids, paths and numbers abstracted.
argv_shapes() {
    grep -E '\] exit=' "$1" |
        sed -E -e 's/^\[[0-9]+\] exit=[0-9]+://' \
            -e 's#/[^ ]*/[^ ]*#PATH#g' \
            -e 's/ [0-9a-f]{64}/ ID/g' \
            -e 's/ rtctr-[a-z0-9-]+/ ID/g' \
            -e 's/([ =])[0-9]+( |$)/\1N\2/g' |
        sort | uniq -c | sort -rn
}

# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        return 0
    fi
    DETAIL="$DETAIL $1: got '$2', want '$3';"
    return 1
}

# wait_for SECONDS CMD...: retries CMD until it succeeds.
wait_for() {
    local n=$(($1 * 5))
    shift
    while [ $n -gt 0 ]; do
        "$@" && return 0
        sleep 0.2
        n=$((n - 1))
    done
    return 1
}

# oci_archive ROOTFS IMAGE_NAME OUT_TAR CONFIG_JSON: an OCI image archive
# (one uncompressed layer holding ROOTFS) that `ctr image import` reads; the
# image is named IMAGE_NAME (io.containerd.image.name), and CONFIG_JSON is
# the image config's "config" object (Env, Cmd, Entrypoint).
oci_archive() {
    local rootfs=$1 name=$2 out=$3 conf=$4 tmp arch d s l ls c cs m ms
    tmp=$(mktemp -d "$out.XXXXXX") || return 1
    arch=$(dpkg --print-architecture)
    mkdir -p "$tmp/oci/blobs/sha256"
    put() { # put FILE: moves it into the blobs; its digest and size in $d $s
        d=$(sha256sum "$1" | cut -d' ' -f1)
        s=$(stat -c %s "$1")
        mv "$1" "$tmp/oci/blobs/sha256/$d"
    }
    tar --sort=name --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$tmp/layer.tar" . || return 1
    put "$tmp/layer.tar"; l=$d; ls=$s
    printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$arch" "$conf" "$l" >"$tmp/config.json"
    put "$tmp/config.json"; c=$d; cs=$s
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$c" "$cs" "$l" "$ls" >"$tmp/manifest.json"
    put "$tmp/manifest.json"; m=$d; ms=$s
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$m" "$ms" "$arch" "$name" "${name##*:}" >"$tmp/oci/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci/oci-layout"
    tar -C "$tmp/oci" -cf "$out" oci-layout index.json blobs
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
