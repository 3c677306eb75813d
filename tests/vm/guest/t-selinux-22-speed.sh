#!/bin/sh
# For scale, under enforcing (TCG, so slow in absolute terms): a full relabel of the t-selinux-20 volume by the
# hook's walk vs chcon -R with a full context vs restorecon -R -F -T0, one after the other, each rewriting every label.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sel-lib.sh"
check "the volume of t-selinux-20 is there" test -e "$SEL_BIG/d0/f0"
t=$(_up); "$OVH_HOOK" --log-level warn relabel --always --context "$(ovh_label c5,c6)" "$SEL_BIG" | sed 's/^/    hook: /'; hook=$(since "$t")
t=$(_up); chcon -R "$(ovh_label c7,c8)" "$SEL_BIG"; chcon=$(since "$t")
t=$(_up); restorecon -R -F -T0 "$SEL_BIG"; rest=$(since "$t")
echo "    $SEL_FILES files: hook walk ${hook}s, chcon -R ${chcon}s, restorecon -R -F -T0 ${rest}s (-> $(label_of "$SEL_BIG/d0/f0"))"
check "hook walk faster than chcon -R" awk -v a="$hook" -v b="$chcon" 'BEGIN{exit !(a < b)}'
rm -rf "$SEL_BIG"
vm_done
