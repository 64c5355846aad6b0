/* udp_echo: a UDP echo server on port 53 for qemu-tests/tests/net.rs (busybox in the test
 * image has no UDP server). Each datagram is sent back to its sender, and the sender's
 * address printed, one line each. Built with `gcc -static` by the test. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me;
    memset(&me, 0, sizeof me);
    me.sin_family = AF_INET;
    me.sin_port = htons(53);
    if (s < 0 || bind(s, (struct sockaddr *)&me, sizeof me) < 0) {
        perror("udp_echo");
        return 1;
    }
    printf("udp_echo: listening on 53\n");
    fflush(stdout);
    for (;;) {
        char buf[2048];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0) continue;
        sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
        printf("udp_echo: %zd bytes from %s\n", n, inet_ntoa(from.sin_addr));
        fflush(stdout);
    }
}
