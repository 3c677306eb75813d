/* bench/floor-hook.c — the cheapest possible OCI hook: read the state from
 * stdin to EOF (a runtime may block writing it otherwise) and exit 0.
 * Built with `cc -static -O2` by bench/lib.sh; what any hook costs at the
 * least (fork + exec + exit + reap), the floor for oci-volume-hook. */
#include <unistd.h>

int main(void)
{
    char buf[4096];
    while (read(0, buf, sizeof buf) > 0)
        ;
    return 0;
}
