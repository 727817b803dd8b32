'use strict';
// Every koffi declaration of the binding lives here: the library lookup, the ABI check, the
// types of include/natsbridge.h, and one `lib.func('<C prototype>')` per function called.
// Prototypes use the header's own type names; `_Out_` marks out-parameters that koffi copies
// back. Out-parameters that hand out memory the binding must free with the library
// (`char **out_json`, the `nb_envelope **envs` array) are passed as raw pointer-sized Buffers
// instead, so the pointer is not lost to an automatic conversion.
//
// Header functions not declared, on purpose: the callback ones (nb_log_set_callback,
// nb_client_subscribe_callback, nb_subscription_set_wake) would run JavaScript on library
// threads; nb_subscription_fd cannot be watched safely from Node (net.Socket takes ownership
// of the fd and closes it, racing with nb_subscription_free); the single-item and per-field
// accessors are covered by nb_subscription_next_batch and nb_envelope_outline_json (one call per
// envelope instead of one per field: each call through koffi costs about a microsecond). Not
// exposed yet: upload progress (nb_progress_*, nb_send_options_set_progress) and downloads into
// files (nb_config_set_download_dir, nb_envelope_payload_file).
//
// nb_client_try_smartsend is the one send made on the JavaScript thread: it never waits (it
// answers WOULD_BLOCK instead, and the send goes to nb_client_smartsend on the pool). A send
// with `confirm` waits for the server by definition: it goes to the pool without trying.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

/** The ABI version this binding was written for (NB_ABI_VERSION of include/natsbridge.h). */
const ABI_VERSION = 1;

// The library's blocking calls poll their work on the calling thread's stack. koffi runs
// `.async` calls on a stack of its own, 128 KiB by default: too small for a debug build of the
// library. Raise it (only possible before koffi loads its first library in this process).
const ASYNC_STACK_SIZE = 4 * 1024 * 1024;
try {
  if (koffi.config().async_stack_size < ASYNC_STACK_SIZE) {
    koffi.config({ async_stack_size: ASYNC_STACK_SIZE });
  }
} catch (_) {
  // Another module loaded a library through koffi first; checked again below.
}

function candidates() {
  if (process.env.NATSBRIDGE_LIB) return [process.env.NATSBRIDGE_LIB];
  const root = path.resolve(__dirname, '..', '..', '..');
  return ['release', 'debug'].map((p) => path.join(root, 'target', p, 'libnatsbridge.so'));
}

function loadLibrary() {
  const tried = candidates();
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(
      'natsbridge: cannot find libnatsbridge (looked for ' + tried.join(', ') + '). ' +
        'Build it at the repository root with `cargo build --release` (or `cargo build --lib`), ' +
        'or set NATSBRIDGE_LIB to the path of libnatsbridge.so.',
    );
  }
  try {
    return { lib: koffi.load(found), path: found };
  } catch (e) {
    throw new Error('natsbridge: cannot load ' + found + ': ' + e.message);
  }
}

const loaded = loadLibrary();
const lib = loaded.lib;

// ---- types -----------------------------------------------------------------------------

koffi.alias('nb_status', 'int32_t');
koffi.opaque('nb_client');
koffi.opaque('nb_config');
koffi.opaque('nb_envelope');
koffi.opaque('nb_send_options');
koffi.opaque('nb_subscription');
koffi.struct('nb_payload_in', {
  dataname: 'const char *',
  payload_type: 'const char *',
  data: 'const uint8_t *',
  len: 'size_t',
  metadata_json: 'const char *',
});

// ---- functions -------------------------------------------------------------------------

const fn = {
  // library
  nb_version: lib.func('const char *nb_version(void)'),
  nb_abi_version: lib.func('uint32_t nb_abi_version(void)'),
  nb_log_set_level: lib.func('nb_status nb_log_set_level(int32_t level)'),
  nb_string_free: lib.func('void nb_string_free(char *s)'),
  nb_last_error_message: lib.func('nb_status nb_last_error_message(char *buf, size_t cap, _Out_ size_t *needed)'),
  nb_status_str: lib.func('const char *nb_status_str(nb_status status)'),
  nb_status_code_name: lib.func('const char *nb_status_code_name(nb_status status)'),

  // client
  nb_client_connect: lib.func('nb_status nb_client_connect(const nb_config *cfg, _Out_ nb_client **out)'),
  nb_client_flush: lib.func('nb_status nb_client_flush(const nb_client *client)'),
  nb_client_close: lib.func('nb_status nb_client_close(const nb_client *client)'),
  nb_client_free: lib.func('void nb_client_free(nb_client *client)'),
  nb_client_smartsend: lib.func(
    'nb_status nb_client_smartsend(const nb_client *client, const char *subject, const nb_payload_in *payloads, size_t payload_count, const nb_send_options *options, _Out_ nb_envelope **out_envelope, char **out_json)',
  ),
  nb_client_try_smartsend: lib.func(
    'nb_status nb_client_try_smartsend(const nb_client *client, const char *subject, const nb_payload_in *payloads, size_t payload_count, const nb_send_options *options, _Out_ nb_envelope **out_envelope, char **out_json)',
  ),
  nb_client_smartreceive: lib.func(
    'nb_status nb_client_smartreceive(const nb_client *client, const uint8_t *message, size_t len, _Out_ nb_envelope **out)',
  ),
  nb_smartreceive: lib.func(
    'nb_status nb_smartreceive(const nb_config *cfg, const uint8_t *message, size_t len, _Out_ nb_envelope **out)',
  ),
  nb_client_request: lib.func(
    'nb_status nb_client_request(const nb_client *client, const char *subject, const nb_payload_in *payloads, size_t payload_count, const nb_send_options *options, int64_t timeout_ms, _Out_ nb_envelope **out_reply)',
  ),
  nb_client_reply: lib.func(
    'nb_status nb_client_reply(const nb_client *client, const nb_envelope *request, const nb_payload_in *payloads, size_t payload_count, const nb_send_options *options, _Out_ nb_envelope **out_envelope, char **out_json)',
  ),
  nb_client_max_payload: lib.func('nb_status nb_client_max_payload(const nb_client *client, _Out_ size_t *out)'),
  nb_client_dropped: lib.func('nb_status nb_client_dropped(const nb_client *client, _Out_ uint64_t *out)'),
  nb_client_last_error: lib.func(
    'nb_status nb_client_last_error(const nb_client *client, char *buf, size_t cap, _Out_ size_t *needed)',
  ),
  nb_client_subscribe: lib.func(
    'nb_status nb_client_subscribe(const nb_client *client, const char *subject, const char *queue_group, _Out_ nb_subscription **out)',
  ),

  // config
  nb_config_from_env: lib.func('nb_status nb_config_from_env(_Out_ nb_config **out)'),
  nb_config_free: lib.func('void nb_config_free(nb_config *cfg)'),
  nb_config_set_nats_url: lib.func('nb_status nb_config_set_nats_url(nb_config *cfg, const char *url)'),
  nb_config_set_fileserver_url: lib.func('nb_status nb_config_set_fileserver_url(nb_config *cfg, const char *url)'),
  nb_config_set_fileserver_token: lib.func('nb_status nb_config_set_fileserver_token(nb_config *cfg, const char *token)'),
  nb_config_set_size_threshold: lib.func('nb_status nb_config_set_size_threshold(nb_config *cfg, size_t bytes)'),
  nb_config_set_sender_name: lib.func('nb_status nb_config_set_sender_name(nb_config *cfg, const char *name)'),
  nb_config_set_client_name: lib.func('nb_status nb_config_set_client_name(nb_config *cfg, const char *name)'),
  nb_config_set_connect_timeout_ms: lib.func('nb_status nb_config_set_connect_timeout_ms(nb_config *cfg, uint64_t ms)'),
  nb_config_set_operation_timeout_ms: lib.func(
    'nb_status nb_config_set_operation_timeout_ms(nb_config *cfg, uint64_t ms)',
  ),
  nb_config_set_http_idle_timeout_ms: lib.func(
    'nb_status nb_config_set_http_idle_timeout_ms(nb_config *cfg, uint64_t ms)',
  ),
  nb_config_set_subscription_queue: lib.func(
    'nb_status nb_config_set_subscription_queue(nb_config *cfg, size_t envelopes)',
  ),
  nb_config_set_token: lib.func('nb_status nb_config_set_token(nb_config *cfg, const char *token)'),
  nb_config_set_user_password: lib.func(
    'nb_status nb_config_set_user_password(nb_config *cfg, const char *user, const char *password)',
  ),
  nb_config_set_creds_file: lib.func('nb_status nb_config_set_creds_file(nb_config *cfg, const char *path)'),
  nb_config_clear_credentials: lib.func('nb_status nb_config_clear_credentials(nb_config *cfg)'),
  nb_config_set_tls_required: lib.func('nb_status nb_config_set_tls_required(nb_config *cfg, bool required)'),
  nb_config_add_tls_root_certificate: lib.func(
    'nb_status nb_config_add_tls_root_certificate(nb_config *cfg, const char *pem_path)',
  ),
  nb_config_set_tls_client_certificate: lib.func(
    'nb_status nb_config_set_tls_client_certificate(nb_config *cfg, const char *cert_path, const char *key_path)',
  ),
  nb_config_set_link_oneshot: lib.func('nb_status nb_config_set_link_oneshot(nb_config *cfg, bool oneshot)'),
  nb_config_set_link_ttl_s: lib.func('nb_status nb_config_set_link_ttl_s(nb_config *cfg, uint64_t seconds)'),
  nb_config_set_fallback_to_direct: lib.func(
    'nb_status nb_config_set_fallback_to_direct(nb_config *cfg, bool fallback)',
  ),
  nb_config_add_allowed_origin: lib.func('nb_status nb_config_add_allowed_origin(nb_config *cfg, const char *origin)'),
  nb_config_set_max_download_bytes: lib.func(
    'nb_status nb_config_set_max_download_bytes(nb_config *cfg, uint64_t bytes)',
  ),
  nb_config_set_download_retry: lib.func(
    'nb_status nb_config_set_download_retry(nb_config *cfg, uint32_t max_attempts, uint64_t base_delay_ms, uint64_t max_delay_ms)',
  ),
  nb_config_set_parallel_downloads: lib.func('nb_status nb_config_set_parallel_downloads(nb_config *cfg, size_t n)'),
  nb_config_set_download_timeout_ms: lib.func('nb_status nb_config_set_download_timeout_ms(nb_config *cfg, uint64_t ms)'),
  nb_config_set_min_transfer_rate: lib.func(
    'nb_status nb_config_set_min_transfer_rate(nb_config *cfg, uint64_t bytes_per_second)',
  ),
  nb_config_set_ordered_subscriptions: lib.func(
    'nb_status nb_config_set_ordered_subscriptions(nb_config *cfg, bool ordered)',
  ),
  nb_config_last_error: lib.func(
    'nb_status nb_config_last_error(const nb_config *cfg, char *buf, size_t cap, _Out_ size_t *needed)',
  ),

  // envelope
  nb_envelope_free: lib.func('void nb_envelope_free(nb_envelope *env)'),
  nb_envelope_header_json: lib.func('const char *nb_envelope_header_json(const nb_envelope *env)'),
  nb_envelope_outline_json: lib.func('const char *nb_envelope_outline_json(const nb_envelope *env)'),
  nb_envelope_payload_bytes: lib.func(
    'nb_status nb_envelope_payload_bytes(const nb_envelope *env, size_t index, _Out_ const uint8_t **data, _Out_ size_t *len)',
  ),

  // send options
  nb_send_options_new: lib.func('nb_status nb_send_options_new(_Out_ nb_send_options **out)'),
  nb_send_options_free: lib.func('void nb_send_options_free(nb_send_options *opts)'),
  nb_send_options_set_correlation_id: lib.func(
    'nb_status nb_send_options_set_correlation_id(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_msg_id: lib.func('nb_status nb_send_options_set_msg_id(nb_send_options *opts, const char *value)'),
  nb_send_options_set_msg_purpose: lib.func(
    'nb_status nb_send_options_set_msg_purpose(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_sender_name: lib.func(
    'nb_status nb_send_options_set_sender_name(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_sender_id: lib.func(
    'nb_status nb_send_options_set_sender_id(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_receiver_name: lib.func(
    'nb_status nb_send_options_set_receiver_name(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_receiver_id: lib.func(
    'nb_status nb_send_options_set_receiver_id(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_reply_to: lib.func(
    'nb_status nb_send_options_set_reply_to(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_reply_to_msg_id: lib.func(
    'nb_status nb_send_options_set_reply_to_msg_id(nb_send_options *opts, const char *value)',
  ),
  nb_send_options_set_metadata_json: lib.func(
    'nb_status nb_send_options_set_metadata_json(nb_send_options *opts, const char *json)',
  ),
  nb_send_options_set_size_threshold: lib.func(
    'nb_status nb_send_options_set_size_threshold(nb_send_options *opts, size_t bytes)',
  ),
  nb_send_options_set_fallback_to_direct: lib.func(
    'nb_status nb_send_options_set_fallback_to_direct(nb_send_options *opts, bool fallback)',
  ),
  nb_send_options_set_confirm: lib.func('nb_status nb_send_options_set_confirm(nb_send_options *opts, bool confirm)'),

  // subscription
  nb_subscription_next_batch: lib.func(
    'nb_status nb_subscription_next_batch(const nb_subscription *sub, nb_envelope **envs, size_t cap, int64_t timeout_ms, _Out_ size_t *count)',
  ),
  nb_subscription_dropped: lib.func('nb_status nb_subscription_dropped(const nb_subscription *sub, _Out_ uint64_t *out)'),
  nb_subscription_close: lib.func('nb_status nb_subscription_close(const nb_subscription *sub)'),
  nb_subscription_free: lib.func('void nb_subscription_free(nb_subscription *sub)'),
  nb_subscription_last_error: lib.func(
    'nb_status nb_subscription_last_error(const nb_subscription *sub, char *buf, size_t cap, _Out_ size_t *needed)',
  ),
};

// ---- checks at load --------------------------------------------------------------------

const abi = fn.nb_abi_version();
if (abi !== ABI_VERSION) {
  throw new Error(
    'natsbridge: ' + loaded.path + ' has C ABI version ' + abi + ', this binding was written for ' +
      'version ' + ABI_VERSION + '. Rebuild the library from the same checkout (cargo build --release) or ' +
      'point NATSBRIDGE_LIB at a matching libnatsbridge.so.',
  );
}
if (koffi.config().async_stack_size < ASYNC_STACK_SIZE) {
  throw new Error(
    "natsbridge: koffi's async stack is " + koffi.config().async_stack_size + ' bytes, natsbridge ' +
      'needs ' + ASYNC_STACK_SIZE + ": require('natsbridge') before any other module loads a " +
      'library with koffi, or call koffi.config({ async_stack_size: ' + ASYNC_STACK_SIZE + ' }) first.',
  );
}

// ---- status constants (NB_OK, NB_ERR_* of the header) ------------------------------------

const status = Object.freeze({
  OK: 0,
  INVALID_ARGUMENT: -1,
  TIMEOUT: -2,
  CLOSED: -3,
  INTERNAL: -4,
  NATS_CONNECTION_FAILED: -10,
  SLOW_CONSUMER: -11,
  NO_RESPONDERS: -12,
  MESSAGES_DROPPED: -13,
  INVALID_ENVELOPE: -20,
  INVALID_PAYLOAD_TYPE: -21,
  INVALID_TRANSPORT: -22,
  INVALID_PAYLOAD: -23,
  DESERIALIZATION_ERROR: -24,
  PAYLOAD_TOO_LARGE: -25,
  UPLOAD_FAILED: -30,
  DOWNLOAD_FAILED: -31,
  LINK_URL_REJECTED: -32,
  INTEGRITY_ERROR: -33,
  NULL_ARG: -100,
  UTF8: -101,
  BUFFER_TOO_SMALL: -102,
  PANIC: -103,
  PULL_TIMEOUT: -104,
  OUT_OF_RANGE: -105,
  WRONG_THREAD: -106,
  WOULD_BLOCK: -107,
});

/** Log levels of nb_log_set_level (NB_LOG_*). */
const logLevel = Object.freeze({ off: 0, warn: 1, info: 2, debug: 3 });

const POINTER_SIZE = koffi.sizeof('void *');

/** Reads a pointer written by the library into a pointer-sized (or larger) Buffer. */
function readPointer(buf, index = 0) {
  return koffi.decode(buf, index * POINTER_SIZE, 'void *');
}

/** Copies `len` bytes at `ptr` (library memory) into a new Buffer owned by JavaScript. */
function copyBytes(ptr, len) {
  if (!len) return Buffer.alloc(0);
  if (len <= 65536) {
    const copy = koffi.decode(ptr, 'uint8_t', len); // a Uint8Array of its own
    return Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
  }
  // Larger: one memcpy into an uninitialized Buffer is faster.
  const out = Buffer.allocUnsafe(len);
  out.set(new Uint8Array(koffi.view(ptr, len)));
  return out;
}

/** Reads a NUL-terminated string at `ptr` (library memory). */
function readString(ptr) {
  return koffi.decode(ptr, 'char', -1);
}

/**
 * Calls `func` on libuv's thread pool (koffi `.async`); resolves with its return value.
 * koffi lends a Buffer (and a Buffer inside a struct, such as a payload's bytes) to the call by
 * its address without holding it: `args`, held by the completion callback, keeps every argument
 * alive until the call has returned, whatever the caller still refers to.
 */
function callAsync(func, ...args) {
  return new Promise((resolve, reject) => {
    func.async(...args, (err, res) => {
      args.length = 0;
      if (err) reject(err);
      else resolve(res);
    });
  });
}

/** Reads an error text through one of the `(…, char *buf, size_t cap, size_t *needed)` calls. */
function readErrorText(read) {
  let cap = 512;
  for (let i = 0; i < 3; i++) {
    const buf = Buffer.alloc(cap);
    const needed = [0];
    const st = read(buf, cap, needed);
    if (st === status.OK) return buf.toString('utf8', 0, Math.max(0, needed[0] - 1));
    if (st !== status.BUFFER_TOO_SMALL) return '';
    cap = needed[0];
  }
  return '';
}

module.exports = {
  koffi,
  fn,
  status,
  logLevel,
  ABI_VERSION,
  libraryPath: loaded.path,
  POINTER_SIZE,
  readPointer,
  copyBytes,
  readString,
  callAsync,
  readErrorText,
};
