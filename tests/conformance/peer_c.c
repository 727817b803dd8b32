/* The C peer of the conformance matrix (tests/conformance/matrix.py), on libnatsbridge.
 *
 *   peer_c send SUBJECT SPEC      publishes one envelope described by SPEC (below)
 *   peer_c recv SUBJECT TIMEOUT_MS
 *       subscribes, prints "ready", takes one envelope and prints its report (JSON):
 *       {"header": <nb_envelope_header_json>, "payloads": [{"dataname", "payload_type",
 *        "transport", "size", "sha256" (of the serialized bytes), "value"}]}
 *       "value" is the text for text payloads and the payload's own JSON for dictionary and
 *       jsontable (the library has checked it is JSON); other types have none.
 *
 * NATS_URL and FILESERVER_URL come from the environment (nb_config_from_env).
 *
 * SPEC is a flat file written by the orchestrator (C has no JSON parser), one item a line,
 * strings as hex of their UTF-8 bytes ("-" = empty):
 *   threshold BYTES
 *   option NAME HEX            correlation_id, msg_id, msg_purpose, sender_name, sender_id,
 *                              receiver_name, receiver_id, reply_to, reply_to_msg_id, metadata
 *   payload DATANAME_HEX TYPE PATH_HEX   the payload's serialized bytes are the file's
 * Exit status 0 on success; on failure a message on stderr and status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "natsbridge.h"
#include "sha256.h"
#include "text_io.h"

static const char *last_error(void) {
    static char buf[4096];
    nb_last_error_message(buf, sizeof buf, NULL);
    return buf;
}

static void die(const char *what, nb_status st) {
    fprintf(stderr, "peer_c: %s: %s (%s)\n", what, nb_status_code_name(st), last_error());
    exit(1);
}

#define OK(expr)                                 \
    do {                                         \
        nb_status st_ = (expr);                  \
        if (st_ != NB_OK) die(#expr, st_);       \
    } while (0)

/* A whole file, or exit: the spec names files the orchestrator wrote. */
static uint8_t *read_file(const char *path, size_t *len) {
    uint8_t *buf = nb_read_file(path, len);
    if (buf == NULL) exit(1);
    return buf;
}

/* Hex-decoded in place, or exit. */
static char *unhex(char *s) {
    if (nb_unhex(s) < 0) {
        fprintf(stderr, "peer_c: bad hex in the spec: %s\n", s);
        exit(1);
    }
    return s;
}

static nb_status set_option(nb_send_options *o, const char *name, const char *value) {
    if (strcmp(name, "correlation_id") == 0) return nb_send_options_set_correlation_id(o, value);
    if (strcmp(name, "msg_id") == 0) return nb_send_options_set_msg_id(o, value);
    if (strcmp(name, "msg_purpose") == 0) return nb_send_options_set_msg_purpose(o, value);
    if (strcmp(name, "sender_name") == 0) return nb_send_options_set_sender_name(o, value);
    if (strcmp(name, "sender_id") == 0) return nb_send_options_set_sender_id(o, value);
    if (strcmp(name, "receiver_name") == 0) return nb_send_options_set_receiver_name(o, value);
    if (strcmp(name, "receiver_id") == 0) return nb_send_options_set_receiver_id(o, value);
    if (strcmp(name, "reply_to") == 0) return nb_send_options_set_reply_to(o, value);
    if (strcmp(name, "reply_to_msg_id") == 0) return nb_send_options_set_reply_to_msg_id(o, value);
    if (strcmp(name, "metadata") == 0) return nb_send_options_set_metadata_json(o, value);
    fprintf(stderr, "peer_c: unknown option %s in the spec\n", name);
    exit(1);
}

#define MAX_PAYLOADS 64

static int do_send(const char *subject, const char *spec_path) {
    FILE *spec = fopen(spec_path, "r");
    if (spec == NULL) {
        fprintf(stderr, "peer_c: cannot open %s\n", spec_path);
        return 1;
    }
    nb_send_options *opts = NULL;
    OK(nb_send_options_new(&opts));
    nb_payload_in in[MAX_PAYLOADS];
    char *names[MAX_PAYLOADS];
    char *types[MAX_PAYLOADS];
    uint8_t *bufs[MAX_PAYLOADS];
    size_t count = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, spec) != -1) {
        char *tok[5];
        int n = nb_split(line, tok, 5);
        if (n == 0) continue;
        if (strcmp(tok[0], "threshold") == 0 && n == 2) {
            OK(nb_send_options_set_size_threshold(opts, (size_t)strtoull(tok[1], NULL, 10)));
        } else if (strcmp(tok[0], "option") == 0 && n == 3) {
            nb_status st = set_option(opts, tok[1], unhex(tok[2]));
            if (st != NB_OK) die(tok[1], st);
        } else if (strcmp(tok[0], "payload") == 0 && n == 4 && count < MAX_PAYLOADS) {
            size_t len = 0;
            names[count] = strdup(unhex(tok[1]));
            types[count] = strdup(tok[2]);
            bufs[count] = read_file(unhex(tok[3]), &len);
            in[count].dataname = names[count];
            in[count].payload_type = types[count];
            in[count].data = len ? bufs[count] : NULL;
            in[count].len = len;
            in[count].metadata_json = NULL;
            count++;
        } else {
            fprintf(stderr, "peer_c: cannot read the spec line starting with '%s'\n", tok[0]);
            return 1;
        }
    }
    free(line);
    fclose(spec);

    nb_config *cfg = NULL;
    OK(nb_config_from_env(&cfg));
    nb_client *client = NULL;
    OK(nb_client_connect(cfg, &client));
    OK(nb_client_smartsend(client, subject, in, count, opts, NULL, NULL));
    OK(nb_client_close(client)); /* flushes: the envelope has reached the server */
    nb_client_free(client);
    nb_config_free(cfg);
    nb_send_options_free(opts);
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
        free(types[i]);
        free(bufs[i]);
    }
    return 0;
}

/* Writes bytes as a JSON string: quotes, backslashes and control characters escaped, the
 * rest (UTF-8, checked by the library for text payloads) as it is. */
static void json_string(const uint8_t *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void json_cstring(const char *s) {
    json_string((const uint8_t *)s, strlen(s));
}

static int do_recv(const char *subject, long long timeout_ms) {
    nb_config *cfg = NULL;
    OK(nb_config_from_env(&cfg));
    nb_client *client = NULL;
    OK(nb_client_connect(cfg, &client));
    nb_subscription *sub = NULL;
    OK(nb_client_subscribe(client, subject, NULL, &sub)); /* the server knows the interest */
    printf("ready\n");
    fflush(stdout);

    nb_envelope *env = NULL;
    OK(nb_subscription_next(sub, (int64_t)timeout_ms, &env));
    printf("{\"header\": %s, \"payloads\": [", nb_envelope_header_json(env));
    size_t n = nb_envelope_payload_count(env);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        OK(nb_envelope_payload_bytes(env, i, &data, &len));
        char hex[65];
        nb_sha256_hex(data, len, hex);
        const char *type = nb_envelope_payload_type(env, i);
        printf("%s{\"dataname\": ", i ? ", " : "");
        json_cstring(nb_envelope_payload_dataname(env, i));
        printf(", \"payload_type\": ");
        json_cstring(type);
        printf(", \"transport\": ");
        json_cstring(nb_envelope_payload_transport(env, i));
        printf(", \"size\": %llu, \"sha256\": \"%s\"",
               (unsigned long long)nb_envelope_payload_size(env, i), hex);
        if (strcmp(type, "text") == 0) {
            printf(", \"value\": ");
            json_string(data, len);
        } else if (strcmp(type, "dictionary") == 0 || strcmp(type, "jsontable") == 0) {
            printf(", \"value\": ");
            fwrite(data, 1, len, stdout);
        }
        printf("}");
    }
    printf("]}\n");
    fflush(stdout);
    nb_envelope_free(env);
    nb_subscription_free(sub);
    OK(nb_client_close(client));
    nb_client_free(client);
    nb_config_free(cfg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "send") == 0) return do_send(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "recv") == 0) return do_recv(argv[2], atoll(argv[3]));
    fprintf(stderr, "usage: peer_c send SUBJECT SPEC | peer_c recv SUBJECT TIMEOUT_MS\n");
    return 2;
}
