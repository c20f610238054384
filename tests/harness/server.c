/* tests/harness/server.c - see server.h. */
#include "tests/harness/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARGS_MAX  64
#define LISTENING "listening on 127.0.0.1:"

struct log_forward {
    FILE *in;
    _Atomic int port;
    pthread_t thread;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *forward_log(void *arg)
{
    struct log_forward *fw = arg;
    char line[2048];
    while (fgets(line, sizeof(line), fw->in)) {
        fputs(line, stderr);
        char *at = strstr(line, LISTENING);
        if (at) atomic_store(&fw->port, atoi(at + strlen(LISTENING)));
    }
    fclose(fw->in);
    return NULL;
}

int rh_test_server_start(struct rh_test_server *srv, char *const argv[])
{
    char *args[ARGS_MAX + 6];
    int n = 0;
    for (; argv[n] && n < ARGS_MAX; n++)
        args[n] = argv[n];
    args[n++] = "--listen";
    args[n++] = "127.0.0.1";
    args[n++] = "--port";
    args[n++] = "0";
    args[n] = NULL;

    int pipefd[2];
    if (pipe(pipefd) == -1) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(args[0], args);
        perror("execv");
        _exit(127);
    }
    close(pipefd[1]);
    struct log_forward *fw = calloc(1, sizeof(*fw));
    fw->in = fdopen(pipefd[0], "r");
    pthread_create(&fw->thread, NULL, forward_log, fw);
    srv->pid = pid;
    srv->log_thread = fw;

    int64_t deadline = now_ms() + 10000;
    while (!atomic_load(&fw->port) && now_ms() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            srv->pid = -1;
            return -1;
        }
        usleep(5000);
    }
    srv->port = atomic_load(&fw->port);
    return srv->port ? 0 : -1;
}

int rh_test_server_stop(struct rh_test_server *srv, int wait_ms)
{
    int status = 0;
    bool killed = false;
    if (srv->pid > 0) {
        kill(srv->pid, SIGTERM);
        int64_t deadline = now_ms() + wait_ms;
        while (waitpid(srv->pid, &status, WNOHANG) == 0) {
            if (now_ms() >= deadline) {
                kill(srv->pid, SIGKILL);
                waitpid(srv->pid, &status, 0);
                killed = true;
                break;
            }
            usleep(5000);
        }
    }
    struct log_forward *fw = srv->log_thread;
    if (fw) {
        pthread_join(fw->thread, NULL);
        free(fw);
        srv->log_thread = NULL;
    }
    if (killed || srv->pid <= 0 || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

int rh_test_dial(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
        close(fd);
        return -1;
    }
    return fd;
}
