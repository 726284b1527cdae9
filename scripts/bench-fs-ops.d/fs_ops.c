/* CPU time of the file-system operations one recording makes, one kind at a time, each
 * repeated N times in DIR: mkdir, create + write (recording.json, a WAV header), an atomic
 * replace (temporary file + rename), an in-place rewrite, fdatasync of a file with unsynced
 * data. Process CPU time (CLOCK_PROCESS_CPUTIME_ID), not wall time. Run by
 * scripts/bench-fs-ops; a measurement, not a test. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double cpu_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char data[2048];

/* Creates DIR/d<i>/<name> and writes `len` bytes to it. */
static void create(const char *base, int i, const char *name, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/d%d/%s", base, i, name);
    int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) exit(1);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: fs_ops DIR N\n");
        return 2;
    }
    const char *base = argv[1];
    int n = atoi(argv[2]);
    char p[512], q[512];
    memset(data, 'x', sizeof data);
    double t[7];
    t[0] = cpu_us();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/d%d", base, i);
        if (mkdir(p, 0755) != 0) return 1;
    }
    t[1] = cpu_us();
    for (int i = 0; i < n; i++) create(base, i, "recording.json", 2000);
    t[2] = cpu_us();
    for (int i = 0; i < n; i++) create(base, i, "a.wav", 44);
    t[3] = cpu_us();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/d%d/recording.json.tmp", base, i);
        snprintf(q, sizeof q, "%s/d%d/recording.json", base, i);
        int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || write(fd, data, 2000) != 2000 || rename(p, q) != 0) return 1;
        close(fd);
    }
    t[4] = cpu_us();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/d%d/recording.json", base, i);
        int fd = open(p, O_WRONLY);
        if (fd < 0 || pwrite(fd, data, 2000, 0) != 2000) return 1;
        close(fd);
    }
    t[5] = cpu_us();
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/d%d/a.wav", base, i);
        int fd = open(p, O_WRONLY);
        if (fd < 0 || fdatasync(fd) != 0) return 1;
        close(fd);
    }
    t[6] = cpu_us();
    printf("us per op: mkdir %.1f create+write2k %.1f create+write44 %.1f tmp+rename %.1f "
           "inplace-rewrite %.1f fdatasync %.1f\n",
           (t[1] - t[0]) / n, (t[2] - t[1]) / n, (t[3] - t[2]) / n, (t[4] - t[3]) / n,
           (t[5] - t[4]) / n, (t[6] - t[5]) / n);
    return 0;
}
