/*
 * tests/integration/test_no_uring.c - ringhub where io_uring cannot be set up: a seccomp
 * filter makes io_uring_setup fail as a container runtime's profile would (ENOSYS) or as the
 * kernel.io_uring_disabled sysctl does (EPERM). ringhub must exit non-zero at start-up with a
 * line that names the cause and the fix, not crash or hang.
 * Usage: test_no_uring RINGHUB
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness/check.h"

static int block_io_uring_setup(int err)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) return -errno;
    return 0;
}

/* Runs ringhub with io_uring_setup failing with @err; returns its exit status and output. */
static int run_blocked(const char *ringhub, int err, char *out, size_t out_len)
{
    int pipefd[2];
    if (pipe(pipefd) == -1) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        if (block_io_uring_setup(err) != 0) _exit(100);
        alarm(20); /* a hang shows as SIGALRM */
        execl(ringhub, ringhub, "--listen", "127.0.0.1", "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t have = 0;
    ssize_t n;
    while (have < out_len - 1 && (n = read(pipefd[0], out + have, out_len - 1 - have)) > 0)
        have += (size_t)n;
    out[have] = '\0';
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

int main(int argc, char **argv)
{
#if !defined(__x86_64__)
    rh_check_skip("the seccomp filter here is written for x86-64");
#endif
    if (argc != 2) {
        fprintf(stderr, "usage: %s RINGHUB\n", argv[0]);
        return 2;
    }
    char out[4096];

    int status = run_blocked(argv[1], EPERM, out, sizeof(out));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 100) rh_check_skip("seccomp is not available");
    fputs(out, stderr);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
    CHECK(strstr(out, "cannot use io_uring") != NULL);
    CHECK(strstr(out, "kernel.io_uring_disabled") != NULL);

    status = run_blocked(argv[1], ENOSYS, out, sizeof(out));
    fputs(out, stderr);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
    CHECK(strstr(out, "seccomp") != NULL);
    return rh_check_finish();
}
