#!/bin/bash
# tests/run-all.sh — every test of oci-volume-hook, on a fresh Debian 12
# machine, as root. Installs what the tests need, then runs, in order:
#
#   lint     cargo fmt --check, cargo clippy --all-targets -D warnings
#   cargo    unit, binary and namespace tiers (cargo test --locked)
#   fuzz     a short smoke run of each fuzz target (when cargo-fuzz is usable)
#   e2e      real runc, crun, podman, kube play (tests/e2e/run.sh)
#   rootless rootless podman (runc, crun) as a normal user with subordinate ids (tests/rootless/run.sh)
#   perf     regression guard: the packaged (static) build under crun against
#            a static C hook, 15 rounds (bench/start-latency.sh --quick);
#            fails only on a gross regression (> 3 ms over that floor)
#   docker   private dockerd + containerd through oci-volume-runtime; ctr (tests/docker/run.sh)
#   nspawn   systemd-nspawn through `oci-volume-hook nspawn` (tests/nspawn/run.sh)
#   pkg      .deb built, installed, used by podman, removed; RPM built (tests/pkg/run.sh)
#   vm       SELinux-enforcing guest under qemu: labels, NFS (tests/vm/run.sh)
#
# Usage: tests/run-all.sh [SUITE...]   (default: all; e.g. `tests/run-all.sh cargo e2e`)
# Each suite prints its own PASS/FAIL lines and closing count; the last
# line is `suites: N passed, N failed`. Exit status 0 only if all passed.
set -u
cd "$(dirname "$(readlink -f "$0")")/.." || exit 1
REPO=$PWD
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

if [ "$(id -u)" != 0 ]; then
    echo "run-all: the runtime, package and VM tiers need root: run it as root (sudo $0)" >&2
    exit 1
fi

ALL=(lint cargo fuzz e2e rootless nspawn docker perf pkg vm)
if [ $# -gt 0 ]; then SUITES=("$@"); else SUITES=("${ALL[@]}"); fi

passed=() failed=()
stamp() { date +%s; }

install_build_deps() {
    local pkgs=(build-essential pkg-config libselinux1-dev libclang-dev clang selinux-utils attr)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "run-all: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=900 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null
    fi
}

suite_lint() {
    cargo fmt --all -- --check && cargo clippy --locked --all-targets -- -D warnings
}

suite_cargo() {
    cargo build --release --locked && cargo test --locked --all-targets
}

suite_fuzz() {
    if [ ! -d fuzz ]; then echo "fuzz: no fuzz/ directory"; return 0; fi
    ./fuzz/smoke.sh
}

suite_e2e() { ./tests/install-deps.sh && ./tests/e2e/run.sh; }
suite_rootless() {
    ./tests/install-deps.sh &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 uidmap slirp4netns fuse-overlayfs attr >/dev/null &&
        ./tests/rootless/run.sh
}
suite_nspawn() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 systemd-container busybox-static >/dev/null &&
        ./tests/nspawn/run.sh
}
# Not a timed test of the goal (that is bench/start-latency.sh, 60 rounds):
# a shared machine is noisy, so a failing quick run is repeated once with
# 30 rounds and only a second failure fails the suite.
suite_perf() {
    ./tests/install-deps.sh && make build || return 1
    local bin
    bin=$(make -s print-bin) || return 1
    case $bin in /*) ;; *) bin=$REPO/$bin ;; esac
    OVH_BIN=$bin ./bench/start-latency.sh --quick ||
        { echo "perf: over the guard once; measuring again with 30 rounds"
          OVH_BIN=$bin BENCH_RUNS=30 ./bench/start-latency.sh --quick; }
}
suite_docker() { ./tests/docker/run.sh; }
suite_pkg() { ./tests/pkg/run.sh; }
suite_vm() { ./tests/vm/run.sh; }

install_build_deps || { echo "run-all: cannot install build dependencies"; exit 1; }
for s in "${SUITES[@]}"; do
    if ! declare -F "suite_$s" >/dev/null; then
        echo "run-all: unknown suite $s (known: ${ALL[*]})"; exit 2
    fi
    echo "=== suite $s"
    t0=$(stamp)
    if "suite_$s"; then
        passed+=("$s"); echo "=== suite $s: PASS ($(( $(stamp) - t0 )) s)"
    else
        failed+=("$s"); echo "=== suite $s: FAIL ($(( $(stamp) - t0 )) s)"
    fi
done
[ ${#failed[@]} -eq 0 ] || echo "failed suites: ${failed[*]}"
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
