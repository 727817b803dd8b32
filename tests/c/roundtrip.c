/* Round trip through a real nats-server and the embedded file server: the eight payload
 * types, direct and link, received by pull (one and batch), by readiness (fd and wake
 * callback), by callback, by smartreceive, and by request/reply; bytes compared.
 *
 * Needs NATS_URL and FILESERVER_URL. NB_TEST_SHORT=1 skips the 600 kB payload (for valgrind). */
#include <poll.h>
#include <pthread.h>

#include "arrow_sample.h"
#include "check.h"

/* ---- the samples: one payload of each type (and a large one by default threshold) ---- */

#define MAX_SAMPLES 9

typedef struct {
    const char *dataname;
    const char *type;
    uint8_t *data;
    size_t len;
} sample;

static sample g_samples[MAX_SAMPLES];
static size_t g_nsamples = 0;
static const char *g_fileserver = NULL;

static uint8_t *copy_bytes(const void *src, size_t len) {
    uint8_t *p = (uint8_t *)malloc(len ? len : 1);
    memcpy(p, src, len);
    return p;
}

static uint8_t *pattern(size_t len, unsigned seed) {
    uint8_t *p = (uint8_t *)malloc(len ? len : 1);
    unsigned x = seed | 1u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 7);
    }
    return p;
}

static void add_sample(const char *dataname, const char *type, uint8_t *data, size_t len) {
    sample *s = &g_samples[g_nsamples++];
    s->dataname = dataname;
    s->type = type;
    s->data = data;
    s->len = len;
}

static void make_samples(int short_run) {
    static const char text[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93";
    static const char dict[] = "{\"k\":\"v\",\"n\":[1,2.5,null],\"nested\":{\"ok\":true}}";
    static const char table[] = "[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"name\":\"b\"}]";
    add_sample("msg", "text", copy_bytes(text, strlen(text)), strlen(text));
    add_sample("settings", "dictionary", copy_bytes(dict, strlen(dict)), strlen(dict));
    add_sample("table", "arrowtable", copy_bytes(ARROW_SAMPLE, sizeof ARROW_SAMPLE),
               sizeof ARROW_SAMPLE);
    add_sample("rows", "jsontable", copy_bytes(table, strlen(table)), strlen(table));
    add_sample("login_image", "image", pattern(3000, 1), 3000);
    add_sample("voice", "audio", pattern(2048, 2), 2048);
    add_sample("clip", "video", pattern(4096, 3), 4096);
    add_sample("blob", "binary", pattern(1000, 4), 1000);
    if (!short_run) {
        /* Above the default threshold (500000): goes by link without being asked. */
        add_sample("big", "binary", pattern(600000, 5), 600000);
    }
}

static void free_samples(void) {
    for (size_t i = 0; i < g_nsamples; i++) free(g_samples[i].data);
    g_nsamples = 0;
}

static void fill_inputs(nb_payload_in *in) {
    for (size_t i = 0; i < g_nsamples; i++) {
        in[i].dataname = g_samples[i].dataname;
        in[i].payload_type = g_samples[i].type;
        in[i].data = g_samples[i].data;
        in[i].len = g_samples[i].len;
        in[i].metadata_json = NULL;
    }
}

/* Options of a round-trip send: a known correlation id, and everything by link if asked. */
static nb_send_options *send_options(int link, const char *correlation_id) {
    nb_send_options *opts = NULL;
    REQUIRE_OK(nb_send_options_new(&opts));
    REQUIRE_OK(nb_send_options_set_correlation_id(opts, correlation_id));
    REQUIRE_OK(nb_send_options_set_msg_purpose(opts, "event"));
    REQUIRE_OK(nb_send_options_set_sender_name(opts, "c-roundtrip"));
    REQUIRE_OK(nb_send_options_set_metadata_json(opts, "{\"test\":\"roundtrip\"}"));
    if (link) REQUIRE_OK(nb_send_options_set_size_threshold(opts, 1));
    return opts;
}

static nb_status send_all(nb_client *c, const char *subject, int link, const char *cid,
                          nb_envelope **sent, char **json) {
    nb_payload_in in[MAX_SAMPLES];
    fill_inputs(in);
    nb_send_options *opts = send_options(link, cid);
    nb_status s = nb_client_smartsend(c, subject, in, g_nsamples, opts, sent, json);
    nb_send_options_free(opts);
    return s;
}

/* Every payload back with its name, type, transport, size and bytes. */
static void check_envelope(const nb_envelope *env, int link, const char *cid) {
    CHECK(env != NULL);
    if (env == NULL) return;
    CHECK(streq(nb_envelope_correlation_id(env), cid));
    CHECK(streq(nb_envelope_msg_purpose(env), "event"));
    CHECK(streq(nb_envelope_sender_name(env), "c-roundtrip"));
    CHECK(strlen(nb_envelope_msg_id(env)) > 0);
    CHECK(strlen(nb_envelope_timestamp(env)) == 24);
    CHECK(streq(nb_envelope_metadata_json(env), "{\"test\":\"roundtrip\"}"));
    CHECK(strstr(nb_envelope_header_json(env), cid) != NULL);
    CHECK(nb_envelope_payload_count(env) == g_nsamples);
    for (size_t i = 0; i < g_nsamples && i < nb_envelope_payload_count(env); i++) {
        const sample *s = &g_samples[i];
        int want_link = link || s->len >= 500000;
        CHECK(streq(nb_envelope_payload_dataname(env, i), s->dataname));
        CHECK(streq(nb_envelope_payload_type(env, i), s->type));
        CHECK(streq(nb_envelope_payload_transport(env, i), want_link ? "link" : "direct"));
        CHECK(nb_envelope_payload_is_link(env, i) == (want_link != 0));
        CHECK(nb_envelope_payload_size(env, i) == s->len);
        CHECK(strlen(nb_envelope_payload_id(env, i)) == 36);
        const char *url = nb_envelope_payload_url(env, i);
        const char *meta = nb_envelope_payload_metadata_json(env, i);
        CHECK(meta != NULL && strstr(meta, "payload_bytes") != NULL);
        if (want_link) {
            CHECK(url != NULL && strncmp(url, g_fileserver, strlen(g_fileserver)) == 0);
            CHECK(meta != NULL && strstr(meta, "sha256") != NULL);
        } else {
            CHECK(url == NULL);
        }
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_STATUS(nb_envelope_payload_bytes(env, i, &data, &len), NB_OK);
        CHECK(len == s->len);
        CHECK(data != NULL && memcmp(data, s->data, s->len) == 0);
        if (data == NULL || len != s->len || memcmp(data, s->data, s->len) != 0)
            fprintf(stderr, "  payload %s (%s) differs\n", s->dataname, s->type);
    }
}

/* ---- pull ---- */

static void test_pull_direct_and_link(nb_client *c) {
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.pull", NULL, &sub));
    for (int link = 0; link < 2; link++) {
        const char *cid = link ? "cid-pull-link" : "cid-pull-direct";
        nb_envelope *sent = NULL;
        char *json = NULL;
        CHECK_STATUS(send_all(c, "c.rt.pull", link, cid, &sent, &json), NB_OK);
        CHECK(json != NULL && strstr(json, "\"payloads\"") != NULL && strstr(json, cid) != NULL);
        CHECK(streq(nb_envelope_send_to(sent), "c.rt.pull"));
        nb_envelope *got = NULL;
        CHECK_STATUS(nb_subscription_next(sub, 20000, &got), NB_OK);
        check_envelope(got, link, cid);
        CHECK(streq(nb_envelope_msg_id(got), nb_envelope_msg_id(sent)));
        /* A sent envelope keeps the bytes of direct payloads only. */
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_STATUS(nb_envelope_payload_bytes(sent, 0, &data, &len),
                     link ? NB_ERR_INVALID_ARGUMENT : NB_OK);
        nb_envelope_free(got);
        nb_envelope_free(sent);
        nb_string_free(json);
    }
    nb_envelope *none = (nb_envelope *)&none;
    CHECK_STATUS(nb_subscription_next(sub, 0, &none), NB_ERR_PULL_TIMEOUT);
    CHECK(none == NULL);
    CHECK_STATUS(nb_subscription_next(sub, 50, &none), NB_ERR_PULL_TIMEOUT);
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    CHECK_STATUS(nb_subscription_next(sub, 5000, &none), NB_ERR_CLOSED);
    nb_subscription_free(sub);
}

static nb_status send_text(nb_client *c, const char *subject, const char *text) {
    nb_payload_in in;
    in.dataname = "msg";
    in.payload_type = "text";
    in.data = (const uint8_t *)text;
    in.len = strlen(text);
    in.metadata_json = NULL;
    return nb_client_smartsend(c, subject, &in, 1, NULL, NULL, NULL);
}

static int text_is(const nb_envelope *env, const char *text) {
    const uint8_t *data = NULL;
    size_t len = 0;
    if (nb_envelope_payload_bytes(env, 0, &data, &len) != NB_OK) return 0;
    return len == strlen(text) && memcmp(data, text, len) == 0;
}

/* ---- sending without waiting ---- */

static void test_try_smartsend(nb_client *c) {
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.try", NULL, &sub));
    /* Direct payloads: published at once, exactly as smartsend would. */
    nb_payload_in in[2];
    in[0].dataname = "msg";
    in[0].payload_type = "text";
    in[0].data = (const uint8_t *)"now";
    in[0].len = 3;
    in[0].metadata_json = NULL;
    in[1].dataname = "big";
    in[1].payload_type = "binary";
    uint8_t *big = pattern(600000, 9);
    in[1].data = big;
    in[1].len = 600000; /* over the 500,000 B threshold: an upload */
    in[1].metadata_json = NULL;
    nb_envelope *sent = NULL;
    char *json = NULL;
    CHECK_STATUS(nb_client_try_smartsend(c, "c.rt.try", in, 1, NULL, &sent, &json), NB_OK);
    CHECK(sent != NULL && json != NULL && strstr(json, "\"now\"") == NULL);
    CHECK(json != NULL && strstr(json, "\"bm93\"") != NULL); /* base64 of "now" */
    const uint8_t *b64 = NULL;
    size_t b64_len = 0;
    CHECK_STATUS(nb_envelope_payload_base64(sent, 0, &b64, &b64_len), NB_OK);
    CHECK(b64_len == 4 && b64 != NULL && memcmp(b64, "bm93", 4) == 0);
    const uint8_t *again = NULL;
    CHECK_STATUS(nb_envelope_payload_base64(sent, 0, &again, &b64_len), NB_OK);
    CHECK(again == b64); /* made once, borrowed */
    CHECK_STATUS(nb_envelope_payload_base64(sent, 1, &again, &b64_len), NB_ERR_OUT_OF_RANGE);
    /* A link payload would need an upload: nothing is published, the outputs stay NULL. */
    nb_envelope *none = (nb_envelope *)&none;
    char *no_json = (char *)&no_json;
    CHECK_STATUS(nb_client_try_smartsend(c, "c.rt.try", in, 2, NULL, &none, &no_json),
                 NB_ERR_WOULD_BLOCK);
    CHECK(none == NULL && no_json == NULL);
    CHECK(strstr(last_error(), "link") != NULL);
    CHECK(streq(nb_status_code_name(NB_ERR_WOULD_BLOCK), "WOULD_BLOCK"));
    /* The blocking call sends the same payloads; the order is kept. */
    CHECK_STATUS(send_text(c, "c.rt.try", "after"), NB_OK);
    nb_envelope *got = NULL;
    CHECK_STATUS(nb_subscription_next(sub, 10000, &got), NB_OK);
    CHECK(got != NULL && text_is(got, "now"));
    CHECK(got != NULL && streq(nb_envelope_msg_id(got), nb_envelope_msg_id(sent)));
    /* The outline: the header and the payloads without their bytes, in one JSON object. */
    const char *outline = got ? nb_envelope_outline_json(got) : NULL;
    CHECK(outline != NULL && strncmp(outline, "{\"correlation_id\":", 18) == 0);
    CHECK(outline != NULL && strstr(outline, "\"payloads\":[{\"id\":") != NULL);
    CHECK(outline != NULL && strstr(outline, "\"dataname\":\"msg\",\"payload_type\":\"text\","
                                             "\"transport\":\"direct\",\"encoding\":\"base64\","
                                             "\"size\":3,\"url\":null,\"file\":null") != NULL);
    CHECK(outline != NULL && strstr(outline, "bm93") == NULL);
    CHECK(got != NULL && nb_envelope_outline_json(got) == outline); /* made once, borrowed */
    nb_envelope_free(got);
    got = NULL;
    CHECK_STATUS(nb_subscription_next(sub, 10000, &got), NB_OK);
    CHECK(got != NULL && text_is(got, "after"));
    nb_envelope_free(got);
    CHECK_STATUS(nb_subscription_next(sub, 0, &got), NB_ERR_PULL_TIMEOUT);
    nb_envelope_free(sent);
    nb_string_free(json);

    /* A failing send reports the correlation id the library chose for it. */
    nb_send_options *opts = NULL;
    REQUIRE_OK(nb_send_options_new(&opts));
    REQUIRE_OK(nb_send_options_set_correlation_id(opts, "cid-try-bad"));
    CHECK_STATUS(nb_client_try_smartsend(c, "bad subject", in, 1, opts, NULL, NULL),
                 NB_ERR_INVALID_ARGUMENT);
    char cid[64];
    size_t needed = 0;
    CHECK_STATUS(nb_last_error_correlation_id(cid, sizeof cid, &needed), NB_OK);
    CHECK(streq(cid, "cid-try-bad") && needed == strlen("cid-try-bad") + 1);
    nb_send_options_free(opts);
    CHECK_STATUS(nb_client_try_smartsend(c, "c.rt.try", NULL, 1, NULL, NULL, NULL),
                 NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_last_error_correlation_id(cid, sizeof cid, &needed), NB_OK);
    CHECK(streq(cid, "") && needed == 1); /* no envelope, no correlation id */
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    nb_subscription_free(sub);
    free(big);
}

static void test_pull_batch_in_order(nb_client *c) {
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.batch", NULL, &sub));
    const char *texts[5] = {"m0", "m1", "m2", "m3", "m4"};
    for (int i = 0; i < 5; i++) CHECK_STATUS(send_text(c, "c.rt.batch", texts[i]), NB_OK);
    size_t got = 0;
    long long deadline = now_ms() + 20000;
    while (got < 5 && now_ms() < deadline) {
        nb_envelope *envs[8];
        size_t count = 99;
        nb_status s = nb_subscription_next_batch(sub, envs, 8, 5000, &count);
        CHECK(s == NB_OK || s == NB_ERR_PULL_TIMEOUT);
        if (s != NB_OK) {
            CHECK(count == 0 && envs[0] == NULL);
            continue;
        }
        CHECK(count >= 1 && count <= 8);
        for (size_t i = 0; i < count; i++) {
            CHECK(got + i < 5 && text_is(envs[i], texts[got + i]));
            nb_envelope_free(envs[i]);
        }
        got += count;
    }
    CHECK(got == 5);
    nb_subscription_free(sub);
}

/* ---- readiness: fd and wake callback ---- */

static int readable(int fd, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

static int g_wakes = 0;

static int count_wake(void *ctx) {
    __atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void test_readiness_fd_and_wake(nb_client *c) {
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.ready", NULL, &sub));
    int fd = -1, fd2 = -1;
    CHECK_STATUS(nb_subscription_fd(sub, &fd), NB_OK);
    CHECK_STATUS(nb_subscription_fd(sub, &fd2), NB_OK);
    CHECK(fd >= 0 && fd == fd2);
    CHECK(!readable(fd, 0));
    CHECK_STATUS(nb_subscription_set_wake(sub, count_wake, &g_wakes), NB_OK);

    for (int round = 0; round < 2; round++) {
        int wakes_before = __atomic_load_n(&g_wakes, __ATOMIC_SEQ_CST);
        CHECK_STATUS(send_text(c, "c.rt.ready", "r0"), NB_OK);
        CHECK_STATUS(send_text(c, "c.rt.ready", "r1"), NB_OK);
        CHECK(readable(fd, 10000));
        /* Drain the queue with polls, as an event loop does after a wake-up. */
        int taken = 0;
        long long deadline = now_ms() + 10000;
        while (taken < 2 && now_ms() < deadline) {
            nb_envelope *env = NULL;
            nb_status s = nb_subscription_next(sub, 0, &env);
            if (s == NB_OK) {
                CHECK(text_is(env, taken == 0 ? "r0" : "r1"));
                taken++;
                nb_envelope_free(env);
            } else {
                CHECK(s == NB_ERR_PULL_TIMEOUT);
                CHECK(readable(fd, 10000)); /* the second one is on its way */
            }
        }
        CHECK(taken == 2);
        nb_envelope *env = NULL;
        CHECK_STATUS(nb_subscription_next(sub, 0, &env), NB_ERR_PULL_TIMEOUT);
        CHECK(!readable(fd, 0)); /* drained by the library */
        CHECK(__atomic_load_n(&g_wakes, __ATOMIC_SEQ_CST) > wakes_before);
    }
    /* Closed is a lasting state: the fd becomes and stays readable, pulls say CLOSED. */
    int wakes_before = __atomic_load_n(&g_wakes, __ATOMIC_SEQ_CST);
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    CHECK(readable(fd, 5000));
    CHECK(__atomic_load_n(&g_wakes, __ATOMIC_SEQ_CST) > wakes_before);
    nb_envelope *env = NULL;
    CHECK_STATUS(nb_subscription_next(sub, 0, &env), NB_ERR_CLOSED);
    CHECK(readable(fd, 0));
    CHECK_STATUS(nb_subscription_set_wake(sub, NULL, NULL), NB_OK);
    nb_subscription_free(sub);
}

/* ---- callback ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nb_envelope *got[8];
    int n;
    int calls;
    int errors;
    char error_text[512];
    int freed;
    int in_callback;
    int overlapped;
    nb_subscription *sub;   /* set for the close-from-inside test */
    nb_status close_status;
    nb_client *client;      /* set for the responder */
} box;

static void box_init(box *b) {
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
}

static void box_destroy(box *b) {
    for (int i = 0; i < b->n; i++) nb_envelope_free(b->got[i]);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

/* Waits until `*counter >= want` (read under the box's lock), up to timeout_ms. */
static int box_wait(box *b, const int *counter, int want, int timeout_ms) {
    long long deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&b->mu);
    while (*counter < want && now_ms() < deadline) {
        pthread_mutex_unlock(&b->mu);
        sleep_ms(5);
        pthread_mutex_lock(&b->mu);
    }
    int ok = *counter >= want;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

static void on_envelope(void *user_data, const nb_envelope *env, nb_status status) {
    box *b = (box *)user_data;
    pthread_mutex_lock(&b->mu);
    if (b->in_callback) b->overlapped++;
    b->in_callback = 1;
    pthread_mutex_unlock(&b->mu);

    sleep_ms(2); /* widen the window in which overlapping calls would show */
    nb_envelope *copy = NULL;
    if (status == NB_OK) nb_envelope_clone(env, &copy);

    pthread_mutex_lock(&b->mu);
    b->calls++;
    if (status == NB_OK && copy != NULL && b->n < 8) {
        b->got[b->n++] = copy;
        copy = NULL;
    } else if (status != NB_OK) {
        b->errors++;
        nb_last_error_message(b->error_text, sizeof b->error_text, NULL);
    }
    b->in_callback = 0;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    nb_envelope_free(copy);
}

static void on_free(void *user_data) {
    box *b = (box *)user_data;
    pthread_mutex_lock(&b->mu);
    b->freed++;
    pthread_mutex_unlock(&b->mu);
}

static void test_callback_direct_and_link(nb_client *c) {
    box b;
    box_init(&b);
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.cb", NULL, on_envelope, &b, on_free, &sub));
    CHECK_STATUS(send_all(c, "c.rt.cb", 0, "cid-cb-direct", NULL, NULL), NB_OK);
    CHECK_STATUS(send_all(c, "c.rt.cb", 1, "cid-cb-link", NULL, NULL), NB_OK);
    for (int i = 0; i < 6; i++) CHECK_STATUS(send_text(c, "c.rt.cb", "x"), NB_OK);
    CHECK(box_wait(&b, &b.n, 8, 30000));
    pthread_mutex_lock(&b.mu);
    CHECK(b.n == 8 && b.errors == 0 && b.overlapped == 0);
    if (b.n >= 2) {
        check_envelope(b.got[0], 0, "cid-cb-direct"); /* in order of arrival */
        check_envelope(b.got[1], 1, "cid-cb-link");
    }
    pthread_mutex_unlock(&b.mu);
    /* Pull calls do not apply to a callback subscription. */
    nb_envelope *env = NULL;
    CHECK_STATUS(nb_subscription_next(sub, 0, &env), NB_ERR_INVALID_ARGUMENT);
    int fd = 7;
    CHECK_STATUS(nb_subscription_fd(sub, &fd), NB_ERR_INVALID_ARGUMENT);
    CHECK(fd == 0);
    /* Close waits for a running callback and for free_user_data. */
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    CHECK(b.freed == 1 && b.in_callback == 0);
    int calls = b.calls;
    CHECK_STATUS(send_text(c, "c.rt.cb", "after close"), NB_OK);
    sleep_ms(200);
    CHECK(b.calls == calls);
    CHECK_STATUS(nb_subscription_close(sub), NB_OK); /* closing twice is harmless */
    nb_subscription_free(sub);
    CHECK(b.freed == 1);
    box_destroy(&b);
}

static void slow_callback(void *user_data, const nb_envelope *env, nb_status status) {
    box *b = (box *)user_data;
    (void)env;
    (void)status;
    pthread_mutex_lock(&b->mu);
    b->in_callback = 1;
    pthread_mutex_unlock(&b->mu);
    sleep_ms(300);
    pthread_mutex_lock(&b->mu);
    b->in_callback = 0;
    b->calls++;
    pthread_mutex_unlock(&b->mu);
}

static void test_close_waits_for_running_callback(nb_client *c) {
    box b;
    box_init(&b);
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.slowcb", NULL, slow_callback, &b, on_free,
                                            &sub));
    CHECK_STATUS(send_text(c, "c.rt.slowcb", "1"), NB_OK);
    CHECK_STATUS(send_text(c, "c.rt.slowcb", "2"), NB_OK);
    CHECK(box_wait(&b, &b.in_callback, 1, 10000));
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    /* Returned after the running call ended and free_user_data ran; the queued one is not
     * delivered any more. */
    pthread_mutex_lock(&b.mu);
    CHECK(b.in_callback == 0 && b.calls == 1 && b.freed == 1);
    pthread_mutex_unlock(&b.mu);
    nb_subscription_free(sub);
    box_destroy(&b);
}

static void close_inside(void *user_data, const nb_envelope *env, nb_status status) {
    box *b = (box *)user_data;
    (void)env;
    (void)status;
    /* Closing its own subscription from inside the callback returns at once. */
    nb_status s = nb_subscription_close(b->sub);
    pthread_mutex_lock(&b->mu);
    b->calls++;
    b->close_status = s;
    pthread_mutex_unlock(&b->mu);
}

static void test_callback_closes_itself(nb_client *c) {
    box b;
    box_init(&b);
    b.close_status = 1;
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.self", NULL, close_inside, &b, on_free, &sub));
    pthread_mutex_lock(&b.mu);
    b.sub = sub;
    pthread_mutex_unlock(&b.mu);
    CHECK_STATUS(send_text(c, "c.rt.self", "one"), NB_OK);
    CHECK(box_wait(&b, &b.freed, 1, 10000));
    CHECK_STATUS(send_text(c, "c.rt.self", "two"), NB_OK);
    sleep_ms(200);
    pthread_mutex_lock(&b.mu);
    CHECK(b.calls == 1 && b.freed == 1 && b.close_status == NB_OK);
    pthread_mutex_unlock(&b.mu);
    nb_subscription_free(sub);
    CHECK(b.freed == 1);
    box_destroy(&b);
}

/* A callback that frees its own subscription: allowed, the envelope stays valid. */
static void free_inside(void *user_data, const nb_envelope *env, nb_status status) {
    box *b = (box *)user_data;
    (void)status;
    nb_subscription *sub = NULL;
    pthread_mutex_lock(&b->mu);
    sub = b->sub;
    b->sub = NULL;
    pthread_mutex_unlock(&b->mu);
    nb_subscription_free(sub);
    int ok = text_is(env, "bye");
    pthread_mutex_lock(&b->mu);
    b->calls += ok ? 1 : 100;
    pthread_mutex_unlock(&b->mu);
}

static void test_callback_frees_itself(nb_client *c) {
    box b;
    box_init(&b);
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.free", NULL, free_inside, &b, on_free, &sub));
    pthread_mutex_lock(&b.mu);
    b.sub = sub;
    pthread_mutex_unlock(&b.mu);
    CHECK_STATUS(send_text(c, "c.rt.free", "bye"), NB_OK);
    CHECK(box_wait(&b, &b.freed, 1, 10000));
    CHECK(b.calls == 1);
    box_destroy(&b);
}

/* ---- smartreceive ---- */

static void test_smartreceive(nb_client *c, nb_config *cfg) {
    char *json = NULL;
    CHECK_STATUS(send_all(c, "c.rt.none", 1, "cid-receive", NULL, &json), NB_OK);
    if (json == NULL) return;
    nb_envelope *env = NULL;
    CHECK_STATUS(nb_client_smartreceive(c, (const uint8_t *)json, strlen(json), &env), NB_OK);
    check_envelope(env, 1, "cid-receive");
    nb_envelope_free(env);
    env = NULL;
    CHECK_STATUS(nb_smartreceive(cfg, (const uint8_t *)json, strlen(json), &env), NB_OK);
    check_envelope(env, 1, "cid-receive");
    nb_envelope *copy = NULL;
    CHECK_STATUS(nb_envelope_clone(env, &copy), NB_OK);
    nb_envelope_free(env);
    check_envelope(copy, 1, "cid-receive");
    nb_envelope_free(copy);
    nb_string_free(json);

    const char garbage[] = "{not json";
    env = (nb_envelope *)&env;
    CHECK_STATUS(nb_smartreceive(cfg, (const uint8_t *)garbage, strlen(garbage), &env),
                 NB_ERR_INVALID_ENVELOPE);
    CHECK(env == NULL);
    CHECK(strstr(last_error(), "INVALID_ENVELOPE") != NULL);
    char buf[256];
    CHECK_STATUS(nb_config_last_error(cfg, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "INVALID_ENVELOPE") != NULL);
}

/* ---- link payloads into files, and upload progress ---- */

static void test_progress_and_download_dir(nb_client *c) {
    nb_progress *progress = NULL;
    REQUIRE_OK(nb_progress_new(&progress));
    nb_payload_in in[MAX_SAMPLES];
    fill_inputs(in);
    nb_send_options *opts = send_options(1, "cid-files");
    REQUIRE_OK(nb_send_options_set_progress(opts, progress));
    char *json = NULL;
    CHECK_STATUS(nb_client_smartsend(c, "c.rt.none", in, g_nsamples, opts, NULL, &json), NB_OK);
    nb_send_options_free(opts);
    uint64_t total = 0;
    for (size_t i = 0; i < g_nsamples; i++) total += g_samples[i].len;
    CHECK(nb_progress_total(progress) == total);
    CHECK(nb_progress_done(progress) == total);
    nb_progress_free(progress);
    if (json == NULL) return;

    char dir[] = "/tmp/nb-c-download-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    nb_config *cfg = test_config();
    REQUIRE_OK(nb_config_set_download_dir(cfg, dir));
    nb_envelope *env = NULL;
    CHECK_STATUS(nb_smartreceive(cfg, (const uint8_t *)json, strlen(json), &env), NB_OK);
    CHECK(nb_envelope_payload_count(env) == g_nsamples);
    for (size_t i = 0; i < g_nsamples && i < nb_envelope_payload_count(env); i++) {
        const char *path = nb_envelope_payload_file(env, i);
        CHECK(path != NULL && strncmp(path, dir, strlen(dir)) == 0);
        const uint8_t *data = NULL;
        size_t len = 0;
        CHECK_STATUS(nb_envelope_payload_bytes(env, i, &data, &len), NB_ERR_INVALID_ARGUMENT);
        if (path == NULL) continue;
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (f == NULL) continue;
        uint8_t *buf = (uint8_t *)malloc(g_samples[i].len + 1);
        size_t n = fread(buf, 1, g_samples[i].len + 1, f);
        fclose(f);
        CHECK(n == g_samples[i].len && memcmp(buf, g_samples[i].data, n) == 0);
        free(buf);
        unlink(path);
    }
    nb_envelope_free(env);
    nb_config_free(cfg);
    rmdir(dir);
    nb_string_free(json);
}

/* ---- errors of single messages reach the consumer ---- */

static void test_undeliverable_message_is_reported(nb_client *c, nb_config *cfg) {
    /* One-shot uploads are deleted on first download: of two subscribers, one gets the
     * bytes and the other DOWNLOAD_FAILED, by pull or by callback. */
    nb_config *oneshot_cfg = test_config();
    REQUIRE_OK(nb_config_set_link_oneshot(oneshot_cfg, true));
    nb_client *sender = NULL;
    REQUIRE_OK(nb_client_connect(oneshot_cfg, &sender));
    (void)cfg;
    box b;
    box_init(&b);
    nb_subscription *pull = NULL, *cb = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.oneshot", NULL, &pull));
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.oneshot", NULL, on_envelope, &b, on_free, &cb));
    nb_payload_in in;
    in.dataname = "once";
    in.payload_type = "binary";
    in.data = g_samples[7].data;
    in.len = g_samples[7].len;
    in.metadata_json = NULL;
    nb_send_options *opts = NULL;
    REQUIRE_OK(nb_send_options_new(&opts));
    REQUIRE_OK(nb_send_options_set_size_threshold(opts, 1));
    CHECK_STATUS(nb_client_smartsend(sender, "c.rt.oneshot", &in, 1, opts, NULL, NULL), NB_OK);
    nb_envelope *env = NULL;
    nb_status s = nb_subscription_next(pull, 20000, &env);
    CHECK(s == NB_OK || s == NB_ERR_DOWNLOAD_FAILED);
    CHECK(box_wait(&b, &b.calls, 1, 20000));
    int errors = (s != NB_OK) + b.errors;
    CHECK(errors == 1);
    if (s != NB_OK) {
        CHECK(env == NULL);
        CHECK(strstr(last_error(), "DOWNLOAD_FAILED") != NULL);
        char buf[512];
        CHECK_STATUS(nb_subscription_last_error(pull, buf, sizeof buf, NULL), NB_OK);
        CHECK(strstr(buf, "DOWNLOAD_FAILED") != NULL);
    } else {
        CHECK(strstr(b.error_text, "DOWNLOAD_FAILED") != NULL);
        char buf[512];
        CHECK_STATUS(nb_subscription_last_error(cb, buf, sizeof buf, NULL), NB_OK);
        CHECK(strstr(buf, "DOWNLOAD_FAILED") != NULL);
    }
    nb_envelope_free(env);
    nb_send_options_free(opts);
    nb_subscription_free(pull);
    nb_subscription_free(cb);
    CHECK(b.freed == 1);
    box_destroy(&b);
    CHECK_STATUS(nb_client_close(sender), NB_OK);
    nb_client_free(sender);
    nb_config_free(oneshot_cfg);
}

static void test_slow_consumer_is_reported(nb_client *unused) {
    (void)unused;
    /* A queue of one envelope: what arrives while it is full is dropped and reported once,
     * in place, as SLOW_CONSUMER; a batch stops before it and the next pull returns it. */
    nb_config *cfg = test_config();
    REQUIRE_OK(nb_config_set_subscription_queue(cfg, 1));
    nb_client *c = NULL;
    REQUIRE_OK(nb_client_connect(cfg, &c));
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "c.rt.slow", NULL, &sub));
    int fd = -1;
    CHECK_STATUS(nb_subscription_fd(sub, &fd), NB_OK);
    for (int i = 0; i < 5; i++) CHECK_STATUS(send_text(c, "c.rt.slow", "s"), NB_OK);
    CHECK_STATUS(nb_client_flush(c), NB_OK);
    uint64_t dropped = 0;
    long long deadline = now_ms() + 10000;
    while (dropped < 4 && now_ms() < deadline) {
        sleep_ms(10);
        CHECK_STATUS(nb_subscription_dropped(sub, &dropped), NB_OK);
    }
    CHECK(dropped == 4);
    nb_envelope *envs[4];
    size_t count = 0;
    CHECK_STATUS(nb_subscription_next_batch(sub, envs, 4, 5000, &count), NB_OK);
    CHECK(count == 1 && text_is(envs[0], "s"));
    for (size_t i = 0; i < count; i++) nb_envelope_free(envs[i]);
    CHECK(readable(fd, 0)); /* the pending report keeps the fd readable */
    nb_envelope *env = (nb_envelope *)&env;
    CHECK_STATUS(nb_subscription_next(sub, 0, &env), NB_ERR_SLOW_CONSUMER);
    CHECK(env == NULL);
    CHECK(strstr(last_error(), "4 message(s)") != NULL);
    char buf[512];
    CHECK_STATUS(nb_subscription_last_error(sub, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "SLOW_CONSUMER") != NULL);
    CHECK_STATUS(nb_subscription_next(sub, 0, &env), NB_ERR_PULL_TIMEOUT);
    CHECK(!readable(fd, 0));
    nb_subscription_free(sub);
    nb_client_free(c);
    nb_config_free(cfg);
}

/* ---- request / reply ---- */

static void respond(void *user_data, const nb_envelope *req, nb_status status) {
    box *b = (box *)user_data;
    if (status != NB_OK) return;
    const char pong[] = "pong";
    nb_payload_in in;
    in.dataname = "answer";
    in.payload_type = "text";
    in.data = (const uint8_t *)pong;
    in.len = strlen(pong);
    in.metadata_json = NULL;
    /* Blocking calls are allowed on the delivery thread. */
    nb_status s = nb_client_reply(b->client, req, &in, 1, NULL, NULL, NULL);
    pthread_mutex_lock(&b->mu);
    b->calls++;
    if (s != NB_OK) b->errors++;
    pthread_mutex_unlock(&b->mu);
}

static void test_request_reply(nb_client *c) {
    box b;
    box_init(&b);
    b.client = c;
    nb_subscription *responder = NULL;
    REQUIRE_OK(nb_client_subscribe_callback(c, "c.rt.rpc", "workers", respond, &b, on_free,
                                            &responder));
    nb_send_options *opts = NULL;
    REQUIRE_OK(nb_send_options_new(&opts));
    REQUIRE_OK(nb_send_options_set_msg_id(opts, "req-1"));
    REQUIRE_OK(nb_send_options_set_correlation_id(opts, "cid-rpc"));
    REQUIRE_OK(nb_send_options_set_msg_purpose(opts, "command"));
    nb_payload_in in;
    in.dataname = "ping";
    in.payload_type = "text";
    in.data = (const uint8_t *)"ping";
    in.len = 4;
    in.metadata_json = NULL;
    nb_envelope *reply = NULL;
    CHECK_STATUS(nb_client_request(c, "c.rt.rpc", &in, 1, opts, 10000, &reply), NB_OK);
    CHECK(reply != NULL && text_is(reply, "pong"));
    CHECK(streq(nb_envelope_reply_to_msg_id(reply), "req-1"));
    CHECK(streq(nb_envelope_correlation_id(reply), "cid-rpc"));
    CHECK(streq(nb_envelope_payload_dataname(reply, 0), "answer"));
    nb_envelope_free(reply);

    reply = (nb_envelope *)&reply;
    CHECK_STATUS(nb_client_request(c, "c.rt.nobody", &in, 1, NULL, 3000, &reply),
                 NB_ERR_NO_RESPONDERS);
    CHECK(reply == NULL);
    nb_send_options_free(opts);
    nb_subscription_free(responder);
    CHECK(b.errors == 0 && b.freed == 1);
    box_destroy(&b);
}

/* ---- logging ---- */

static int g_log_lines = 0;

static void count_log(void *ctx, int32_t level, const char *line) {
    (void)level;
    if (line != NULL && strstr(line, "[Correlation: ") != NULL)
        __atomic_fetch_add((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static void test_log_callback(nb_client *c) {
    CHECK_STATUS(nb_log_set_callback(count_log, &g_log_lines), NB_OK);
    CHECK_STATUS(nb_log_set_level(NB_LOG_INFO), NB_OK);
    CHECK_STATUS(send_text(c, "c.rt.log", "logged"), NB_OK);
    CHECK_STATUS(nb_log_set_level(NB_LOG_OFF), NB_OK);
    CHECK_STATUS(nb_log_set_callback(NULL, NULL), NB_OK);
    int lines = __atomic_load_n(&g_log_lines, __ATOMIC_SEQ_CST);
    CHECK(lines > 0);
    CHECK_STATUS(send_text(c, "c.rt.log", "not logged"), NB_OK);
    CHECK(__atomic_load_n(&g_log_lines, __ATOMIC_SEQ_CST) == lines);
}

static void test_version(nb_client *c) {
    (void)c;
    CHECK(nb_abi_version() == NB_ABI_VERSION);
    CHECK(nb_version() != NULL && strlen(nb_version()) >= 5);
    CHECK(streq(nb_status_code_name(NB_ERR_DOWNLOAD_FAILED), "DOWNLOAD_FAILED"));
}

int main(void) {
    const char *short_run = getenv("NB_TEST_SHORT");
    g_fileserver = getenv("FILESERVER_URL");
    if (g_fileserver == NULL || getenv("NATS_URL") == NULL) {
        fprintf(stderr, "roundtrip: set NATS_URL and FILESERVER_URL (tests/c/run.sh does)\n");
        return 2;
    }
    make_samples(short_run != NULL && strcmp(short_run, "1") == 0);
    nb_config *cfg = test_config();
    nb_client *c = NULL;
    REQUIRE_OK(nb_client_connect(cfg, &c));

    RUN(test_version, c);
    RUN(test_pull_direct_and_link, c);
    RUN(test_pull_batch_in_order, c);
    RUN(test_try_smartsend, c);
    RUN(test_readiness_fd_and_wake, c);
    RUN(test_callback_direct_and_link, c);
    RUN(test_close_waits_for_running_callback, c);
    RUN(test_callback_closes_itself, c);
    RUN(test_callback_frees_itself, c);
    RUN(test_smartreceive, c, cfg);
    RUN(test_progress_and_download_dir, c);
    RUN(test_undeliverable_message_is_reported, c, cfg);
    RUN(test_slow_consumer_is_reported, c);
    RUN(test_request_reply, c);
    RUN(test_log_callback, c);

    CHECK_STATUS(nb_client_close(c), NB_OK);
    nb_client_free(c);
    nb_config_free(cfg);
    free_samples();
    CHECK_STATUS(nb_runtime_shutdown(5000), NB_OK);
    return finish("roundtrip");
}
