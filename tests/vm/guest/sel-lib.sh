# shellcheck shell=sh
# tests/vm/guest/sel-lib.sh - helpers of the t-selinux-* tests (sourced after lib.sh).
SEL_FILES=${SEL_FILES:-100000}          # files in the restart volume
SEL_BIG=$OVH_VOLUMES/selbig
SEL_HOOK_TIMEOUT=${SEL_HOOK_TIMEOUT:-600}
MARK=trusted.oci-volume-hook.relabel
label_of() { ls -Zd "$1" | cut -d' ' -f1; }
marker_of() { getfattr --absolute-names --only-values -n "$MARK" "$1" 2>/dev/null | tr -d '\000'; }
since() { awk -v a="$1" '{printf "%.2f", $1-a}' /proc/uptime; }

# sel_start NAME LEVEL ANNOTATION CMD: a detached container that keeps running (no wait, no delete)
sel_start() {
  ovh_setup; ovh_bundle "$@"
  : > "$OVH_BUNDLE/out"; chcon "$(ovh_label "$2")" "$OVH_BUNDLE/out"
  timeout 120 "$OVH_RUNTIME" run --detach --bundle "$OVH_BUNDLE" "$1" </dev/null >>"$OVH_BUNDLE/out" 2>&1
}
sel_stop() { "$OVH_RUNTIME" kill "$1" KILL 2>/dev/null; sleep 0.5; "$OVH_RUNTIME" delete --force "$1" >/dev/null 2>&1; }

# sel_run NAME LEVEL ANNOTATION CMD: ovh_run with the hook's timeout raised to $SEL_HOOK_TIMEOUT (a first relabel
# of 100k files under TCG can take longer than lib.sh's 120 s). Sets TOOK (seconds, create -> stopped -> deleted).
sel_run() {
  ovh_setup; ovh_bundle "$@"
  sed -i "s/\"timeout\": 120/\"timeout\": $SEL_HOOK_TIMEOUT/g" "$OVH_BUNDLE/config.json"
  OVH_OUT=$OVH_BUNDLE/out
  : > "$OVH_OUT"; chcon "$(ovh_label "$2")" "$OVH_OUT"
  _t=$(_up) _rc=0
  timeout $((SEL_HOOK_TIMEOUT + 60)) "$OVH_RUNTIME" run --detach --bundle "$OVH_BUNDLE" "$1" </dev/null >>"$OVH_OUT" 2>&1 || _rc=$?
  if [ $_rc = 0 ]; then
    _i=0
    while [ $_i -lt 600 ] && ! "$OVH_RUNTIME" state "$1" 2>/dev/null | grep -q '"status": *"stopped"'; do sleep 0.05; _i=$((_i + 1)); done
  fi
  "$OVH_RUNTIME" delete --force "$1" > "$OVH_BUNDLE/delete.log" 2>&1
  TOOK=$(since "$_t")
  sed "s/^/    $1| /" "$OVH_OUT" "$OVH_BUNDLE/delete.log" | tr -d '\000'
  [ $_rc = 0 ] || { echo "    [$1: runtime failed, rc=$_rc, ${TOOK}s]"; return 125; }
  _rc=$(sed -n 's/^OVH_RC=//p' "$OVH_OUT" | tail -1)
  echo "    [$1: container rc=${_rc:-none}, ${TOOK}s]"
  return "${_rc:-124}"
}
