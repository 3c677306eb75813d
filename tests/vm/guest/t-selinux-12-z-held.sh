#!/bin/sh
# Security issue 12, finding 9: z on a volume that a running container holds with Z.
# A c1,c2 container holds a volume with Z (private label s0:c1,c2) and keeps running; a c3,c4 container asks for
# the same volume with z. Relabelling it shared (s0) would hand the holder's private files to every container, so
# the hook must refuse, naming the holder, and leave every label as it was.
# Written before the fix: today the second start relabels the volume to s0 and runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sel-lib.sh"
ovh_config 'log_level = "debug"'

V=$OVH_VOLUMES/selheld
rm -rf "$V"; mkdir -p "$V/sub"; echo held-secret > "$V/data.txt"; echo deep > "$V/sub/deep.txt"
restorecon -R "$OVH_VOLUMES"

sel_start sel-zheld c1,c2 "selheld:/data:Z" 'echo from-holder > /data/holder.txt; sleep 120'
check "holder c1,c2 started with Z" sh -c "$OVH_RUNTIME state sel-zheld | grep -q running"
_i=0; while [ $_i -lt 100 ] && [ ! -e "$V/holder.txt" ]; do sleep 0.1; _i=$((_i + 1)); done
check "holder wrote its file" test -e "$V/holder.txt"
private=$(ovh_label c1,c2)
check "holder: volume labelled private s0:c1,c2" test "$(label_of "$V")" = "$private"
before=$(for f in "$V" "$V/data.txt" "$V/sub" "$V/sub/deep.txt" "$V/holder.txt"; do label_of "$f"; done)

ovh_run sel-zsteal c3,c4 "selheld:/data:z" 'cat /data/data.txt; echo STOLEN'; rc=$?
check "z on a volume held with Z by a running container: refused (rc=$rc)" test "$rc" = 125
check_out "the refusal names the holder" 'sel-zheld'
check_out "the refusal says why (private label / Z)" '(private|Z)'
check_not "the c3,c4 container did not run" grep -q '^STOLEN$' "$OVH_OUT"
after=$(for f in "$V" "$V/data.txt" "$V/sub" "$V/sub/deep.txt" "$V/holder.txt"; do label_of "$f"; done)
check "every label of the held volume is unchanged" test "$before" = "$after"
check "the holder's file keeps its private level" test "$(label_of "$V/holder.txt")" = "$private"
check_not "nothing relabelled shared (s0 without categories)" sh -c "ls -Z '$V' '$V/sub' | grep -q 'container_file_t:s0 '"
check "the holder still runs" sh -c "$OVH_RUNTIME state sel-zheld | grep -q running"
sel_stop sel-zheld
vm_done
