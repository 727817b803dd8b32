'use strict';
// Options objects -> native nb_config / nb_send_options. Connection settings are camelCase;
// envelope fields keep the wire's names (`correlation_id`, `msg_purpose`, ...), the same names
// the received Envelope has. Unknown keys are refused, so that a misspelt option never goes
// silently unused.

const { fn } = require('./ffi');
const { makeError, check, detail } = require('./errors');

const CONFIG_KEYS = new Set([
  'natsUrl',
  'fileserverUrl',
  'fileserverToken',
  'sizeThreshold',
  'senderName',
  'name',
  'connectTimeout',
  'operationTimeout',
  'httpIdleTimeout',
  'subscriptionQueue',
  'token',
  'user',
  'pass',
  'credsFile',
  'tls',
  'linkOneshot',
  'linkTtl',
  'fallbackToDirect',
  'allowedOrigins',
  'maxDownloadBytes',
  'downloadRetry',
  'parallelDownloads',
  'downloadTimeout',
  'minTransferRate',
  'orderedSubscriptions',
]);

const ENVELOPE_KEYS = [
  'correlation_id',
  'msg_id',
  'msg_purpose',
  'sender_name',
  'sender_id',
  'receiver_name',
  'receiver_id',
  'reply_to',
  'reply_to_msg_id',
];
const SEND_KEYS = new Set([...ENVELOPE_KEYS, 'metadata', 'sizeThreshold', 'fallbackToDirect', 'confirm']);

function invalid(msg) {
  return makeError('INVALID_ARGUMENT', msg);
}

function camel(k) {
  return k.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

/** Refuses keys of `opts` that are in none of `allowed` (a list of Sets). */
function checkKeys(opts, allowed, what) {
  if (opts == null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts)) throw invalid(`${what} must be an object`);
  for (const k of Object.keys(opts)) {
    if (opts[k] === undefined) continue;
    if (allowed.some((s) => s.has(k))) continue;
    const hint = allowed.some((s) => s.has(camel(k))) ? ` (did you mean '${camel(k)}'?)` : '';
    throw invalid(`unknown ${what} key '${k}'${hint}`);
  }
  return opts;
}

function str(v, name) {
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  return v;
}

function count(v, name, { min = 0 } = {}) {
  if (typeof v === 'bigint') v = Number(v);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`${name} must be an integer >= ${min}`);
  }
  return v;
}

function bool(v, name) {
  if (typeof v !== 'boolean') throw invalid(`${name} must be true or false`);
  return v;
}

/**
 * Makes an nb_config: the defaults with the environment applied (NATS_URL, FILESERVER_URL,
 * SIZE_THRESHOLD), then `opts`. The caller frees it with nb_config_free.
 */
function makeConfig(opts = {}) {
  const out = [null];
  check(fn.nb_config_from_env(out));
  const cfg = out[0];
  try {
    applyConfig(cfg, opts);
  } catch (e) {
    fn.nb_config_free(cfg);
    throw e;
  }
  return cfg;
}

function applyConfig(cfg, o) {
  const set = (st) => check(st, detail.config(cfg));
  if (o.natsUrl !== undefined) {
    const urls = Array.isArray(o.natsUrl) ? o.natsUrl.map((u) => str(u, 'natsUrl')).join(',') : str(o.natsUrl, 'natsUrl');
    set(fn.nb_config_set_nats_url(cfg, urls));
  }
  if (o.fileserverUrl !== undefined) {
    set(fn.nb_config_set_fileserver_url(cfg, o.fileserverUrl === null ? null : str(o.fileserverUrl, 'fileserverUrl')));
  }
  if (o.fileserverToken !== undefined) {
    set(fn.nb_config_set_fileserver_token(cfg, o.fileserverToken === null ? null : str(o.fileserverToken, 'fileserverToken')));
  }
  if (o.sizeThreshold !== undefined) set(fn.nb_config_set_size_threshold(cfg, count(o.sizeThreshold, 'sizeThreshold', { min: 1 })));
  if (o.senderName !== undefined) set(fn.nb_config_set_sender_name(cfg, str(o.senderName, 'senderName')));
  if (o.name !== undefined) set(fn.nb_config_set_client_name(cfg, o.name === null ? null : str(o.name, 'name')));
  if (o.connectTimeout !== undefined) {
    set(fn.nb_config_set_connect_timeout_ms(cfg, count(o.connectTimeout, 'connectTimeout', { min: 1 })));
  }
  if (o.operationTimeout !== undefined) {
    set(fn.nb_config_set_operation_timeout_ms(cfg, count(o.operationTimeout, 'operationTimeout', { min: 1 })));
  }
  if (o.httpIdleTimeout !== undefined) {
    set(fn.nb_config_set_http_idle_timeout_ms(cfg, count(o.httpIdleTimeout, 'httpIdleTimeout', { min: 1 })));
  }
  if (o.subscriptionQueue !== undefined) {
    set(fn.nb_config_set_subscription_queue(cfg, count(o.subscriptionQueue, 'subscriptionQueue', { min: 1 })));
  }
  if (o.token !== undefined) set(fn.nb_config_set_token(cfg, str(o.token, 'token')));
  if (o.user !== undefined || o.pass !== undefined) {
    set(fn.nb_config_set_user_password(cfg, str(o.user, 'user'), str(o.pass, 'pass')));
  }
  if (o.credsFile !== undefined) set(fn.nb_config_set_creds_file(cfg, str(o.credsFile, 'credsFile')));
  if (o.tls !== undefined) {
    const tls = checkKeys(o.tls, [new Set(['required', 'ca', 'cert', 'key'])], 'tls option');
    if (tls.required !== undefined) set(fn.nb_config_set_tls_required(cfg, bool(tls.required, 'tls.required')));
    if (tls.ca !== undefined) {
      for (const ca of Array.isArray(tls.ca) ? tls.ca : [tls.ca]) {
        set(fn.nb_config_add_tls_root_certificate(cfg, str(ca, 'tls.ca')));
      }
    }
    if (tls.cert !== undefined || tls.key !== undefined) {
      set(fn.nb_config_set_tls_client_certificate(cfg, str(tls.cert, 'tls.cert'), str(tls.key, 'tls.key')));
    }
  }
  if (o.linkOneshot !== undefined) set(fn.nb_config_set_link_oneshot(cfg, bool(o.linkOneshot, 'linkOneshot')));
  if (o.linkTtl !== undefined) set(fn.nb_config_set_link_ttl_s(cfg, count(o.linkTtl, 'linkTtl', { min: 1 })));
  if (o.fallbackToDirect !== undefined) {
    set(fn.nb_config_set_fallback_to_direct(cfg, bool(o.fallbackToDirect, 'fallbackToDirect')));
  }
  if (o.allowedOrigins !== undefined) {
    if (!Array.isArray(o.allowedOrigins)) throw invalid('allowedOrigins must be an array of origins');
    for (const origin of o.allowedOrigins) set(fn.nb_config_add_allowed_origin(cfg, str(origin, 'allowedOrigins[]')));
  }
  if (o.maxDownloadBytes !== undefined) {
    set(fn.nb_config_set_max_download_bytes(cfg, count(o.maxDownloadBytes, 'maxDownloadBytes', { min: 1 })));
  }
  if (o.downloadRetry !== undefined) {
    const r = checkKeys(o.downloadRetry, [new Set(['maxAttempts', 'baseDelay', 'maxDelay'])], 'downloadRetry option');
    set(
      fn.nb_config_set_download_retry(
        cfg,
        count(r.maxAttempts ?? 5, 'downloadRetry.maxAttempts', { min: 1 }),
        count(r.baseDelay ?? 100, 'downloadRetry.baseDelay'),
        count(r.maxDelay ?? 5000, 'downloadRetry.maxDelay'),
      ),
    );
  }
  if (o.parallelDownloads !== undefined) {
    set(fn.nb_config_set_parallel_downloads(cfg, count(o.parallelDownloads, 'parallelDownloads', { min: 1 })));
  }
  if (o.downloadTimeout !== undefined) {
    set(fn.nb_config_set_download_timeout_ms(cfg, count(o.downloadTimeout, 'downloadTimeout', { min: 1 })));
  }
  if (o.minTransferRate !== undefined) {
    set(fn.nb_config_set_min_transfer_rate(cfg, count(o.minTransferRate, 'minTransferRate', { min: 1 })));
  }
  if (o.orderedSubscriptions !== undefined) {
    set(fn.nb_config_set_ordered_subscriptions(cfg, bool(o.orderedSubscriptions, 'orderedSubscriptions')));
  }
}

/**
 * Makes nb_send_options from the envelope fields and per-send settings of `o`, or returns null
 * when none is set (the library's defaults). The caller frees it with nb_send_options_free.
 */
function makeSendOptions(o = {}) {
  const setKeys = Object.keys(o).filter((k) => SEND_KEYS.has(k) && o[k] !== undefined);
  if (setKeys.length === 0) return null;
  const out = [null];
  check(fn.nb_send_options_new(out));
  const opts = out[0];
  try {
    for (const k of ENVELOPE_KEYS) {
      if (o[k] === undefined) continue;
      check(fn[`nb_send_options_set_${k}`](opts, o[k] === null ? null : str(o[k], k)));
    }
    if (o.metadata !== undefined && o.metadata !== null) {
      if (typeof o.metadata !== 'object' || Array.isArray(o.metadata)) throw invalid('metadata must be an object');
      check(fn.nb_send_options_set_metadata_json(opts, JSON.stringify(o.metadata)));
    }
    if (o.sizeThreshold !== undefined) {
      check(fn.nb_send_options_set_size_threshold(opts, count(o.sizeThreshold, 'sizeThreshold', { min: 1 })));
    }
    if (o.fallbackToDirect !== undefined) {
      check(fn.nb_send_options_set_fallback_to_direct(opts, bool(o.fallbackToDirect, 'fallbackToDirect')));
    }
    if (o.confirm !== undefined) check(fn.nb_send_options_set_confirm(opts, bool(o.confirm, 'confirm')));
  } catch (e) {
    fn.nb_send_options_free(opts);
    throw e;
  }
  return opts;
}

module.exports = { CONFIG_KEYS, SEND_KEYS, checkKeys, makeConfig, makeSendOptions, count };
