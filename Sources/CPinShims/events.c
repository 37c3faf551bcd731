#define _GNU_SOURCE
#include "pinshims.h"
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>

int pb_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int pb_poll_ns(void *fds, unsigned long nfds, int64_t timeout_ns) {
    if (timeout_ns < 0) timeout_ns = 0;
    struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    return ppoll((struct pollfd *)fds, (nfds_t)nfds, &ts, NULL);
}
