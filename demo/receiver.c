/* The demo's C receiver: waits for one envelope on SUBJECT, prints each payload (type,
 * transport, size, sha256) and answers with an ACK envelope on the sender's reply_to.
 *
 *   demo_receiver SUBJECT NAME      (NATS_URL / FILESERVER_URL from the environment)
 */
#include <stdio.h>
#include <string.h>

#include "natsbridge.h"
#include "sha256.h" /* examples/c/sha256.h */

/* ---- the receiver -------------------------------------------------------------------- */
static int fail(const char *what, nb_status status) {
    char message[1024];
    nb_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "[c] %s failed: %s: %s\n", what, nb_status_code_name(status), message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s SUBJECT NAME\n", argv[0]);
        return 2;
    }
    const char *subject = argv[1], *name = argv[2];
    if (nb_abi_version() != NB_ABI_VERSION) {
        fprintf(stderr, "[c] library ABI %u, header ABI %u\n", nb_abi_version(), NB_ABI_VERSION);
        return 1;
    }
    nb_config *cfg = NULL;
    nb_status s = nb_config_from_env(&cfg);
    if (s != NB_OK) return fail("configuration", s);
    nb_config_set_sender_name(cfg, name);
    nb_client *client = NULL;
    s = nb_client_connect(cfg, &client);
    nb_config_free(cfg);
    if (s != NB_OK) return fail("connect", s);
    nb_subscription *sub = NULL;
    s = nb_client_subscribe(client, subject, NULL, &sub);
    if (s != NB_OK) return fail("subscribe", s);
    printf("[%s] ready, listening on %s\n", name, subject);
    fflush(stdout);

    nb_envelope *env = NULL;
    s = nb_subscription_next(sub, 60000, &env);
    if (s != NB_OK) return fail("receive", s);
    size_t n = nb_envelope_payload_count(env);
    printf("[%s] envelope %s from %s (%zu payloads)\n", name, nb_envelope_msg_id(env),
           nb_envelope_sender_name(env), n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *bytes = NULL;
        size_t len = 0;
        nb_envelope_payload_bytes(env, i, &bytes, &len);
        char hex[65];
        nb_sha256_hex(bytes, len, hex);
        printf("[%s]   %-8s %-11s %-6s %9zu bytes  sha256 %.16s\n", name,
               nb_envelope_payload_dataname(env, i), nb_envelope_payload_type(env, i),
               nb_envelope_payload_transport(env, i), len, hex);
    }
    fflush(stdout);

    /* ACK on the sender's reply_to, naming the message we answer. */
    char ack[256];
    snprintf(ack, sizeof ack, "%s received %zu payloads", name, n);
    nb_payload_in reply[1] = {{"ack", "text", (const uint8_t *)ack, strlen(ack), NULL}};
    nb_send_options *opts = NULL;
    nb_send_options_new(&opts);
    nb_send_options_set_msg_purpose(opts, "ACK");
    s = nb_client_reply(client, env, reply, 1, opts, NULL, NULL);
    nb_send_options_free(opts);
    if (s != NB_OK) return fail("reply", s);

    nb_envelope_free(env);
    nb_subscription_close(sub);
    nb_subscription_free(sub);
    nb_client_close(client);
    nb_client_free(client);
    return 0;
}
