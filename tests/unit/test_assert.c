/* tests/unit/test_assert.c - a failed RH_ASSERT logs file, line and condition, then aborts;
 * a holding one costs nothing visible. Run in a child so the abort can be observed. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/assert.h"
#include "tests/harness/check.h"

int main(void)
{
    int answer = 42;
    RH_ASSERT(answer == 42);
    RH_DEBUG_ASSERT(answer == 42);

    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        signal(SIGABRT, SIG_DFL);
        RH_ASSERT(answer == 41);
        _exit(0);
    }
    close(pipefd[1]);
    char text[512] = {0};
    size_t have = 0;
    ssize_t n;
    while (have < sizeof(text) - 1 &&
           (n = read(pipefd[0], text + have, sizeof(text) - 1 - have)) > 0)
        have += (size_t)n;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WIFSIGNALED(status) ? WTERMSIG(status) : 0, SIGABRT);
    CHECK(strstr(text, "test_assert.c:") != NULL);
    CHECK(strstr(text, "answer == 41") != NULL);
    return rh_check_finish();
}
