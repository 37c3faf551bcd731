#define _GNU_SOURCE
#include "pinshims.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/socket.h>
#include <errno.h>
#include <string.h>

int pb_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int pb_poll_ns(void *fds, unsigned long nfds, int64_t timeout_ns) {
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    return ppoll((struct pollfd *)fds, (nfds_t)nfds, &ts, NULL);
}

int pb_stamp_arrivals(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0 ? 0 : errno;
}

long pb_recv_stamped(int fd, void *buf, size_t len, int flags, uint64_t *arrival_ns) {
    union { char b[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.b;
    m.msg_controllen = sizeof control.b;
    *arrival_ns = 0;
    ssize_t n = recvmsg(fd, &m, flags);
    if (n <= 0) return (long)n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
        if (c->cmsg_len < CMSG_LEN(sizeof(struct timespec))) continue;
        struct timespec at, real, mono;
        memcpy(&at, CMSG_DATA(c), sizeof at);
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        int64_t at_ns = (int64_t)at.tv_sec * 1000000000 + at.tv_nsec;
        int64_t real_ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
        int64_t mono_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
        int64_t age = real_ns - at_ns;
        // A stamp from the future (the wall clock stepped back) or from before boot counts as now.
        if (at_ns <= 0 || age < 0 || age > mono_ns) { age = 0; }
        *arrival_ns = (uint64_t)(mono_ns - age);
        break;
    }
    return (long)n;
}

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

int pb_futex_wait_until(void *word, uint32_t expected, uint64_t deadline_ns) {
    struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000u), .tv_nsec = (long)(deadline_ns % 1000000000u) };
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT's timeout is relative).
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, &ts, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    return r == 0 ? 0 : errno;
}

void pb_futex_wake_one(void *word) {
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}
