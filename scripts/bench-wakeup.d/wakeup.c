/* CPU cost of waking another thread: two threads pass a token back and forth over two
 * eventfds, N round trips (each round trip wakes each thread once). Prints the process CPU
 * time and the wall time per round trip. Run by scripts/bench-wakeup; a measurement, not
 * a test. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int ping, pong;
static long rounds;

static double usec(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *peer(void *arg) {
    (void)arg;
    uint64_t v;
    for (long i = 0; i < rounds; i++) {
        if (read(ping, &v, 8) != 8 || write(pong, &v, 8) != 8) exit(1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 100000;
    ping = eventfd(0, 0);
    pong = eventfd(0, 0);
    pthread_t t;
    pthread_create(&t, NULL, peer, NULL);
    uint64_t v = 1;
    double c0 = usec(CLOCK_PROCESS_CPUTIME_ID), w0 = usec(CLOCK_MONOTONIC);
    for (long i = 0; i < rounds; i++) {
        if (write(ping, &v, 8) != 8 || read(pong, &v, 8) != 8) return 1;
    }
    double c1 = usec(CLOCK_PROCESS_CPUTIME_ID), w1 = usec(CLOCK_MONOTONIC);
    pthread_join(t, NULL);
    printf("per round trip (two wake-ups): cpu %.1f us, wall %.1f us\n",
           (c1 - c0) / rounds, (w1 - w0) / rounds);
    return 0;
}
