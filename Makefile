# rtctr: an OCI container runtime.
#   make demo   install what is needed, build, and run a container
#   make test   run every test (unit, integration, cgroup v2 VM)
#   make bench  run the benchmarks (a few minutes; not part of make test)
#   make bench-short  the runtime comparison with few rounds (about a minute)
#   make soak   10,000 random container lifecycles with leak checks (by hand)
#   make fuzz   fuzz each target 10 minutes (FUZZ_SECONDS=N to change; not part of make test)
SHELL := /bin/bash
CARGO ?= cargo
# The runtime's own binaries (rtctr, rtctr-net-hook, rtctr-cni) are linked
# statically and not position-independent: no dynamic loader, no libraries to
# map, no relocations at each start (issue 13, docs/bench.md). They are built
# for musl (rtctr with dlmalloc, runtime/src/main.rs) where rustup has musl's
# std or can add it: glibc probes the CPU's caches with cpuid at each start,
# which costs a VM exit per call; glibc (crt-static) otherwise. --target keeps
# these RUSTFLAGS off build scripts and proc-macros, and puts the binaries in
# target/<triple>/release; the tests and scripts take them from RTCTR_BIN.
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
MUSL := $(subst -gnu,-musl,$(HOST))
has_musl = rustup target list --installed 2>/dev/null | grep -qx '$(MUSL)'
TRIPLE := $(shell $(has_musl) || rustup target add '$(MUSL)' >/dev/null 2>&1; \
	if $(has_musl); then echo '$(MUSL)'; else echo '$(HOST)'; fi)
STATIC_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static
RELEASE := $(or $(CARGO_TARGET_DIR),target)/$(TRIPLE)/release
RTCTR := $(RELEASE)/rtctr
export RTCTR_BIN := $(abspath $(RTCTR))
BUNDLE := bundles/busybox
APT_PACKAGES := busybox-static iproute2 nftables pkg-config libc6-dev \
	qemu-system-x86 linux-image-amd64 runc jq apparmor protobuf-compiler uidmap passt slirp4netns \
	umoci skopeo criu podman
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all build deps bundle demo test unit integration soak soak-short test-engines test-cgroupv2 test-checkpoint-podman \
	lint fmt clean bench bench-short bench-deps text-order fuzz fuzz-short fuzz-deps

all: build

# Debian packages the build and the tests need (root; skipped when present).
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --target $(TRIPLE) -p rtctr -p rtctr-hooks --bins
	$(CARGO) build --release --workspace --exclude rtctr --exclude rtctr-hooks --bins

# bundles/busybox: rootfs from Debian's busybox-static, config from `rtctr spec`.
bundle: build
	rm -rf $(BUNDLE) && mkdir -p $(BUNDLE)
	bundles/mkrootfs.sh $(BUNDLE)/rootfs
	install -m 755 bundles/demo.sh $(BUNDLE)/rootfs/demo.sh
	$(RTCTR) spec --bundle $(BUNDLE)
	sed -i -e 's/"terminal": true/"terminal": false/' \
		-e 's|^\(\t*\)"sh"$$|\1"sh", "/demo.sh"|' $(BUNDLE)/config.json

demo: deps bundle
	$(RTCTR) run --bundle $(BUNDLE) rtctr-demo-$$$$

unit:
	$(CARGO) test --workspace --lib --bins -- --test-threads=2

integration: build
	$(CARGO) test --release -p rtctr-integration -- --test-threads=2
	$(CARGO) test --release -p rtctr-cgroups --tests -- --test-threads=1
	$(CARGO) test --release -p rtctr-hooks --tests

# The cgroup and container tests again, in a pure cgroup v2 VM (qemu, TCG).
# Only the tests whose outcome depends on the cgroup layout or on the
# kernel's features (AppArmor, cgroup.kill, time namespaces, CRIU): the VM
# runs under TCG, where each container costs seconds (checkpoint: ~50 s).
VM_TESTS := root cgroups lifecycle exec_tty exec security namespaces rootfs conformance leak_check rootless checkpoint
test-cgroupv2: build
	integration/vm/cargo-test-in-vm.sh --timeout 1500 --release -p rtctr-cgroups -p rtctr-integration \
		$(addprefix --test ,$(VM_TESTS)) -- --test-threads=1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

# podman (through conmon; as root, and rootless as a user the script
# makes), containerd (runc shim v2), Kubernetes' path (containerd's CRI
# plugin with a runtime handler rtctr, pods networked by rtctr-cni,
# integration/cri plays kubelet) and Docker driving rtctr.
test-engines: build
	integration/engines/podman.sh $(abspath $(RTCTR))
	integration/engines/podman-rootless.sh $(abspath $(RTCTR))
	integration/engines/containerd.sh $(abspath $(RTCTR))
	CRI_KUBELET=$(abspath $(or $(CARGO_TARGET_DIR),target)/release/cri-kubelet) \
		integration/engines/cri.sh $(abspath $(RTCTR))
	integration/engines/docker.sh $(abspath $(RTCTR))

# podman container checkpoint/restore (and --export/--import) through rtctr,
# in the cgroup v2 VM where CRIU runs; minutes under TCG, not in `make test`.
test-checkpoint-podman: build
	integration/vm/run-in-vm.sh --timeout 900 -- integration/engines/podman-checkpoint.sh $(abspath $(RTCTR))

# The soak (issue 11, integration/src/bin/soak.rs): seeded random
# lifecycles (runs, exec, pause, OOM kills, rtctr SIGKILLed mid-verb,
# failed creates, networks, signals, parallel creates), with a sweep and a
# check that the host holds nothing of them after every 50. It prints
# `N passed, N failed` and the leak counts; SOAK_SEED=S reruns a seed, and
# every failure prints the command that replays its lifecycle. `make soak`
# (by hand) runs SOAK_N; `make test` runs the short form, SOAK_SHORT_N
# (about a minute here).
SOAK := $(or $(CARGO_TARGET_DIR),target)/release/soak
SOAK_N ?= 10000
SOAK_SHORT_N ?= 300
SOAK_SEED ?=
soak: build
	$(SOAK) --lifecycles $(SOAK_N) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

soak-short: build
	$(SOAK) --lifecycles $(SOAK_SHORT_N) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

test: deps lint unit integration soak-short fuzz-short test-engines test-cgroupv2

# Benchmarks, outside `make test` (they print figures, they do not pass or
# fail): seccomp with podman's profile (compile time, cost per syscall), and
# the network hook's setup latency (root: throw-away network namespaces);
# image layers: bundle, create with an overlay root, disk use of 100
# containers (root; the release binary).
#
# The runtime comparison (issue 13, integration/src/bin/bench.rs): rtctr,
# runc, crun and youki (when installed) on one busybox bundle, paired
# rounds, in a private mount namespace; writes target/bench/bench.md and
# ratios.png. BENCH_ARGS=... passes options (--rounds N, --warmup N,
# --throughput-count N, --throughput-rounds N).
BENCH_APT := crun runc containernetworking-plugins jq time gnuplot-nox golang-github-containers-common
BENCH_BIN := $(or $(CARGO_TARGET_DIR),target)/release/bench
BENCH_RTCTR := $(RTCTR_BIN)
BENCH_ARGS ?=

bench-deps:
	@missing=""; for p in $(BENCH_APT); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: bench-deps build
	RTCTR_BIN=$(BENCH_RTCTR) $(BENCH_BIN) --out target/bench $(BENCH_ARGS)
	$(CARGO) bench -p rtctr --bench seccomp
	$(CARGO) bench -p rtctr-hooks --bench setup
	$(CARGO) build --release -p rtctr && $(CARGO) bench -p rtctr-integration --bench layers

bench-short: bench-deps build
	RTCTR_BIN=$(BENCH_RTCTR) $(BENCH_BIN) --out target/bench --rounds 5 --warmup 1 \
		--throughput-count 48 --throughput-rounds 1 $(BENCH_ARGS)

# The link order of rtctr's functions (runtime/build.rs, docs/bench.md):
# relinks rtctr with a link map, runs the short bench under
# text-order (integration/src/bin/text-order.rs), which writes the functions
# its rtctr commands call, first called first, to runtime/text-order.txt;
# then relinks with that order. Rerun after a toolchain or dependency update
# (symbol names carry a hash of both) or a large change to create's path.
TEXT_ORDER_MAP := $(abspath $(RELEASE))/rtctr.map
text-order: bench-deps build
	RTCTR_LINK_MAP=$(TEXT_ORDER_MAP) RUSTFLAGS="$(STATIC_RUSTFLAGS)" \
		$(CARGO) build --release --target $(TRIPLE) -p rtctr --bin rtctr
	$(or $(CARGO_TARGET_DIR),target)/release/text-order --binary $(RTCTR) --map $(TEXT_ORDER_MAP) \
		--out runtime/text-order.txt -- env RTCTR_BIN=$(RTCTR_BIN) $(BENCH_BIN) \
		--out target/text-order --rounds 2 --warmup 0 --throughput-count 8 --throughput-rounds 1
	$(MAKE) build

# Fuzzing (fuzz/README.md): cargo fuzz (libFuzzer) on the stable toolchain,
# without a sanitizer. Targets: config.json parse + validate (and the
# cgroup and seccomp plans of a valid config), exec --process FILE, the
# seccomp compiler on JSON and on generated profiles.
FUZZ_TARGETS := config process seccomp seccomp_gen
FUZZ_SECONDS ?= 600
FUZZ_SHORT_SECONDS ?= 30
CARGO_FUZZ_VERSION := 0.13.2

fuzz-deps:
	@cargo fuzz --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)" || \
		$(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)

fuzz: fuzz-deps
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# CI's form: every corpus file replayed (plain cargo test), then each
# target fuzzed $(FUZZ_SHORT_SECONDS) s.
fuzz-short: fuzz-deps
	$(CARGO) test --manifest-path fuzz/Cargo.toml
	fuzz/run.sh $(FUZZ_SHORT_SECONDS) $(FUZZ_TARGETS)

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

clean:
	$(CARGO) clean
	rm -rf $(BUNDLE)
