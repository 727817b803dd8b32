/* The golden vectors (tests/vectors/NAME.json) read from C: nb_smartreceive decodes each message
 * as the vector's "expect" says (every header field through its accessor, the metadata, and
 * per payload dataname, type, transport, size, the sha256 of its bytes and the text value), or
 * fails with its "expect_error" code. No connection is made.
 *
 * C has no JSON parser: tests/c/vectors_flat.py writes each message and a flat index of what
 * to expect into the folder named by NB_VECTORS_DIR (tests/c/run.sh does it). Prints one
 * "ok - vector NAME" line per vector. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natsbridge.h"
#include "sha256.h"
#include "text_io.h"

/* Helpers in the manner of check.h (which brings network helpers this program does not use). */
static int g_failures = 0, g_passed = 0, g_failed = 0;

static const char *last_error(void) {
    static char buf[2048];
    nb_last_error_message(buf, sizeof buf, NULL);
    return buf;
}

static int streq(const char *a, const char *b) {
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            g_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define REQUIRE_OK(expr)                                                                 \
    do {                                                                                 \
        nb_status got_ = (expr);                                                         \
        if (got_ != NB_OK) {                                                             \
            fprintf(stderr, "%s:%d: %s gave %s: %s\n", __FILE__, __LINE__, #expr,        \
                    nb_status_code_name(got_), last_error());                            \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static char *g_dir = NULL;


static const char *header_field(const nb_envelope *env, const char *key) {
    if (strcmp(key, "correlation_id") == 0) return nb_envelope_correlation_id(env);
    if (strcmp(key, "msg_id") == 0) return nb_envelope_msg_id(env);
    if (strcmp(key, "timestamp") == 0) return nb_envelope_timestamp(env);
    if (strcmp(key, "send_to") == 0) return nb_envelope_send_to(env);
    if (strcmp(key, "msg_purpose") == 0) return nb_envelope_msg_purpose(env);
    if (strcmp(key, "sender_name") == 0) return nb_envelope_sender_name(env);
    if (strcmp(key, "sender_id") == 0) return nb_envelope_sender_id(env);
    if (strcmp(key, "receiver_name") == 0) return nb_envelope_receiver_name(env);
    if (strcmp(key, "receiver_id") == 0) return nb_envelope_receiver_id(env);
    if (strcmp(key, "reply_to") == 0) return nb_envelope_reply_to(env);
    if (strcmp(key, "reply_to_msg_id") == 0) return nb_envelope_reply_to_msg_id(env);
    if (strcmp(key, "broker_url") == 0) return nb_envelope_broker_url(env);
    return NULL;
}

/* The state of the vector being read: its message decoded once at its first expectation. */
typedef struct {
    char name[256];
    nb_status status;
    nb_envelope *env;
    size_t next_payload;
} vector;

static void decode(vector *v, const char *msgfile, nb_config *cfg) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, msgfile);
    size_t len = 0;
    uint8_t *msg = nb_read_file(path, &len);
    CHECK(msg != NULL);
    v->env = NULL;
    v->status = msg ? nb_smartreceive(cfg, msg, len, &v->env) : NB_ERR_INTERNAL;
    v->next_payload = 0;
    free(msg);
}

/* One line of a record (tokens already split) against the decoded vector. */
static void expect(vector *v, char **tok, int n) {
    const nb_envelope *env = v->env;
    if (strcmp(tok[0], "error") == 0 && n == 2) {
        if (v->status == NB_OK) {
            g_failures++;
            fprintf(stderr, "%s: decoded, but %s was expected\n", v->name, tok[1]);
        } else if (strcmp(nb_status_code_name(v->status), tok[1]) != 0) {
            g_failures++;
            fprintf(stderr, "%s: failed with %s (%s), want %s\n", v->name,
                    nb_status_code_name(v->status), last_error(), tok[1]);
        }
        return;
    }
    if (env == NULL) {
        g_failures++;
        fprintf(stderr, "%s: nb_smartreceive gave %s: %s\n", v->name,
                nb_status_code_name(v->status), last_error());
        return;
    }
    if (strcmp(tok[0], "field") == 0 && n == 3) {
        nb_unhex(tok[2]);
        const char *got = header_field(env, tok[1]);
        if (!streq(got, tok[2])) {
            g_failures++;
            fprintf(stderr, "%s: %s is \"%s\", want \"%s\"\n", v->name, tok[1],
                    got ? got : "(no such field)", tok[2]);
        }
    } else if (strcmp(tok[0], "metadata") == 0 && n == 2) {
        nb_unhex(tok[1]);
        const char *got = nb_envelope_metadata_json(env);
        if (!streq(got, tok[1])) {
            g_failures++;
            fprintf(stderr, "%s: metadata is %s, want %s\n", v->name, got ? got : "NULL", tok[1]);
        }
    } else if (strcmp(tok[0], "payloads") == 0 && n == 2) {
        size_t want = (size_t)strtoul(tok[1], NULL, 10);
        if (nb_envelope_payload_count(env) != want) {
            g_failures++;
            fprintf(stderr, "%s: %zu payloads, want %zu\n", v->name,
                    nb_envelope_payload_count(env), want);
        }
    } else if (strcmp(tok[0], "payload") == 0 && n == 7) {
        size_t i = v->next_payload++;
        if (i >= nb_envelope_payload_count(env)) return; /* counted by "payloads" */
        nb_unhex(tok[1]);
        const char *what = tok[1];
        CHECK(streq(nb_envelope_payload_dataname(env, i), tok[1]));
        CHECK(streq(nb_envelope_payload_type(env, i), tok[2]));
        CHECK(streq(nb_envelope_payload_transport(env, i), tok[3]));
        CHECK(nb_envelope_payload_is_link(env, i) == (strcmp(tok[3], "link") == 0));
        CHECK(nb_envelope_payload_size(env, i) == (uint64_t)strtoull(tok[4], NULL, 10));
        const uint8_t *data = NULL;
        size_t len = 0;
        nb_status st = nb_envelope_payload_bytes(env, i, &data, &len);
        if (st != NB_OK) {
            g_failures++;
            fprintf(stderr, "%s: payload '%s': nb_envelope_payload_bytes gave %s: %s\n", v->name,
                    what, nb_status_code_name(st), last_error());
        }
        CHECK(len == (size_t)strtoull(tok[4], NULL, 10));
        char hex[65];
        nb_sha256_hex(data, len, hex);
        if (strcmp(hex, tok[5]) != 0) {
            g_failures++;
            fprintf(stderr, "%s: payload '%s' has sha256 %s, want %s\n", v->name, what, hex, tok[5]);
        }
        if (strcmp(tok[6], "-") != 0) {
            long vlen = nb_unhex(tok[6]);
            CHECK(vlen >= 0 && (size_t)vlen == len && (len == 0 || memcmp(data, tok[6], len) == 0));
        }
    } else {
        g_failures++;
        fprintf(stderr, "%s: cannot read the index line starting with '%s'\n", v->name, tok[0]);
    }
}

int main(void) {
    g_dir = getenv("NB_VECTORS_DIR");
    if (g_dir == NULL || g_dir[0] == '\0') {
        fprintf(stderr, "NB_VECTORS_DIR is not set: run `python3 tests/c/vectors_flat.py DIR` and "
                        "set NB_VECTORS_DIR=DIR (tests/c/run.sh does both)\n");
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/index.txt", g_dir);
    FILE *index = fopen(path, "r");
    if (index == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    nb_config *cfg = NULL;
    REQUIRE_OK(nb_config_new(&cfg));
    REQUIRE_OK(nb_config_set_fileserver_url(cfg, NULL)); /* the vectors are all direct */

    char *line = NULL;
    size_t cap = 0;
    vector v;
    memset(&v, 0, sizeof v);
    int in_vector = 0, before = 0;
    while (getline(&line, &cap, index) != -1) {
        char *tok[8];
        int n = nb_split(line, tok, 8);
        if (n == 0) continue;
        if (strcmp(tok[0], "vector") == 0 && n == 3 && !in_vector) {
            memset(&v, 0, sizeof v);
            snprintf(v.name, sizeof v.name, "%s", tok[1]);
            in_vector = 1;
            before = g_failures;
            decode(&v, tok[2], cfg);
        } else if (strcmp(tok[0], "end") == 0 && in_vector) {
            if (g_failures == before) {
                g_passed++;
                printf("ok - vector %s\n", v.name);
            } else {
                g_failed++;
                printf("not ok - vector %s\n", v.name);
            }
            fflush(stdout);
            nb_envelope_free(v.env);
            v.env = NULL;
            in_vector = 0;
        } else if (in_vector) {
            expect(&v, tok, n);
        } else {
            fprintf(stderr, "%s: unexpected line starting with '%s'\n", path, tok[0]);
            g_failed++;
        }
    }
    free(line);
    fclose(index);
    nb_config_free(cfg);
    if (in_vector) {
        fprintf(stderr, "%s: the last record has no end\n", path);
        g_failed++;
    }
    if (g_passed + g_failed < 15) {
        fprintf(stderr, "expected the golden vectors (at least 15), read %d\n", g_passed + g_failed);
        g_failed++;
    }
    printf("vectors: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
