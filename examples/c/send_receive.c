/* natsbridge from C: send an envelope of three payloads and receive it back.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -Wall -Wextra -o send_receive examples/c/send_receive.c -Iinclude \
 *      -Ltarget/release -lnatsbridge -Wl,-rpath,"$PWD/target/release"
 * Run next to a nats-server (and a file server for payloads of 500 kB or more):
 *   NATS_URL=nats://127.0.0.1:4222 ./send_receive
 */
#include <stdio.h>
#include <string.h>

#include "natsbridge.h"

/* Prints what went wrong and returns 1 from main. */
static int fail(const char *what, nb_status status) {
    char message[1024];
    nb_last_error_message(message, sizeof message, NULL);
    fprintf(stderr, "%s failed: %s (%s)\n  %s\n", what, nb_status_code_name(status),
            nb_status_str(status), message);
    return 1;
}

int main(void) {
    if (nb_abi_version() != NB_ABI_VERSION) {
        fprintf(stderr, "libnatsbridge ABI %u, header ABI %u\n", nb_abi_version(),
                NB_ABI_VERSION);
        return 1;
    }
    printf("natsbridge %s\n", nb_version());

    /* Configuration: defaults, then NATS_URL / FILESERVER_URL / SIZE_THRESHOLD. */
    nb_config *cfg = NULL;
    nb_status s = nb_config_from_env(&cfg);
    if (s != NB_OK) return fail("nb_config_from_env", s);
    nb_config_set_sender_name(cfg, "c-example");

    nb_client *client = NULL;
    s = nb_client_connect(cfg, &client);
    nb_config_free(cfg); /* the client keeps its own copy */
    if (s != NB_OK) return fail("nb_client_connect", s);

    /* Subscribe first, so the envelope we send comes back to us. */
    nb_subscription *sub = NULL;
    s = nb_client_subscribe(client, "example.c.chat", NULL, &sub);
    if (s != NB_OK) return fail("nb_client_subscribe", s);

    /* Payloads are (dataname, payload_type, bytes): the library copies them. */
    const char text[] = "Hello from C";
    const char dict[] = "{\"temperature\": 21.5, \"unit\": \"C\"}";
    const unsigned char blob[4] = {0xde, 0xad, 0xbe, 0xef};
    nb_payload_in payloads[3] = {
        {"msg", "text", (const uint8_t *)text, strlen(text), NULL},
        {"reading", "dictionary", (const uint8_t *)dict, strlen(dict), NULL},
        {"raw", "binary", blob, sizeof blob, NULL},
    };
    nb_send_options *opts = NULL;
    nb_send_options_new(&opts);
    nb_send_options_set_msg_purpose(opts, "event");

    char *msg_json = NULL;
    s = nb_client_smartsend(client, "example.c.chat", payloads, 3, opts, NULL, &msg_json);
    nb_send_options_free(opts);
    if (s != NB_OK) return fail("nb_client_smartsend", s);
    printf("published %zu bytes of JSON\n", strlen(msg_json));
    nb_string_free(msg_json);

    /* Wait up to 5 s for it. */
    nb_envelope *env = NULL;
    s = nb_subscription_next(sub, 5000, &env);
    if (s != NB_OK) return fail("nb_subscription_next", s);
    printf("received %s (correlation %s) from %s\n", nb_envelope_msg_id(env),
           nb_envelope_correlation_id(env), nb_envelope_sender_name(env));
    for (size_t i = 0; i < nb_envelope_payload_count(env); i++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        nb_envelope_payload_bytes(env, i, &data, &len);
        printf("  %-8s %-10s %-6s %zu bytes", nb_envelope_payload_dataname(env, i),
               nb_envelope_payload_type(env, i), nb_envelope_payload_transport(env, i), len);
        if (strcmp(nb_envelope_payload_type(env, i), "binary") != 0)
            printf(": %.*s", (int)len, (const char *)data);
        printf("\n");
    }
    nb_envelope_free(env);

    nb_subscription_free(sub);
    nb_client_close(client);
    nb_client_free(client);
    nb_runtime_shutdown(2000);
    return 0;
}
