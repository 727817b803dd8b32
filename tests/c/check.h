/* Minimal test helpers shared by the C tests (they compile as C and as C++). */
#ifndef NB_TEST_CHECK_H
#define NB_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "natsbridge.h"

static int g_failures = 0;

/* This thread's last error message (a static buffer: use on the main thread only). */
static const char *last_error(void) {
    static char buf[2048];
    size_t needed = 0;
    nb_last_error_message(buf, sizeof buf, &needed);
    return buf;
}

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            g_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_STATUS(expr, want)                                                         \
    do {                                                                                 \
        nb_status got_ = (expr);                                                         \
        if (got_ != (want)) {                                                            \
            g_failures++;                                                                \
            fprintf(stderr, "%s:%d: %s gave %s (%d), want %s; last error: %s\n",         \
                    __FILE__, __LINE__, #expr, nb_status_code_name(got_), (int)got_,     \
                    nb_status_code_name(want), last_error());                            \
        }                                                                                \
    } while (0)

/* A step the rest of a test depends on: stop the program if it fails. */
#define REQUIRE_OK(expr)                                                                 \
    do {                                                                                 \
        nb_status got_ = (expr);                                                         \
        if (got_ != NB_OK) {                                                             \
            fprintf(stderr, "%s:%d: %s gave %s: %s\n", __FILE__, __LINE__, #expr,        \
                    nb_status_code_name(got_), last_error());                            \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static int g_passed = 0, g_failed = 0;

/* Runs one test function and prints a TAP-like line for it. */
#define RUN(fn, ...)                                                \
    do {                                                            \
        int before_ = g_failures;                                   \
        fn(__VA_ARGS__);                                            \
        if (g_failures == before_) {                                \
            g_passed++;                                             \
            printf("ok - %s\n", #fn);                               \
        } else {                                                    \
            g_failed++;                                             \
            printf("not ok - %s\n", #fn);                           \
        }                                                           \
        fflush(stdout);                                             \
    } while (0)

static int finish(const char *program) {
    printf("%s: %d passed, %d failed\n", program, g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int streq(const char *a, const char *b) {
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* A config from the environment (NATS_URL, FILESERVER_URL), with quick download retries. */
static nb_config *test_config(void) {
    nb_config *cfg = NULL;
    REQUIRE_OK(nb_config_from_env(&cfg));
    REQUIRE_OK(nb_config_set_download_retry(cfg, 3, 50, 500));
    return cfg;
}

#endif
