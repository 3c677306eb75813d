#!/bin/sh
# Set-up for t-selinux-21: a volume with $SEL_FILES files (default 100000), 1000 per directory, labelled
# var_lib_t like any new directory under /var/lib. Its own test file: under TCG this alone takes minutes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sel-lib.sh"
rm -rf "$SEL_BIG"; mkdir -p "$SEL_BIG"; echo big-data > "$SEL_BIG/data.txt"
t0=$(_up)
python3 - "$SEL_BIG" "$SEL_FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    os.close(os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
PY
echo "    $SEL_FILES files created in $(since "$t0")s"
check "$SEL_FILES files in the volume" test "$(find "$SEL_BIG" -type f | wc -l)" = $((SEL_FILES + 1))
check "labelled var_lib_t (not for containers)" sh -c "ls -Z '$SEL_BIG/d0/f0' | grep -q var_lib_t"
vm_done
