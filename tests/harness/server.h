#pragma once
/*
 * tests/harness/server.h - runs a server binary (ringhub, rt_server) for an integration test:
 * start it on loopback with a free port, forward its log to the test's stderr (so ctest shows
 * it on failure, and a full pipe never blocks the server), connect to it, stop it and collect
 * its exit status. One test process may run several servers.
 */
#include <stdbool.h>
#include <sys/types.h>

struct rh_test_server {
    pid_t pid;
    int port;
    int log_fd;
    void *log_thread; /* pthread_t, opaque here */
};

/* Starts @argv[0] with @argv[1..] and "--listen 127.0.0.1 --port 0", and waits (10 s at most)
 * for its "listening on 127.0.0.1:PORT" log line. Returns 0, or -1 if it exited or never
 * listened (its log says why). */
int rh_test_server_start(struct rh_test_server *srv, char *const argv[]);
/* Sends SIGTERM and waits up to @wait_ms for the exit; after that it is killed. Returns the
 * exit status, or -1 when it had to be killed or did not exit normally. */
int rh_test_server_stop(struct rh_test_server *srv, int wait_ms);
/* A blocking TCP connection to the server with TCP_NODELAY, or -1. */
int rh_test_dial(int port);
