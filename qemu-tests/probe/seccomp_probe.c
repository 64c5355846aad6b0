/* seccomp_probe: run inside a fluxnode container by qemu-tests/tests/sturdy.rs. It tries
 * what the container's seccomp profile must refuse (new user namespaces through clone and
 * unshare, io_uring, keyctl) and what ordinary programs need (a plain clone, threads,
 * sockets, getrandom), and prints one NAME=ERRNO line each (0: it worked). Raw syscalls,
 * so the C library's fallbacks do not hide what the kernel said. Built with
 * `gcc -static -pthread` by the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc, int err) {
    printf("%s=%d\n", name, rc < 0 ? err : 0);
}

/* clone(flags) as a fork: the child exits at once. */
static void try_clone(const char *name, unsigned long flags) {
    long rc = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    int err = errno;
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid((pid_t)rc, 0, 0);
    report(name, rc, err);
}

static void *nothing(void *arg) { return arg; }

int main(void) {
    try_clone("clone_newuser", CLONE_NEWUSER);
    try_clone("clone_newns", CLONE_NEWNS);
    try_clone("clone_plain", 0);

    long rc = syscall(SYS_unshare, CLONE_NEWUSER);
    report("unshare_newuser", rc, errno);

    char params[120];
    memset(params, 0, sizeof params);
    rc = syscall(425 /* io_uring_setup */, 1, params);
    report("io_uring_setup", rc, errno);
    if (rc >= 0) close((int)rc);

    rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1);
    report("keyctl", rc, errno);

    pthread_t t;
    int e = pthread_create(&t, 0, nothing, 0);
    if (e == 0) pthread_join(t, 0);
    report("thread", e ? -1 : 0, e);

    rc = socket(AF_INET, SOCK_STREAM, 0);
    report("socket_inet", rc, errno);

    char buf[16];
    rc = syscall(SYS_getrandom, buf, sizeof buf, 0);
    report("getrandom", rc, errno);
    fflush(stdout);
    return 0;
}
