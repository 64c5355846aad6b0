/* udp_ask: sends one datagram to IP PORT and prints the reply as "reply=<text>", for
 * qemu-tests/tests/net.rs. It asks up to 10 times, 1 s apart; exits 0 on a reply, 1 when
 * none came. The client runs on the node because QEMU's user network cannot carry a UDP
 * reply back to a host client (libslirp sends a UDP hostfwd's replies to the forward's own
 * bound address, not to the sender). Built with `gcc -static` by the test. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: udp_ask IP PORT TEXT\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons((unsigned short)atoi(argv[2]));
    if (s < 0 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
        perror("udp_ask");
        return 2;
    }
    struct timeval tv = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 10; i++) {
        sendto(s, argv[3], strlen(argv[3]), 0, (struct sockaddr *)&to, sizeof to);
        char buf[2048];
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n >= 0) {
            buf[n] = 0;
            printf("reply=%s\n", buf);
            return 0;
        }
    }
    printf("reply=none\n");
    return 1;
}
