# shellcheck shell=bash
# shellcheck disable=SC2016,SC2012,SC2034,SC2317 # container code in single quotes; ls of test dirs; globals and helpers used across files
# The binary run by hand in hook mode, as a runtime would: OCI state on
# stdin, nothing on stdout, one line on stderr on error, documented exit codes.

HAND_ID=0123456789abcdef-hand

# state_json ID BUNDLE STATUS PID ANNOTATION > FILE  (PID/ANNOTATION may be "")
state_json() {
    S_ID=$1 S_BUNDLE=$2 S_STATUS=$3 S_PID=$4 S_ANN=$5 S_KEY=$ANN_KEY python3 - <<'EOF'
import json, os
e = os.environ
s = {"ociVersion": "1.0.2-dev", "id": e["S_ID"], "status": e["S_STATUS"], "bundle": e["S_BUNDLE"]}
if e["S_PID"]:
    s["pid"] = int(e["S_PID"])
if e["S_ANN"]:
    s["annotations"] = {e["S_KEY"]: e["S_ANN"]}
print(json.dumps(s))
EOF
}

# run_hook STATEFILE ARGS... — the hook with the environment hooks.d gives it.
run_hook() {
    local st=$1; shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$OVH_BIN" "$@" < "$st" > "$T/h.out" 2> "$T/h.err"
    RC=$?
    log "hook $*: rc=$RC stdout=$(head -c 300 "$T/h.out") stderr=$(head -c 400 "$T/h.err" | tr '\n' '|')"
}

assert_quiet_stdout() { assert_eq "$(wc -c < "$T/h.out")" 0 "$1: bytes on stdout"; }

# One documented error line: oci-volume-hook: <id 12>: <what>: <why> (<hint>)
assert_one_error_line() { # WHAT [FIXED-STRING]...
    local what=$1; shift
    assert_eq "$(wc -l < "$T/h.err")" 1 "$what: lines on stderr"
    if grep -qE "^oci-volume-hook: ${HAND_ID:0:12}: .+: .+ \(.+\)$" "$T/h.err"; then
        pass "$what: error line has the documented shape"
    else
        fail "$what: error line not 'oci-volume-hook: ${HAND_ID:0:12}: <what>: <why> (<hint>)': $(head -c 400 "$T/h.err")"
    fi
    local w
    for w in "$@"; do
        if grep -qF -- "$w" "$T/h.err"; then pass "$what: says '$w'"; else fail "$what: stderr lacks '$w': $(head -c 400 "$T/h.err")"; fi
    done
}

# A process in its own (private) mount namespace stands in for the
# container, so that even a misbehaving hook can never mount on the host.
hand_setup() {
    require_root
    require_cmd python3 runc unshare nsenter
    [ -x "$OVH_BIN" ] || skip "hook binary $OVH_BIN is missing"
    make_bundle "$T/b" -c true
    mkfifo "$T/ready"
    unshare -m --propagation private sh -c 'echo ready > "$0"; exec sleep 600' "$T/ready" &
    PID=$!
    track pid "$PID"
    read -r _ < "$T/ready"
}

test_hand_no_annotation() {
    hand_setup
    state_json "$HAND_ID" "$T/b" creating "$PID" "" > "$T/st"
    run_hook "$T/st" --config "$CFG" prestart
    assert_eq "$RC" 0 "no annotation: exit code"
    assert_quiet_stdout "no annotation"
    assert_eq "$(wc -c < "$T/h.err")" 0 "no annotation: bytes on stderr"
}

test_hand_invalid() {
    hand_setup
    bundle_edit "$T/b" "c['annotations']['$ANN_KEY'] = 'myapp:relative'"
    # The stage comes from argv: a "stopped" status does not make it a poststop.
    state_json "$HAND_ID" "$T/b" stopped "$PID" myapp:relative > "$T/st"
    run_hook "$T/st" --config "$CFG" prestart
    assert_eq "$RC" 2 "invalid: exit code"
    assert_quiet_stdout "invalid"
    assert_eq "$(wc -l < "$T/h.err")" 1 "invalid: lines on stderr"
    assert_grep "$T/h.err" -- "oci-volume-hook: ${HAND_ID:0:12}: volume \"myapp:relative\" invalid: " "invalid: error line"
    assert_absent "$VOLROOT/myapp" "invalid: no volume"
}

test_hand_denied() {
    hand_setup
    bundle_edit "$T/b" "c['annotations']['$ANN_KEY'] = '/etc:/x'"
    state_json "$HAND_ID" "$T/b" creating "$PID" /etc:/x > "$T/st"
    run_hook "$T/st" --config "$CFG" create-runtime
    assert_eq "$RC" 3 "denied: exit code"
    assert_quiet_stdout "denied"
    assert_one_error_line denied '"/etc:/x"' "denied by policy" allowed_host_paths "$CFG"
}

test_hand_missing_bundle() {
    hand_setup
    state_json "$HAND_ID" "$T/nonexistent-bundle" creating "$PID" myapp:/myapp > "$T/st"
    run_hook "$T/st" --config "$CFG" prestart
    assert_eq "$RC" 1 "missing bundle: exit code"
    assert_quiet_stdout "missing bundle"
    assert_one_error_line "missing bundle"
    assert_not_said_file "$T/h.err" "denied by policy" "missing bundle"
}

assert_not_said_file() { # FILE PATTERN WHAT
    if grep -qF -- "$2" "$1"; then fail "$3: must not say '$2'"; else pass "$3: does not say '$2'"; fi
}

test_hand_bad_config() {
    hand_setup
    bundle_edit "$T/b" "c['annotations']['$ANN_KEY'] = 'myapp:/myapp'"
    state_json "$HAND_ID" "$T/b" creating "$PID" myapp:/myapp > "$T/st"
    run_hook "$T/st" --config "$T/no-such-config.toml" prestart
    assert_eq "$RC" 1 "missing --config file: exit code"
    assert_quiet_stdout "missing --config file"
    assert_one_error_line "missing --config file" "$T/no-such-config.toml"

    write_config 'bogus_key = 1'   # line 4
    run_hook "$T/st" --config "$CFG" prestart
    assert_eq "$RC" 1 "unknown config key: exit code"
    assert_quiet_stdout "unknown config key"
    assert_one_error_line "unknown config key" "$CFG:4" bogus_key
    assert_absent "$VOLROOT" "bad config: nothing created"
}

test_hand_poststop_alone() {
    hand_setup
    state_json "$HAND_ID" "$T/b" stopped "" myapp:/myapp > "$T/st"
    run_hook "$T/st" --config "$CFG" poststop
    assert_eq "$RC" 0 "poststop without prestart: exit code"
    assert_quiet_stdout "poststop without prestart"
    assert_eq "$(wc -c < "$T/h.err")" 0 "poststop without prestart: bytes on stderr"
    run_hook "$T/st" --config "$CFG" poststop
    assert_eq "$RC" 0 "poststop again: exit code"
    # crun's poststop state: "pid": 0, bundle gone.
    state_json "$HAND_ID" "$T/gone" stopped 0 myapp:/myapp > "$T/st0"
    run_hook "$T/st0" --config "$CFG" poststop
    assert_eq "$RC" 0 "poststop with pid 0 and no bundle: exit code"
}

# A full prestart/poststop by hand against a process in its own mount
# namespace (the "container"): the mount lands there and only there.
test_hand_prestart_poststop() {
    hand_setup
    bundle_edit "$T/b" "c['annotations']['$ANN_KEY'] = 'myapp:/myapp'"
    local pid=$PID
    local before=$T/.host-before
    snapshot_host "$before"
    state_json "$HAND_ID" "$T/b" creating "$pid" myapp:/myapp > "$T/st"
    run_hook "$T/st" --config "$CFG" prestart
    assert_eq "$RC" 0 "prestart: exit code"
    assert_quiet_stdout "prestart"
    assert_eq "$(wc -c < "$T/h.err")" 0 "prestart (log_level debug): bytes on stderr"
    assert_exists "$STATE/containers/$HAND_ID.json" "prestart: record"
    if awk '{print $5}' "/proc/$pid/mountinfo" | grep -qxF "$T/b/rootfs/myapp"; then
        pass "volume mounted at rootfs/myapp in the container's namespace"
    else
        fail "no mount at $T/b/rootfs/myapp in the container's namespace"
    fi
    nsenter -t "$pid" -m sh -c 'echo through-mount > "$0/myapp/f"' "$T/b/rootfs"
    assert_file_content "$VOLROOT/myapp/f" through-mount "the mount is the volume"
    assert_host_unchanged "$before" "prestart by hand"

    state_json "$HAND_ID" "$T/b" stopped "" myapp:/myapp > "$T/st2"
    run_hook "$T/st2" --config "$CFG" poststop
    assert_eq "$RC" 0 "poststop: exit code"
    assert_quiet_stdout "poststop"
    assert_absent "$STATE/containers/$HAND_ID.json" "poststop: record removed"
    run_hook "$T/st2" --config "$CFG" poststop
    assert_eq "$RC" 0 "second poststop: exit code"
    assert_eq "$(wc -c < "$T/h.err")" 0 "second poststop: bytes on stderr"
}

E2E_TESTS+=(hand_no_annotation hand_invalid hand_denied hand_missing_bundle hand_bad_config
            hand_poststop_alone hand_prestart_poststop)

# The error line also goes to syslog (identifier oci-volume-hook). /dev/log
# is replaced by a listening socket in a private mount namespace only.
test_hand_syslog() {
    hand_setup
    bundle_edit "$T/b" "c['annotations']['$ANN_KEY'] = '/etc:/x'"
    state_json "$HAND_ID" "$T/b" creating "$PID" /etc:/x > "$T/st"
    unshare -m --propagation private sh -c '
        mount -t tmpfs -o mode=755 ovh-e2e-dev /dev || exit 99
        exec python3 - "$@"' sh "$T/syslog.txt" "$T/st" "$T/h.out" "$T/h.err" \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$OVH_BIN" --config "$CFG" prestart <<'PY'
import socket, subprocess, sys
out, st, hout, herr, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
rc = subprocess.call(cmd, stdin=open(st), stdout=open(hout, "w"), stderr=open(herr, "w"))
s.settimeout(1.0)
msgs = []
try:
    while True:
        msgs.append(s.recv(65536).decode(errors="replace"))
except socket.timeout:
    pass
open(out, "w").write("".join(m.rstrip("\n") + "\n" for m in msgs))
sys.exit(rc)
PY
    RC=$?
    log "syslog: rc=$RC messages: $(tr '\n' '|' < "$T/syslog.txt" 2>/dev/null | head -c 600)"
    assert_eq "$RC" 3 "denied with a syslog listener: exit code"
    assert_one_error_line "syslog run" "denied by policy"
    assert_grep "$T/syslog.txt" -- "oci-volume-hook" "syslog identifier"
    assert_grep "$T/syslog.txt" -- 'volume "/etc:/x" denied by policy' "syslog has the error line"
}

# Every refusal is one line of the documented shape
#   oci-volume-hook: <id 12>: <what failed>: <why> (<hint>)
# and a denial is the only kind that says "denied by policy".
test_hand_error_line_shapes() {
    hand_setup
    mkdir -p "$T/export"
    ln -s /etc "$T/export/link"
    write_config "allowed_host_paths = [\"$T/export\"]"
    local -a specs=(myapp myapp:relative myapp:/x:bogus 'myapp:/x:ro,rw' myapp:/proc/x myapp:/
                    'a:/x;b:/x' -x:/y myapp:/x/../etc "$(printf 'n%.0s' $(seq 129)):/y"
                    /etc:/x "$T/export/link:/x" "$T/nope:/x")
    local spec code bad=0
    for spec in "${specs[@]}"; do
        SPEC=$spec bundle_edit "$T/b" "import os; c['annotations']['$ANN_KEY'] = os.environ['SPEC']"
        state_json "$HAND_ID" "$T/b" creating "$PID" "$spec" > "$T/st"
        run_hook "$T/st" --config "$CFG" prestart
        code=$RC
        case $code in 2|3) ;; *) fail "\"$spec\": exit code $code, want 2 or 3"; bad=1; continue ;; esac
        if [ "$(wc -l < "$T/h.err")" != 1 ] || [ -s "$T/h.out" ]; then
            fail "\"$spec\": want exactly one stderr line and no stdout"; bad=1
        fi
        if ! grep -qE "^oci-volume-hook: ${HAND_ID:0:12}: .+: .+ \(.+\)$" "$T/h.err"; then
            fail "\"$spec\" (exit $code): no '(<hint>)' as documented: $(head -c 300 "$T/h.err")"
            bad=1
        fi
        if [ "$code" = 3 ] && ! grep -qF "denied by policy" "$T/h.err"; then fail "\"$spec\": exit 3 without 'denied by policy'"; bad=1; fi
        if [ "$code" = 2 ] && grep -qF "denied by policy" "$T/h.err"; then fail "\"$spec\": exit 2 says 'denied by policy'"; bad=1; fi
    done
    [ "$bad" = 0 ] && pass "all ${#specs[@]} refusals are documented one-line errors"
}

E2E_TESTS+=(hand_syslog hand_error_line_shapes)
