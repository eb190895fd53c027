#!/usr/bin/env bash
# Build cargo test binaries on the host, then run them all inside one pure
# cgroup v2 VM (see run-in-vm.sh).  Building inside the VM is possible but
# slow: the VM runs under TCG and every file lookup goes over 9p.
#
# usage: integration/vm/cargo-test-in-vm.sh [VM-OPTS...] [CARGO-TEST-ARGS...] [-- TEST-ARGS...]
#   VM-OPTS (before cargo args): --mem SIZE --smp N --timeout SECS --env NAME -v --keep
#   e.g. integration/vm/cargo-test-in-vm.sh -p rtctr-cgroups -- --test-threads=1
# Exits non-zero if the build or any test binary fails.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

vm_opts=()
while [ $# -gt 0 ]; do
	case $1 in
	--mem|--smp|--timeout|--env) vm_opts+=("$1" "$2"); shift 2 ;;
	-v|--keep) vm_opts+=("$1"); shift ;;
	*) break ;;
	esac
done
cargo_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do cargo_args+=("$1"); shift; done
[ $# -eq 0 ] || shift
test_args=("$@")

json=$(mktemp "${TMPDIR:-/tmp}/rtctr-vm-cargo.XXXXXX")
list=$(mktemp "${TMPDIR:-/tmp}/rtctr-vm-tests.XXXXXX")
trap 'rm -f "$json" "$list"' EXIT
cargo test --no-run --message-format=json "${cargo_args[@]}" >"$json"
# one line per test binary: <executable>\t<package dir>
jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test == true)
	| [.executable, (.manifest_path | sub("/Cargo.toml$"; ""))] | @tsv' "$json" >"$list"
[ -s "$list" ] || { echo "cargo-test-in-vm: no test binaries built" >&2; exit 1; }
echo "cargo-test-in-vm: $(wc -l <"$list") test binaries" >&2

# The runner script lives in the list's dir, which is visible in the VM.
runner=$list.sh
trap 'rm -f "$json" "$list" "$runner"' EXIT
cat >"$runner" <<'RUNNER'
list=$1; shift
failed=0
while IFS="$(printf '\t')" read -r exe dir; do
	echo "=== $exe" >&2
	(cd "$dir" && CARGO_MANIFEST_DIR=$dir "$exe" "$@") </dev/null || { echo "=== FAILED: $exe" >&2; failed=$((failed + 1)); }
done <"$list"
[ "$failed" = 0 ] || { echo "=== $failed test binaries failed" >&2; exit 1; }
RUNNER
rc=0
"$here/run-in-vm.sh" "${vm_opts[@]}" -- sh "$runner" "$list" "${test_args[@]}" || rc=$?
exit $rc
