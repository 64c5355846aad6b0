/* net_bench: the network benchmark's two ends, for scripts/bench-net.sh (run inside the
 * image, static, no libc there).
 *   net_bench serve PORT            accept forever; a connection that starts with 'c'
 *                                   gets one byte back and is closed (short connections),
 *                                   any other has all it sends read and dropped (bulk)
 *   net_bench bulk IP PORT SECONDS  send as fast as possible; prints "bulk MB/s N"
 *   net_bench conns IP PORT SECONDS connect, read the byte, close, again; prints
 *                                   "conns per_s N"
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *client(void *arg) {
    int c = (int)(long)arg;
    char buf[65536];
    ssize_t n = read(c, buf, sizeof buf);
    if (n == 1 && buf[0] == 'c') {
        (void)!write(c, "x", 1);
        close(c);
        return 0;
    }
    while (n > 0) n = read(c, buf, sizeof buf);
    close(c);
    return 0;
}

static int serve(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 512) < 0) {
        perror("net_bench serve");
        return 1;
    }
    printf("net_bench: serving on %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        pthread_t t;
        pthread_create(&t, 0, client, (void *)(long)c);
        pthread_detach(t);
    }
}

static int dial(const char *ip, int port) {
    int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
        close(c);
        return -1;
    }
    return c;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "serve")) return serve(atoi(argv[2]));
    if (argc != 5) {
        fprintf(stderr, "usage: net_bench serve PORT | bulk|conns IP PORT SECONDS\n");
        return 2;
    }
    const char *ip = argv[2];
    int port = atoi(argv[3]);
    double secs = atof(argv[4]), start = now();
    if (!strcmp(argv[1], "bulk")) {
        static char buf[65536];
        int c = dial(ip, port);
        if (c < 0) { perror("connect"); return 1; }
        double sent = 0;
        while (now() - start < secs) {
            ssize_t n = write(c, buf, sizeof buf);
            if (n <= 0) { perror("write"); return 1; }
            sent += n;
        }
        printf("bulk MB/s %.1f\n", sent / (now() - start) / 1e6);
        close(c);
        return 0;
    }
    long n = 0;
    while (now() - start < secs) {
        int c = dial(ip, port);
        if (c < 0) { perror("connect"); return 1; }
        char b = 'c';
        if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1) { fprintf(stderr, "no byte\n"); return 1; }
        close(c);
        n++;
    }
    printf("conns per_s %.1f\n", n / (now() - start));
    return 0;
}
