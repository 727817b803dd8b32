/* The demo's C receiver: waits for one envelope on SUBJECT, prints each payload (type,
 * transport, size, sha256) and answers with an ACK envelope on the sender's reply_to.
 *
 *   demo_receiver SUBJECT NAME      (NATS_URL / FILESERVER_URL from the environment)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "natsbridge.h"

/* ---- SHA-256 (FIPS 180-4), enough for printing a checksum ---------------------------- */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t tail[128] = {0};
    size_t full = len / 64 * 64, rest = len - full;
    for (size_t i = 0; i < full; i += 64) sha256_block(h, data + i);
    if (rest) memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < tail_len; i += 64) sha256_block(h, tail + i);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08" PRIx32, h[i]);
}

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
        sha256_hex(bytes, len, hex);
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
