/* Misuse of the C API: NULL in every pointer argument, invalid UTF-8, bad values, calls on
 * closed handles, closing twice, blocking calls from a library thread. None may crash; each
 * returns its documented status, nulls its out-parameters, and leaves a last error.
 *
 * Needs NATS_URL (and FILESERVER_URL) of running servers. */
#include "check.h"

static const char BAD_UTF8[] = "caf\xc3\x28";
static void *const GARBAGE = (void *)0x1;

static void test_library_functions(nb_client *unused) {
    (void)unused;
    CHECK(streq(nb_status_code_name(NB_OK), "OK"));
    CHECK(streq(nb_status_code_name(-9999), "UNKNOWN"));
    CHECK(streq(nb_status_str(-9999), "unknown status"));
    const nb_status all[] = {NB_ERR_INVALID_ARGUMENT, NB_ERR_TIMEOUT, NB_ERR_CLOSED,
                             NB_ERR_INTERNAL, NB_ERR_NATS_CONNECTION_FAILED,
                             NB_ERR_SLOW_CONSUMER, NB_ERR_NO_RESPONDERS, NB_ERR_MESSAGES_DROPPED,
                             NB_ERR_INVALID_ENVELOPE, NB_ERR_INVALID_PAYLOAD_TYPE,
                             NB_ERR_INVALID_TRANSPORT, NB_ERR_INVALID_PAYLOAD,
                             NB_ERR_DESERIALIZATION_ERROR, NB_ERR_PAYLOAD_TOO_LARGE,
                             NB_ERR_UPLOAD_FAILED, NB_ERR_DOWNLOAD_FAILED,
                             NB_ERR_LINK_URL_REJECTED, NB_ERR_INTEGRITY_ERROR, NB_ERR_NULL_ARG,
                             NB_ERR_UTF8, NB_ERR_BUFFER_TOO_SMALL, NB_ERR_PANIC,
                             NB_ERR_PULL_TIMEOUT, NB_ERR_OUT_OF_RANGE, NB_ERR_WRONG_THREAD,
                             NB_ERR_WOULD_BLOCK};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i] < 0);
        CHECK(!streq(nb_status_code_name(all[i]), "UNKNOWN"));
        CHECK(!streq(nb_status_str(all[i]), "unknown status"));
        for (size_t j = 0; j < i; j++) CHECK(all[i] != all[j]);
    }
    CHECK_STATUS(nb_log_set_level(7), NB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "log level 7") != NULL);
    CHECK_STATUS(nb_runtime_init(1), NB_ERR_INVALID_ARGUMENT); /* already running */

    /* Reading the last error: sizes, truncation, NULL. */
    size_t needed = 0;
    CHECK_STATUS(nb_last_error_message(NULL, 0, &needed), NB_ERR_BUFFER_TOO_SMALL);
    CHECK(needed > 10);
    char small[8];
    CHECK_STATUS(nb_last_error_message(small, sizeof small, &needed), NB_ERR_BUFFER_TOO_SMALL);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK_STATUS(nb_last_error_message(NULL, 10, NULL), NB_ERR_NULL_ARG);
    char *big = (char *)malloc(needed);
    CHECK_STATUS(nb_last_error_message(big, needed, NULL), NB_OK);
    CHECK(strlen(big) + 1 == needed);
    free(big);
    /* The failure above concerned no message: no correlation id. */
    CHECK_STATUS(nb_last_error_correlation_id(NULL, 0, &needed), NB_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 1);
    CHECK_STATUS(nb_last_error_correlation_id(NULL, 10, NULL), NB_ERR_NULL_ARG);

    nb_string_free(NULL);
    nb_config_free(NULL);
    nb_send_options_free(NULL);
    nb_client_free(NULL);
    nb_envelope_free(NULL);
    nb_subscription_free(NULL);
}

static void test_config_misuse(nb_client *unused) {
    (void)unused;
    CHECK_STATUS(nb_config_new(NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_from_env(NULL), NB_ERR_NULL_ARG);
    nb_config *cfg = NULL;
    REQUIRE_OK(nb_config_new(&cfg));

    /* NULL handle. */
    CHECK_STATUS(nb_config_set_nats_url(NULL, "nats://x"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_fileserver_url(NULL, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_fileserver_token(NULL, "t"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_size_threshold(NULL, 10), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_sender_name(NULL, "x"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_client_name(NULL, "x"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_connect_timeout_ms(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_operation_timeout_ms(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_http_idle_timeout_ms(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_subscription_queue(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_token(NULL, "t"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_user_password(NULL, "u", "p"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_creds_file(NULL, "f"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_clear_credentials(NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_tls_required(NULL, true), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_add_tls_root_certificate(NULL, "f"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_tls_client_certificate(NULL, "c", "k"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_link_oneshot(NULL, true), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_link_ttl_s(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_fallback_to_direct(NULL, true), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_add_allowed_origin(NULL, "*"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_max_download_bytes(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_download_retry(NULL, 1, 1, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_parallel_downloads(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_download_timeout_ms(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_min_transfer_rate(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_ordered_subscriptions(NULL, false), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_download_dir(NULL, "/tmp"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_last_error(NULL, NULL, 0, NULL), NB_ERR_NULL_ARG);

    /* NULL strings: required ones fail, optional ones unset. */
    CHECK_STATUS(nb_config_set_nats_url(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_sender_name(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_token(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_user_password(cfg, NULL, "p"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_user_password(cfg, "u", NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_creds_file(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_add_tls_root_certificate(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_tls_client_certificate(cfg, NULL, "k"), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_tls_client_certificate(cfg, "c", NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_add_allowed_origin(cfg, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_config_set_fileserver_url(cfg, NULL), NB_OK);
    CHECK_STATUS(nb_config_set_fileserver_token(cfg, NULL), NB_OK);
    CHECK_STATUS(nb_config_set_client_name(cfg, NULL), NB_OK);
    CHECK_STATUS(nb_config_set_download_dir(cfg, NULL), NB_OK);

    /* Invalid UTF-8 in every string. */
    CHECK_STATUS(nb_config_set_nats_url(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK(strstr(last_error(), "not valid UTF-8") != NULL);
    CHECK_STATUS(nb_config_set_fileserver_url(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_fileserver_token(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_sender_name(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_client_name(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_token(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_user_password(cfg, BAD_UTF8, "p"), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_user_password(cfg, "u", BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_creds_file(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_add_tls_root_certificate(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_tls_client_certificate(cfg, BAD_UTF8, "k"), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_add_allowed_origin(cfg, BAD_UTF8), NB_ERR_UTF8);
    CHECK_STATUS(nb_config_set_download_dir(cfg, BAD_UTF8), NB_ERR_UTF8);

    /* Bad values. */
    CHECK_STATUS(nb_config_set_size_threshold(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_fileserver_token(cfg, "a\nb"), NB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "fileserver_token") != NULL);
    CHECK_STATUS(nb_config_set_connect_timeout_ms(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_subscription_queue(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_link_ttl_s(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_download_retry(cfg, 0, 1, 1), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_parallel_downloads(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_config_set_download_timeout_ms(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "download_timeout") != NULL);
    CHECK_STATUS(nb_config_set_min_transfer_rate(cfg, 0), NB_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_error(), "min_transfer_rate") != NULL);
    CHECK_STATUS(nb_config_set_ordered_subscriptions(cfg, false), NB_OK);
    CHECK_STATUS(nb_config_add_allowed_origin(cfg, ""), NB_ERR_INVALID_ARGUMENT);
    /* The config keeps its own last error, readable from any thread. */
    char buf[256];
    size_t needed = 0;
    CHECK_STATUS(nb_config_last_error(cfg, buf, sizeof buf, &needed), NB_OK);
    CHECK(strstr(buf, "origin is empty") != NULL && needed == strlen(buf) + 1);

    /* Connecting where no server listens fails fast, with everything nulled. */
    CHECK_STATUS(nb_config_set_nats_url(cfg, "nats://127.0.0.1:1"), NB_OK);
    CHECK_STATUS(nb_config_set_connect_timeout_ms(cfg, 500), NB_OK);
    nb_client *c = (nb_client *)GARBAGE;
    CHECK_STATUS(nb_client_connect(cfg, &c), NB_ERR_NATS_CONNECTION_FAILED);
    CHECK(c == NULL);
    CHECK_STATUS(nb_config_last_error(cfg, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "NATS_CONNECTION_FAILED") != NULL);
    CHECK_STATUS(nb_config_set_nats_url(cfg, ""), NB_OK);
    CHECK_STATUS(nb_client_connect(cfg, &c), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_client_connect(cfg, NULL), NB_ERR_NULL_ARG);
    nb_config_free(cfg);
}

static void test_send_options_misuse(nb_client *unused) {
    (void)unused;
    CHECK_STATUS(nb_send_options_new(NULL), NB_ERR_NULL_ARG);
    nb_send_options *o = NULL;
    REQUIRE_OK(nb_send_options_new(&o));
    nb_status (*const setters[])(nb_send_options *, const char *) = {
        nb_send_options_set_correlation_id, nb_send_options_set_msg_id,
        nb_send_options_set_msg_purpose,    nb_send_options_set_sender_name,
        nb_send_options_set_sender_id,      nb_send_options_set_receiver_name,
        nb_send_options_set_receiver_id,    nb_send_options_set_reply_to,
        nb_send_options_set_reply_to_msg_id, nb_send_options_set_metadata_json};
    for (size_t i = 0; i < sizeof setters / sizeof setters[0]; i++) {
        CHECK_STATUS(setters[i](NULL, "x"), NB_ERR_NULL_ARG);
        CHECK_STATUS(setters[i](o, BAD_UTF8), NB_ERR_UTF8);
        CHECK_STATUS(setters[i](o, NULL), NB_OK); /* NULL resets to the default */
    }
    CHECK_STATUS(nb_send_options_set_size_threshold(NULL, 1), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_send_options_set_fallback_to_direct(NULL, false), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_send_options_set_confirm(NULL, true), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_send_options_set_progress(NULL, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_send_options_set_progress(o, NULL), NB_OK);
    CHECK_STATUS(nb_progress_new(NULL), NB_ERR_NULL_ARG);
    CHECK(nb_progress_done(NULL) == 0 && nb_progress_total(NULL) == 0);
    nb_progress_free(NULL);
    CHECK_STATUS(nb_send_options_set_metadata_json(o, "[1,2]"), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_send_options_set_metadata_json(o, "{oops"), NB_ERR_INVALID_ARGUMENT);
    nb_send_options_free(o);
}

static nb_payload_in text_payload(const char *dataname, const char *text) {
    nb_payload_in p;
    p.dataname = dataname;
    p.payload_type = "text";
    p.data = (const uint8_t *)text;
    p.len = text ? strlen(text) : 0;
    p.metadata_json = NULL;
    return p;
}

/* A send that must fail with `want`, nulling both outputs: the blocking call and the one
 * that never waits alike. */
static void send_fails(nb_client *c, const char *subject, const nb_payload_in *in, size_t n,
                       const nb_send_options *o, nb_status want, int line) {
    for (int nowait = 0; nowait < 2; nowait++) {
        nb_envelope *env = (nb_envelope *)GARBAGE;
        char *json = (char *)GARBAGE;
        nb_status s = nowait ? nb_client_try_smartsend(c, subject, in, n, o, &env, &json)
                             : nb_client_smartsend(c, subject, in, n, o, &env, &json);
        if (s != want || env != NULL || json != NULL) {
            g_failures++;
            fprintf(stderr, "misuse.c:%d: %s gave %s (want %s), env %p json %p: %s\n", line,
                    nowait ? "try_smartsend" : "smartsend", nb_status_code_name(s),
                    nb_status_code_name(want), (void *)env, (void *)json, last_error());
        }
    }
}

static void test_send_misuse(nb_client *c) {
    nb_payload_in ok = text_payload("msg", "hello");
    send_fails(NULL, "s", &ok, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    send_fails(c, NULL, &ok, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    send_fails(c, "s", NULL, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    send_fails(c, BAD_UTF8, &ok, 1, NULL, NB_ERR_UTF8, __LINE__);
    send_fails(c, "", &ok, 1, NULL, NB_ERR_INVALID_ARGUMENT, __LINE__);
    send_fails(c, "a.*", &ok, 1, NULL, NB_ERR_INVALID_ARGUMENT, __LINE__);
    send_fails(c, "a b", &ok, 1, NULL, NB_ERR_INVALID_ARGUMENT, __LINE__);

    nb_payload_in p = ok;
    p.dataname = NULL;
    send_fails(c, "s", &p, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    p = ok;
    p.payload_type = NULL;
    send_fails(c, "s", &p, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    p = ok;
    p.data = NULL; /* with len 5 */
    send_fails(c, "s", &p, 1, NULL, NB_ERR_NULL_ARG, __LINE__);
    p = ok;
    p.dataname = BAD_UTF8;
    send_fails(c, "s", &p, 1, NULL, NB_ERR_UTF8, __LINE__);
    p = ok;
    p.payload_type = BAD_UTF8;
    send_fails(c, "s", &p, 1, NULL, NB_ERR_UTF8, __LINE__);
    p = ok;
    p.metadata_json = BAD_UTF8;
    send_fails(c, "s", &p, 1, NULL, NB_ERR_UTF8, __LINE__);
    p = ok;
    p.metadata_json = "[]";
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_ARGUMENT, __LINE__);
    p = ok;
    p.dataname = "";
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_ARGUMENT, __LINE__);
    p = ok;
    p.payload_type = "Text";
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_PAYLOAD_TYPE, __LINE__);
    p = text_payload("d", "{not json");
    p.payload_type = "dictionary";
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_PAYLOAD, __LINE__);
    p = text_payload("t", BAD_UTF8); /* text payload bytes must be UTF-8 */
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_PAYLOAD, __LINE__);
    p = text_payload("a", "not arrow");
    p.payload_type = "arrowtable";
    send_fails(c, "s", &p, 1, NULL, NB_ERR_INVALID_PAYLOAD, __LINE__);

    nb_send_options *o = NULL;
    REQUIRE_OK(nb_send_options_new(&o));
    REQUIRE_OK(nb_send_options_set_msg_purpose(o, "gossip"));
    send_fails(c, "s", &ok, 1, o, NB_ERR_INVALID_ARGUMENT, __LINE__);
    CHECK(strstr(last_error(), "msg_purpose") != NULL);
    nb_send_options_free(o);

    /* The client keeps the last failure too. */
    char buf[512];
    CHECK_STATUS(nb_client_last_error(c, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "msg_purpose") != NULL);
    CHECK_STATUS(nb_client_last_error(NULL, buf, sizeof buf, NULL), NB_ERR_NULL_ARG);

    /* A NULL payload array with count 0 is an envelope without payloads; outputs optional. */
    CHECK_STATUS(nb_client_smartsend(c, "misuse.empty", NULL, 0, NULL, NULL, NULL), NB_OK);

    /* Other calls with NULL pointers. */
    CHECK_STATUS(nb_client_flush(NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_close(NULL), NB_ERR_NULL_ARG);
    size_t max = 7;
    CHECK_STATUS(nb_client_max_payload(NULL, &max), NB_ERR_NULL_ARG);
    CHECK(max == 0);
    CHECK_STATUS(nb_client_max_payload(c, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_max_payload(c, &max), NB_OK);
    CHECK(max >= 1024);
    uint64_t dropped = 7;
    CHECK_STATUS(nb_client_dropped(NULL, &dropped), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_dropped(c, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_dropped(c, &dropped), NB_OK);
    CHECK(dropped == 0);
    nb_envelope *env = (nb_envelope *)GARBAGE;
    CHECK_STATUS(nb_client_smartreceive(NULL, (const uint8_t *)"{}", 2, &env), NB_ERR_NULL_ARG);
    CHECK(env == NULL);
    CHECK_STATUS(nb_client_smartreceive(c, NULL, 2, &env), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_smartreceive(c, (const uint8_t *)"{}", 2, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_smartreceive(c, NULL, 0, &env), NB_ERR_INVALID_ENVELOPE);
    CHECK_STATUS(nb_smartreceive(NULL, (const uint8_t *)"{}", 2, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_smartreceive(NULL, NULL, 2, &env), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_smartreceive(NULL, (const uint8_t *)"{}", 2, &env), NB_ERR_INVALID_ENVELOPE);
    CHECK(strstr(last_error(), "payloads") != NULL);
    nb_envelope *reply = (nb_envelope *)GARBAGE;
    CHECK_STATUS(nb_client_request(NULL, "s", &ok, 1, NULL, 100, &reply), NB_ERR_NULL_ARG);
    CHECK(reply == NULL);
    CHECK_STATUS(nb_client_request(c, NULL, &ok, 1, NULL, 100, &reply), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_request(c, "s", &ok, 1, NULL, 100, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_request(c, BAD_UTF8, &ok, 1, NULL, 100, &reply), NB_ERR_UTF8);
    CHECK_STATUS(nb_client_reply(NULL, NULL, &ok, 1, NULL, NULL, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_reply(c, NULL, &ok, 1, NULL, NULL, NULL), NB_ERR_NULL_ARG);
}

static void test_envelope_misuse(nb_client *c) {
    CHECK(nb_envelope_correlation_id(NULL) == NULL);
    CHECK(strstr(last_error(), "NULL") != NULL);
    CHECK(nb_envelope_msg_id(NULL) == NULL);
    CHECK(nb_envelope_timestamp(NULL) == NULL);
    CHECK(nb_envelope_send_to(NULL) == NULL);
    CHECK(nb_envelope_msg_purpose(NULL) == NULL);
    CHECK(nb_envelope_sender_name(NULL) == NULL);
    CHECK(nb_envelope_sender_id(NULL) == NULL);
    CHECK(nb_envelope_receiver_name(NULL) == NULL);
    CHECK(nb_envelope_receiver_id(NULL) == NULL);
    CHECK(nb_envelope_reply_to(NULL) == NULL);
    CHECK(nb_envelope_reply_to_msg_id(NULL) == NULL);
    CHECK(nb_envelope_broker_url(NULL) == NULL);
    CHECK(nb_envelope_metadata_json(NULL) == NULL);
    CHECK(nb_envelope_header_json(NULL) == NULL);
    CHECK(nb_envelope_outline_json(NULL) == NULL);
    {
        const uint8_t *text = (const uint8_t *)GARBAGE;
        size_t text_len = 7;
        CHECK_STATUS(nb_envelope_payload_base64(NULL, 0, &text, &text_len), NB_ERR_NULL_ARG);
        CHECK(text == NULL && text_len == 0);
    }
    CHECK(nb_envelope_payload_count(NULL) == 0);
    CHECK(nb_envelope_payload_id(NULL, 0) == NULL);
    CHECK(nb_envelope_payload_dataname(NULL, 0) == NULL);
    CHECK(nb_envelope_payload_type(NULL, 0) == NULL);
    CHECK(nb_envelope_payload_transport(NULL, 0) == NULL);
    CHECK(!nb_envelope_payload_is_link(NULL, 0));
    CHECK(nb_envelope_payload_size(NULL, 0) == 0);
    CHECK(nb_envelope_payload_url(NULL, 0) == NULL);
    CHECK(nb_envelope_payload_file(NULL, 0) == NULL);
    CHECK(nb_envelope_payload_metadata_json(NULL, 0) == NULL);
    const uint8_t *data = (const uint8_t *)GARBAGE;
    size_t len = 9;
    CHECK_STATUS(nb_envelope_payload_bytes(NULL, 0, &data, &len), NB_ERR_NULL_ARG);
    CHECK(data == NULL && len == 0);
    nb_envelope *copy = (nb_envelope *)GARBAGE;
    CHECK_STATUS(nb_envelope_clone(NULL, &copy), NB_ERR_NULL_ARG);
    CHECK(copy == NULL);

    /* A real envelope, with out-of-range indexes and NULL outputs. */
    nb_payload_in in = text_payload("msg", "hi");
    nb_envelope *env = NULL;
    REQUIRE_OK(nb_client_smartsend(c, "misuse.env", &in, 1, NULL, &env, NULL));
    CHECK(nb_envelope_payload_count(env) == 1);
    CHECK(nb_envelope_payload_dataname(env, 1) == NULL);
    CHECK(strstr(last_error(), "out of range") != NULL);
    CHECK(nb_envelope_payload_size(env, 5) == 0);
    CHECK_STATUS(nb_envelope_payload_bytes(env, 1, &data, &len), NB_ERR_OUT_OF_RANGE);
    CHECK_STATUS(nb_envelope_payload_bytes(env, 0, NULL, &len), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_envelope_payload_bytes(env, 0, &data, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_envelope_clone(env, NULL), NB_ERR_NULL_ARG);
    CHECK(streq(nb_envelope_payload_type(env, 0), "text"));
    /* Replying to an envelope without reply_to is refused. */
    CHECK_STATUS(nb_client_reply(c, env, &in, 1, NULL, NULL, NULL), NB_ERR_INVALID_ARGUMENT);
    nb_envelope_free(env);
}

static void ignore_envelope(void *user_data, const nb_envelope *env, nb_status status) {
    (void)user_data;
    (void)env;
    (void)status;
}

static int g_freed = 0;
static void count_free(void *user_data) {
    (void)user_data;
    g_freed++;
}

static void test_subscription_misuse(nb_client *c) {
    nb_subscription *sub = (nb_subscription *)GARBAGE;
    CHECK_STATUS(nb_client_subscribe(NULL, "s", NULL, &sub), NB_ERR_NULL_ARG);
    CHECK(sub == NULL);
    CHECK_STATUS(nb_client_subscribe(c, NULL, NULL, &sub), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_subscribe(c, "s", NULL, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_subscribe(c, BAD_UTF8, NULL, &sub), NB_ERR_UTF8);
    CHECK_STATUS(nb_client_subscribe(c, "s", BAD_UTF8, &sub), NB_ERR_UTF8);
    CHECK_STATUS(nb_client_subscribe(c, "", NULL, &sub), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_client_subscribe_callback(c, "s", NULL, NULL, NULL, count_free, &sub),
                 NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_subscribe_callback(NULL, "s", NULL, ignore_envelope, NULL, count_free,
                                              &sub),
                 NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_subscribe_callback(c, NULL, NULL, ignore_envelope, NULL, count_free,
                                              &sub),
                 NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_client_subscribe_callback(c, "s", NULL, ignore_envelope, NULL, count_free,
                                              NULL),
                 NB_ERR_NULL_ARG);
    CHECK(g_freed == 0); /* a failed subscribe never takes the user data */

    nb_envelope *env = (nb_envelope *)GARBAGE;
    CHECK_STATUS(nb_subscription_next(NULL, 0, &env), NB_ERR_NULL_ARG);
    CHECK(env == NULL);
    nb_envelope *envs[2] = {(nb_envelope *)GARBAGE, (nb_envelope *)GARBAGE};
    size_t count = 5;
    CHECK_STATUS(nb_subscription_next_batch(NULL, envs, 2, 0, &count), NB_ERR_NULL_ARG);
    CHECK(count == 0);
    int fd = 5;
    CHECK_STATUS(nb_subscription_fd(NULL, &fd), NB_ERR_NULL_ARG);
    CHECK(fd == 0);
    CHECK_STATUS(nb_subscription_set_wake(NULL, NULL, NULL), NB_ERR_NULL_ARG);
    uint64_t dropped = 3;
    CHECK_STATUS(nb_subscription_dropped(NULL, &dropped), NB_ERR_NULL_ARG);
    CHECK(dropped == 0);
    CHECK_STATUS(nb_subscription_close(NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_last_error(NULL, NULL, 0, NULL), NB_ERR_NULL_ARG);

    REQUIRE_OK(nb_client_subscribe(c, "misuse.sub", NULL, &sub));
    CHECK_STATUS(nb_subscription_next(sub, 0, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_next_batch(sub, NULL, 2, 0, &count), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_next_batch(sub, envs, 2, 0, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_next_batch(sub, envs, 0, 0, &count), NB_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(nb_subscription_next_batch(sub, envs, 2, 0, &count), NB_ERR_PULL_TIMEOUT);
    CHECK(envs[0] == NULL && envs[1] == NULL && count == 0);
    char buf[256];
    CHECK_STATUS(nb_subscription_last_error(sub, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "cap must be at least 1") != NULL); /* pull timeouts are not recorded */
    CHECK_STATUS(nb_subscription_fd(sub, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_dropped(sub, NULL), NB_ERR_NULL_ARG);
    CHECK_STATUS(nb_subscription_dropped(sub, &dropped), NB_OK);
    CHECK(dropped == 0);
    /* Closing twice, through the documented path, then freeing. */
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    CHECK_STATUS(nb_subscription_next(sub, 1000, &env), NB_ERR_CLOSED);
    nb_subscription_free(sub);
}

/* A wake callback that tries a blocking call: refused with WRONG_THREAD, not a deadlock. */
typedef struct {
    nb_client *client;
    nb_status status;
    int calls;
} wake_probe;

static int blocking_wake(void *ctx) {
    wake_probe *p = (wake_probe *)ctx;
    nb_status s = nb_client_flush(p->client);
    __atomic_store_n(&p->status, s, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&p->calls, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void test_blocking_call_from_wake(nb_client *c) {
    wake_probe probe;
    probe.client = c;
    probe.status = NB_OK;
    probe.calls = 0;
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "misuse.wake", NULL, &sub));
    REQUIRE_OK(nb_subscription_set_wake(sub, blocking_wake, &probe));
    nb_payload_in in = text_payload("msg", "wake up");
    REQUIRE_OK(nb_client_smartsend(c, "misuse.wake", &in, 1, NULL, NULL, NULL));
    long long deadline = now_ms() + 10000;
    while (__atomic_load_n(&probe.calls, __ATOMIC_SEQ_CST) == 0 && now_ms() < deadline) sleep_ms(5);
    CHECK(__atomic_load_n(&probe.calls, __ATOMIC_SEQ_CST) >= 1);
    CHECK(__atomic_load_n(&probe.status, __ATOMIC_SEQ_CST) == NB_ERR_WRONG_THREAD);
    nb_subscription_free(sub);
}

static void test_closed_client(nb_client *unused) {
    (void)unused;
    nb_client *c = NULL;
    REQUIRE_OK(nb_client_connect(NULL, &c)); /* NULL config: the environment */
    nb_subscription *sub = NULL;
    REQUIRE_OK(nb_client_subscribe(c, "misuse.closed", NULL, &sub));
    CHECK_STATUS(nb_client_close(c), NB_OK);
    CHECK_STATUS(nb_client_close(c), NB_OK); /* closing twice is harmless */
    nb_payload_in in = text_payload("msg", "late");
    nb_envelope *env = (nb_envelope *)GARBAGE;
    char *json = (char *)GARBAGE;
    CHECK_STATUS(nb_client_smartsend(c, "misuse.closed", &in, 1, NULL, &env, &json),
                 NB_ERR_CLOSED);
    CHECK(env == NULL && json == NULL);
    env = (nb_envelope *)GARBAGE;
    json = (char *)GARBAGE;
    CHECK_STATUS(nb_client_try_smartsend(c, "misuse.closed", &in, 1, NULL, &env, &json),
                 NB_ERR_CLOSED);
    CHECK(env == NULL && json == NULL);
    char buf[256];
    CHECK_STATUS(nb_client_last_error(c, buf, sizeof buf, NULL), NB_OK);
    CHECK(strstr(buf, "closed") != NULL);
    CHECK_STATUS(nb_client_flush(c), NB_ERR_CLOSED);
    nb_subscription *sub2 = (nb_subscription *)GARBAGE;
    CHECK_STATUS(nb_client_subscribe(c, "misuse.closed", NULL, &sub2), NB_ERR_CLOSED);
    CHECK(sub2 == NULL);
    CHECK_STATUS(nb_client_subscribe_callback(c, "misuse.closed", NULL, ignore_envelope, NULL,
                                              count_free, &sub2),
                 NB_ERR_CLOSED);
    CHECK(g_freed == 0);
    nb_envelope *reply = (nb_envelope *)GARBAGE;
    CHECK_STATUS(nb_client_request(c, "misuse.closed", &in, 1, NULL, 1000, &reply), NB_ERR_CLOSED);
    CHECK(reply == NULL);
    /* The subscription of a closed client ends. */
    CHECK_STATUS(nb_subscription_next(sub, 5000, &env), NB_ERR_CLOSED);
    CHECK_STATUS(nb_subscription_close(sub), NB_OK);
    nb_subscription_free(sub);
    nb_client_free(c);
}

static void test_runtime_shutdown_and_restart(nb_client *unused) {
    (void)unused;
    CHECK_STATUS(nb_runtime_shutdown(5000), NB_OK);
    CHECK_STATUS(nb_runtime_shutdown(5000), NB_OK); /* idempotent */
    nb_client *c = (nb_client *)GARBAGE;
    CHECK_STATUS(nb_client_connect(NULL, &c), NB_ERR_CLOSED); /* no runtime any more */
    CHECK(c == NULL);
    CHECK(strstr(last_error(), "nb_runtime_init") != NULL);
    CHECK_STATUS(nb_runtime_init(2), NB_OK); /* a new one */
    CHECK_STATUS(nb_client_connect(NULL, &c), NB_OK);
    CHECK_STATUS(nb_client_flush(c), NB_OK);
    nb_client_free(c);
    CHECK_STATUS(nb_runtime_shutdown(5000), NB_OK);
}

int main(void) {
    if (getenv("NATS_URL") == NULL) {
        fprintf(stderr, "misuse: set NATS_URL (tests/c/run.sh does)\n");
        return 2;
    }
    nb_config *cfg = test_config();
    nb_client *c = NULL;
    REQUIRE_OK(nb_client_connect(cfg, &c));

    RUN(test_library_functions, c);
    RUN(test_config_misuse, c);
    RUN(test_send_options_misuse, c);
    RUN(test_send_misuse, c);
    RUN(test_envelope_misuse, c);
    RUN(test_subscription_misuse, c);
    RUN(test_blocking_call_from_wake, c);
    RUN(test_closed_client, c);

    nb_client_free(c); /* frees an open client: closes it first */
    nb_config_free(cfg);
    RUN(test_runtime_shutdown_and_restart, NULL);
    return finish("misuse");
}
