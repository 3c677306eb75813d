#!/bin/bash
# demo/seed-story.sh — the founding use case, end to end, on this machine:
# two stateless containers share a persistent volume; the data outlives
# them on the host; a read-only "operations" container reads the app's log
# and cannot write. Uses podman with the hook from hooks.d (runtime runc by
# default; DEMO_RUNTIME=crun for crun). Run as root on Debian 12.
#
# Everything lives under $DEMO_DIR (default /var/tmp/oci-volume-hook-demo);
# the volume's data stays there afterwards so you can look at it.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
REPO=$PWD
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"
DEMO_DIR=${DEMO_DIR:-/var/tmp/oci-volume-hook-demo}
RUNTIME=${DEMO_RUNTIME:-runc}
[ "$(id -u)" = 0 ] || { echo "demo: run as root (podman, runc and the hook need it)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing runc, crun, podman, busybox-static (if missing) and building the hook"
./tests/install-deps.sh
cargo build --release --locked --quiet
BIN=$REPO/target/release/oci-volume-hook

mkdir -p "$DEMO_DIR"/{hooks.d,rootfs/bin}
cp /bin/busybox "$DEMO_DIR/rootfs/bin/busybox"
for a in sh cat echo ls date touch; do ln -sf busybox "$DEMO_DIR/rootfs/bin/$a"; done
cat > "$DEMO_DIR/config.toml" <<TOML
# The admin's policy for the demo (see oci-volume-hook.conf(5)).
volumes_root = "$DEMO_DIR/volumes"
state_dir = "$DEMO_DIR/run"
auto_create = true
TOML
chmod 0644 "$DEMO_DIR/config.toml"
for f in hooks.d/*.json; do
    python3 - "$f" "$BIN" "$DEMO_DIR/config.toml" > "$DEMO_DIR/hooks.d/$(basename "$f")" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
h["hook"]["path"] = sys.argv[2]
stage = h["hook"]["args"][-1]
h["hook"]["args"] = ["oci-volume-hook", "--config", sys.argv[3], stage]
print(json.dumps(h, indent=2))
PY
done

# podman_run VOLUMES CMD...: one container with the annotation oci-volume-hook/volumes=VOLUMES
podman_run() {
    local volumes=$1; shift
    local cmd=(podman --runtime "$RUNTIME" --hooks-dir "$DEMO_DIR/hooks.d" run --rm --network none
               --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
               --annotation "oci-volume-hook/volumes=$volumes" --rootfs "$DEMO_DIR/rootfs" "$@")
    if [ "$RUNTIME" = crun ]; then
        # crun refuses this machine's hybrid cgroup layout; give it a private view without cgroup2.
        unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' sh podman --cgroup-manager cgroupfs "${cmd[@]:1}"
    else
        "${cmd[@]}"
    fi
}

say "container A (podman run --rm, $RUNTIME) writes to the volume myapp at /myapp"
echo '+ podman run --rm --annotation oci-volume-hook/volumes=myapp:/myapp … sh -c "echo hello > /myapp/greeting"'
podman_run myapp:/myapp \
    sh -c 'echo hello > /myapp/greeting; echo "$(date) app A wrote a greeting" >> /myapp/app.log; echo "A: wrote hello"'

say "container B, a new container, reads it"
out=$(podman_run myapp:/myapp \
    sh -c 'echo "B: read $(cat /myapp/greeting)"; echo "$(date) app B read it" >> /myapp/app.log')
echo "$out"
[ "$out" = "B: read hello" ] || { echo "demo: FAILED: container B did not read hello" >&2; exit 1; }

say "both containers are gone; the data is on the host"
ls -l "$DEMO_DIR/volumes/myapp"
echo "greeting: $(cat "$DEMO_DIR/volumes/myapp/greeting")"

say "an operations container mounts the volume read-only (myapp:/myapp:ro): it reads the log, it cannot write"
before=$(md5sum < "$DEMO_DIR/volumes/myapp/greeting")
podman_run myapp:/myapp:ro \
    sh -c 'echo "ops: the app log says:"; cat /myapp/app.log;
           if echo tampered > /myapp/greeting; then echo "ops: WROTE (wrong)"; else echo "ops: write refused, as it should be"; fi'
after=$(md5sum < "$DEMO_DIR/volumes/myapp/greeting")
[ "$before" = "$after" ] || { echo "demo: FAILED: the read-only container changed the data" >&2; exit 1; }

say "a request the policy denies never starts a container (fail closed)"
if podman_run /etc:/hostetc sh -c 'echo STARTED' 2>&1 | tee "$DEMO_DIR/denied.log" | grep -q STARTED; then
    echo "demo: FAILED: a denied container started" >&2; exit 1
fi
echo "what the user sees:"; cat "$DEMO_DIR/denied.log"

say "seed story: OK — data in $DEMO_DIR/volumes/myapp (remove $DEMO_DIR to clean up)"
