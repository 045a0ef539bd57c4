// LD_PRELOAD shim for bench/gateway.sh's PROFILE=callgrind (not part of any product).
//
// libdispatch's dispatch_main() (behind Swift's async main) parks the main thread in
// sigsuspend() on a `static const` mask. Valgrind 3.19 (Debian 12) edits the mask it is
// given in place, so that write to read-only memory kills Valgrind itself ("the 'impossible'
// happened ... signal 11") before the program serves anything. This wrapper hands the
// kernel a writable copy instead; the behaviour of sigsuspend() is unchanged.
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
