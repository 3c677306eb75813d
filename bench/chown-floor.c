/* bench/chown-floor.c — the floor for option U's walk: fchownat() over a
 * tree listed beforehand (no directory reading, no stat), split among
 * THREADS threads. bench/owner.sh builds it with `cc -O2 -pthread`.
 *
 *     chown-floor UID GID THREADS LIST    (LIST: one path per line, from find)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char **paths;
static size_t npaths;
static uid_t uid;
static gid_t gid;
static int nthreads;

static void *work(void *arg)
{
    size_t t = (size_t)arg;
    for (size_t i = t; i < npaths; i += (size_t)nthreads)
        if (fchownat(AT_FDCWD, paths[i], uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            perror(paths[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: chown-floor UID GID THREADS LIST\n");
        return 2;
    }
    uid = (uid_t)atol(argv[1]);
    gid = (gid_t)atol(argv[2]);
    nthreads = atoi(argv[3]);
    if (nthreads < 1 || nthreads > 64)
        nthreads = 1;
    FILE *f = fopen(argv[4], "r");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    size_t cap = 1024, len = 0;
    char *line = NULL;
    ssize_t n;
    paths = malloc(cap * sizeof *paths);
    while ((n = getline(&line, &len, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = 0;
        if (npaths == cap)
            paths = realloc(paths, (cap *= 2) * sizeof *paths);
        paths[npaths++] = strdup(line);
    }
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++)
        pthread_create(&th[t], NULL, work, (void *)(size_t)t);
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    return 0;
}
