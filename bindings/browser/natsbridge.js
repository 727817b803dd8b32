// natsbridge for web pages: smartsend / smartreceive over NATS websockets (nats.ws), link
// payloads through a Plik-compatible file server (fetch), with the wire format of every other
// natsbridge peer (design/wire-format.md). An ES module; its two dependencies are imported by
// name ('nats.ws', 'apache-arrow'): the page maps them with an import map (README.md).

import { connect as natsConnect, createInbox, ErrorCode as NatsErrorCode } from 'nats.ws';
import * as arrowModule from 'apache-arrow';

import { NatsBridgeError, makeError, tagged, ERROR_CODES } from './lib/errors.js';
import { PAYLOAD_TYPES, createValues } from './lib/values.js';
import {
  Envelope,
  Payload,
  HEADER_KEYS,
  MSG_PURPOSES,
  parseMessage,
  newUuid,
  wirePayload,
  writeEnvelope,
} from './lib/envelope.js';
import { PlikClient, checkLinkUrl, sha256Hex, transferDeadline } from './lib/plik.js';

export { NatsBridgeError, ERROR_CODES, PAYLOAD_TYPES, HEADER_KEYS, MSG_PURPOSES, Envelope, Payload };

const values = createValues({ arrow: () => arrowModule, makeError });

/** The defaults, as the core's (src/config.rs). */
export const DEFAULTS = Object.freeze({
  fileserverUrl: 'http://localhost:8080',
  fileserverToken: null,
  sizeThreshold: 500_000,
  senderName: '',
  name: null,
  connectTimeout: 5000,
  operationTimeout: 10_000,
  linkOneshot: false,
  linkTtl: 24 * 3600,
  fallbackToDirect: true,
  allowedOrigins: [],
  maxDownloadBytes: 2 * 1024 ** 3,
  downloadRetry: Object.freeze({ maxAttempts: 5, baseDelay: 100, maxDelay: 5000 }),
  parallelDownloads: 4,
  downloadTimeout: 30_000,
  minTransferRate: 256 * 1024,
});

const invalidArgument = (message) => new NatsBridgeError('INVALID_ARGUMENT', message);

function positive(name, v, { integer = true, min = 1 } = {}) {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || (integer && !Number.isInteger(v))) {
    throw invalidArgument(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Options merged over the defaults and checked. */
function settingsOf(options = {}) {
  if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object');
  const s = { ...DEFAULTS, ...options };
  s.downloadRetry = { ...DEFAULTS.downloadRetry, ...(options.downloadRetry || {}) };
  if (s.fileserverUrl === '') s.fileserverUrl = null;
  if (s.fileserverToken === '') s.fileserverToken = null;
  positive('sizeThreshold', s.sizeThreshold);
  positive('maxDownloadBytes', s.maxDownloadBytes, { min: 0 });
  positive('parallelDownloads', s.parallelDownloads);
  positive('minTransferRate', s.minTransferRate);
  positive('linkTtl', s.linkTtl);
  for (const k of ['connectTimeout', 'operationTimeout', 'downloadTimeout']) positive(k, s[k]);
  positive('downloadRetry.maxAttempts', s.downloadRetry.maxAttempts);
  if (s.allowedOrigins !== '*' && !(Array.isArray(s.allowedOrigins) && s.allowedOrigins.every((o) => typeof o === 'string'))) {
    throw invalidArgument("allowedOrigins must be '*' or an array of origins");
  }
  if (Array.isArray(s.allowedOrigins) && s.allowedOrigins.includes('*')) s.allowedOrigins = '*';
  if (s.fileserverToken != null && (typeof s.fileserverToken !== 'string' || /[\r\n\0]/.test(s.fileserverToken))) {
    throw invalidArgument('fileserverToken must be a string usable as an HTTP header');
  }
  return s;
}

/** Checks a subject for publishing: non-empty, no whitespace, no wildcard tokens. */
function checkSubject(subject) {
  if (typeof subject !== 'string' || subject === '') throw invalidArgument('subject is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(subject)) throw invalidArgument(`subject ${JSON.stringify(subject)} contains whitespace or control characters`);
  if (subject.split('.').some((t) => t === '*' || t === '>' || t === '')) {
    throw invalidArgument(`subject ${JSON.stringify(subject)} has an empty or wildcard token; publish to a concrete subject`);
  }
}

/**
 * The walkthrough's payload list — `[[dataname, data, payload_type], ...]`, each entry
 * optionally with a 4th element of payload metadata, or Payloads of a received envelope — as
 * serialized payloads.
 */
function preparePayloads(list) {
  if (!Array.isArray(list)) throw invalidArgument('payloads must be an array of [dataname, data, payload_type] entries');
  return list.map((entry, i) => {
    let dataname, data, type, metadata;
    if (Array.isArray(entry)) {
      [dataname, data, type, metadata] = entry;
    } else if (entry && typeof entry === 'object' && 'payload_type' in entry) {
      ({ dataname, data, payload_type: type } = entry);
    } else {
      throw invalidArgument(`payload #${i} must be a [dataname, data, payload_type] array`);
    }
    if (typeof dataname !== 'string' || dataname === '') throw invalidArgument(`payload #${i}: dataname must be a non-empty string`);
    if (typeof type !== 'string') throw new NatsBridgeError('INVALID_PAYLOAD_TYPE', `payload '${dataname}': payload_type must be a string`);
    if (metadata != null && (typeof metadata !== 'object' || Array.isArray(metadata))) {
      throw invalidArgument(`payload '${dataname}': metadata must be an object`);
    }
    const bytes = values.serialize(dataname, data, type);
    values.checkOutgoing(dataname, data, bytes, type);
    return { dataname, value: data, payload_type: type, bytes, metadata: metadata ?? {} };
  });
}

const utf8 = new TextEncoder();

/** A URL the length a link will have, to measure an envelope before uploading (as the core's). */
function placeholderUrl(base, dataname) {
  const encoded = [...utf8.encode(dataname)].reduce((n, b) => n + (/[A-Za-z0-9]/.test(String.fromCharCode(b)) ? 1 : 3), 0);
  return `${base}/file/${'u'.repeat(32)}/${'f'.repeat(32)}/${'n'.repeat(encoded)}`;
}

function payloadMetadata(p, sha256) {
  const m = { ...p.metadata, payload_bytes: p.bytes.length };
  if (sha256) m.sha256 = sha256;
  else delete m.sha256;
  return m;
}

/** Runs `jobs` (functions returning promises) with at most `limit` at once. */
async function pooled(jobs, limit) {
  const results = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

/**
 * Decodes a message (see smartreceive) with settings `s` and a Plik client: link payloads
 * are checked (all of them, before any connection), fetched, verified; every payload becomes
 * its host value.
 */
async function receiveWith(msg, s, plik) {
  const { header, payloads } = parseMessage(msg);
  const cid = header.correlation_id;
  const links = payloads.filter((p) => p.transport === 'link');
  for (const p of links) {
    try {
      checkLinkUrl(p.url, s.allowedOrigins, plik.origin);
    } catch (e) {
      throw tagged(e, cid, { dataname: p.dataname });
    }
    if (p.size > s.maxDownloadBytes) {
      throw new NatsBridgeError('PAYLOAD_TOO_LARGE', `link payload ${JSON.stringify(p.dataname)} declares ${p.size} bytes, above maxDownloadBytes ${s.maxDownloadBytes}`, {
        correlationId: cid,
        details: { url: p.url, dataname: p.dataname },
      });
    }
  }
  if (links.length) {
    const declared = links.reduce((n, p) => n + (p.size > 0 ? p.size : s.maxDownloadBytes), 0);
    const limit = transferDeadline(s.downloadTimeout, declared, s.minTransferRate);
    const deadline = new AbortController();
    const timer = setTimeout(() => {
      deadline.abort(new NatsBridgeError('DOWNLOAD_FAILED', `the link payloads did not arrive within ${limit} ms (downloadTimeout plus their sizes at minTransferRate)`, { correlationId: cid }));
    }, limit);
    try {
      await pooled(
        links.map((p) => async () => {
          try {
            const sha = typeof p.metadata.sha256 === 'string' ? p.metadata.sha256 : null;
            p.bytes = await plik.download(p.url, p.size > 0 ? p.size : null, sha, deadline.signal);
            p.size = p.bytes.length;
          } catch (e) {
            throw tagged(e, cid, { dataname: p.dataname, url: p.url });
          }
        }),
        s.parallelDownloads,
      );
    } finally {
      clearTimeout(timer);
    }
  }
  const out = payloads.map((p) => {
    let data;
    try {
      data = values.deserialize(p.dataname, p.bytes, p.payload_type);
    } catch (e) {
      throw tagged(e, cid, { dataname: p.dataname });
    }
    return new Payload({
      id: p.id,
      dataname: p.dataname,
      data,
      payload_type: p.payload_type,
      transport: p.transport,
      size: p.size,
      url: p.url,
      metadata: p.metadata,
    });
  });
  return new Envelope(header, out);
}

/** A connection to NATS (over websockets) with everything needed to send and receive envelopes. */
export class Client {
  constructor(nc, s, brokerUrl) {
    this._nc = nc;
    this._s = s;
    this._plik = new PlikClient(s);
    this._brokerUrl = brokerUrl;
    this._senderId = newUuid();
    this._tail = Promise.resolve();
    this._closing = null;
  }

  /** The largest message the server accepts (announced at connect). */
  get maxPayload() {
    return this._nc.info?.max_payload ?? 1024 * 1024;
  }

  get isClosed() {
    return this._closing !== null;
  }

  _checkOpen() {
    if (this._closing) throw new NatsBridgeError('CLOSED', 'the client is closed');
  }

  /**
   * smartsend: serializes each payload, sends small ones inline and large ones through the
   * file server, and publishes one envelope on `subject`, in call order.
   * @returns {Promise<[Envelope, string]>} the envelope as sent and the published JSON
   */
  async smartsend(subject, payloads, options = {}) {
    return this._send(subject, payloads, options, null);
  }

  async _send(subject, payloads, options, publish) {
    this._checkOpen();
    const prev = this._tail;
    let release;
    this._tail = new Promise((r) => {
      release = r;
    });
    try {
      const built = await this._build(subject, payloads, options);
      await prev;
      this._checkOpen();
      const result = publish ? await publish(built) : this._publish(subject, built);
      if (options.confirm) await this.flush();
      return result;
    } finally {
      prev.then(release, release);
    }
  }

  _publish(subject, built) {
    try {
      this._nc.publish(subject, built.bytes);
    } catch (e) {
      throw new NatsBridgeError(this._nc.isClosed() ? 'CLOSED' : 'NATS_CONNECTION_FAILED', `publish to ${subject} failed: ${e.message}`, {
        cause: e,
        correlationId: built.envelope.correlation_id,
      });
    }
    return [built.envelope, built.json];
  }

  /** Everything of a send but the publishing: checks, transport choice, uploads, the JSON. */
  async _build(subject, payloads, options) {
    if (options === null || typeof options !== 'object') throw invalidArgument('options must be an object');
    const cid = options.correlation_id || newUuid();
    const fail = (e) => tagged(e, cid);
    let prepared;
    const s = this._s;
    try {
      checkSubject(subject);
      const purpose = options.msg_purpose ?? 'chat';
      if (!MSG_PURPOSES.includes(purpose)) {
        throw invalidArgument(`msg_purpose ${JSON.stringify(purpose)} is not one of ${MSG_PURPOSES.join(', ')}`);
      }
      const threshold = positive('sizeThreshold', options.sizeThreshold ?? s.sizeThreshold);
      if (options.metadata != null && (typeof options.metadata !== 'object' || Array.isArray(options.metadata))) {
        throw invalidArgument('metadata must be an object');
      }
      for (const k of HEADER_KEYS) {
        if (k !== 'metadata' && options[k] != null && typeof options[k] !== 'string') throw invalidArgument(`${k} must be a string`);
      }
      prepared = preparePayloads(payloads);
      const base = this._plik.base;
      const header = {
        correlation_id: cid,
        msg_id: options.msg_id || newUuid(),
        timestamp: new Date().toISOString(),
        send_to: subject,
        msg_purpose: purpose,
        sender_name: options.sender_name ?? s.senderName,
        sender_id: options.sender_id ?? this._senderId,
        receiver_name: options.receiver_name ?? '',
        receiver_id: options.receiver_id ?? '',
        reply_to: options.reply_to ?? '',
        reply_to_msg_id: options.reply_to_msg_id ?? '',
        broker_url: this._brokerUrl,
        metadata: options.metadata ?? {},
      };
      const wire = prepared.map((p) => ({
        id: newUuid(),
        dataname: p.dataname,
        payload_type: p.payload_type,
        transport: base && p.bytes.length >= threshold ? 'link' : 'direct',
        size: p.bytes.length,
        bytes: p.bytes,
        url: null,
        metadata: payloadMetadata(p, null),
      }));
      for (const w of wire) if (w.transport === 'link') w.url = placeholderUrl(base, w.dataname);
      const maxPayload = this.maxPayload;
      const jsonBytes = () => utf8.encode(writeEnvelope(header, wire.map(wirePayload)));
      // Fit max_payload: while too large, the largest direct payload moves to link.
      for (;;) {
        const len = jsonBytes().length;
        if (len <= maxPayload) break;
        const direct = wire.filter((w) => w.transport === 'direct');
        if (!direct.length || !base) {
          const why = direct.length ? 'no file server is configured for link transport' : 'every payload already goes by link; the envelope itself is too large';
          throw new NatsBridgeError('PAYLOAD_TOO_LARGE', `envelope of ${len} bytes exceeds the server's max_payload of ${maxPayload} bytes: ${why}`, {
            details: { envelope_bytes: len, max_payload: maxPayload },
          });
        }
        const largest = direct.reduce((a, b) => (b.size > a.size ? b : a));
        largest.transport = 'link';
        largest.url = placeholderUrl(base, largest.dataname);
      }
      const links = wire.filter((w) => w.transport === 'link');
      const total = links.reduce((n, w) => n + w.size, 0);
      let sent = 0;
      const onProgress = typeof options.onProgress === 'function' ? options.onProgress : null;
      if (onProgress && total) onProgress(0, total);
      const tick = (n) => {
        sent += n;
        if (onProgress) onProgress(Math.min(sent, total), total);
      };
      const fallback = options.fallbackToDirect ?? s.fallbackToDirect;
      const results = await Promise.all(
        links.map(async (w) => {
          const [up, sha] = await Promise.all([
            this._plik.upload(w.dataname, w.bytes, tick).then((r) => ({ ok: r }), (e) => ({ err: e })),
            sha256Hex(w.bytes),
          ]);
          return { w, up, sha };
        }),
      );
      const done = [];
      let failure = null;
      for (const { w, up, sha } of results) {
        if (up.ok) {
          w.url = up.ok.url;
          w.metadata = payloadMetadata(prepared[wire.indexOf(w)], sha);
          done.push(up.ok);
          continue;
        }
        w.transport = 'direct';
        w.url = null;
        if (fallback && jsonBytes().length <= maxPayload) continue; // falls back to direct
        if (!failure) {
          failure = fallback
            ? new NatsBridgeError('UPLOAD_FAILED', `${up.err.message}; falling back to direct is impossible: the envelope would exceed max_payload (${maxPayload} bytes)`, {
                details: { dataname: w.dataname },
              })
            : tagged(up.err, cid, { dataname: w.dataname });
        }
      }
      let json = null;
      let bytes = null;
      if (!failure) {
        json = writeEnvelope(header, wire.map(wirePayload));
        bytes = utf8.encode(json);
        if (bytes.length > maxPayload) {
          failure = new NatsBridgeError('PAYLOAD_TOO_LARGE', `envelope of ${bytes.length} bytes exceeds the server's max_payload of ${maxPayload} bytes`);
        }
      }
      if (failure) {
        await Promise.all(done.map((d) => d.discard()));
        throw failure;
      }
      const envelope = new Envelope(
        header,
        wire.map(
          (w, i) =>
            new Payload({
              id: w.id,
              dataname: w.dataname,
              data: prepared[i].value,
              payload_type: w.payload_type,
              transport: w.transport,
              size: w.size,
              url: w.transport === 'link' ? w.url : null,
              metadata: w.metadata,
            }),
        ),
      );
      return { envelope, json, bytes };
    } catch (e) {
      throw fail(e);
    }
  }

  /** smartreceive with this client's settings: decodes a message, downloading link payloads. */
  async smartreceive(msg) {
    return receiveWith(msg, this._s, this._plik);
  }

  /**
   * Subscribes to `subject` (wildcards allowed); resolves once the server knows the interest.
   * @param {{ queue?: string }} [options]
   */
  async subscribe(subject, options = {}) {
    this._checkOpen();
    if (typeof subject !== 'string' || subject === '') throw invalidArgument('subject is empty');
    let sub;
    try {
      sub = this._nc.subscribe(subject, options.queue ? { queue: options.queue } : {});
      await this._nc.flush();
    } catch (e) {
      throw new NatsBridgeError('NATS_CONNECTION_FAILED', `subscribe to ${subject} failed: ${e.message}`, { cause: e });
    }
    return new Subscription(this, sub, subject, options.queue ?? null);
  }

  /**
   * Sends a request (with a fresh inbox as `reply_to`, unless `options.reply_to` names one)
   * and resolves with the first reply. `options.timeout`: ms (default 10000).
   */
  async request(subject, payloads, options = {}) {
    const timeout = options.timeout ?? 10_000;
    positive('timeout', timeout);
    const inbox = options.reply_to || createInbox();
    let cid = '';
    const reply = await this._send(subject, payloads, { ...options, reply_to: inbox }, async (built) => {
      cid = built.envelope.correlation_id;
      try {
        return await this._nc.request(subject, built.bytes, { timeout, noMux: true, reply: inbox });
      } catch (e) {
        if (e && e.code === NatsErrorCode.NoResponders) {
          throw new NatsBridgeError('NO_RESPONDERS', `no responders are subscribed to ${subject}`, { correlationId: cid });
        }
        if (e && e.code === NatsErrorCode.Timeout) {
          throw new NatsBridgeError('TIMEOUT', `no reply on ${subject} within ${timeout} ms`, { correlationId: cid });
        }
        throw new NatsBridgeError(this._nc.isClosed() ? 'CLOSED' : 'NATS_CONNECTION_FAILED', `request on ${subject} failed: ${e.message}`, {
          cause: e,
          correlationId: cid,
        });
      }
    });
    return this.smartreceive(reply);
  }

  /**
   * Replies to a received envelope, on its `reply_to`, with `reply_to_msg_id` its `msg_id`,
   * its correlation id, and its sender as receiver (unless `options` sets them).
   */
  async reply(request, payloads, options = {}) {
    if (!request || typeof request !== 'object') throw invalidArgument('reply needs the received Envelope it answers');
    if (!request.reply_to) {
      throw new NatsBridgeError('INVALID_ARGUMENT', 'the request envelope has no reply_to subject to answer on', {
        correlationId: request.correlation_id,
      });
    }
    return this.smartsend(request.reply_to, payloads, {
      ...options,
      reply_to_msg_id: options.reply_to_msg_id ?? request.msg_id,
      correlation_id: options.correlation_id ?? request.correlation_id,
      receiver_name: options.receiver_name ?? request.sender_name,
      receiver_id: options.receiver_id ?? request.sender_id,
    });
  }

  /** Resolves once the server has processed everything published so far. */
  async flush() {
    this._checkOpen();
    try {
      await withTimeout(this._nc.flush(), this._s.operationTimeout, 'flush');
    } catch (e) {
      throw e instanceof NatsBridgeError ? e : new NatsBridgeError('NATS_CONNECTION_FAILED', `flush failed: ${e.message}`, { cause: e });
    }
  }

  /** Publishes the sends made before it, then drains and closes the connection. */
  close() {
    if (!this._closing) {
      this._closing = (async () => {
        await this._tail;
        if (!this._nc.isClosed()) {
          try {
            await this._nc.drain();
          } catch {
            await this._nc.close();
          }
        }
      })();
    }
    return this._closing;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new NatsBridgeError('TIMEOUT', `${what} did not complete within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A subscription: iterate it with `for await` (leaving the loop early closes it). A message
 * that could not be delivered rejects `next()` with its error; iterating again goes on with
 * the next message. Envelopes are delivered in the order they arrived.
 */
export class Subscription {
  constructor(client, sub, subject, queue) {
    this._client = client;
    this._sub = sub;
    this._it = sub[Symbol.asyncIterator]();
    this.subject = subject;
    this.queue = queue;
  }

  get isClosed() {
    return this._sub.isClosed();
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next() {
    const r = await this._it.next();
    if (r.done) return { done: true, value: undefined };
    return { done: false, value: await this._client.smartreceive(r.value) };
  }

  async return() {
    await this.close();
    return { done: true, value: undefined };
  }

  /** Unsubscribes: messages already received are still delivered, then iteration ends. */
  async close() {
    if (!this._sub.isClosed()) {
      try {
        await this._sub.drain();
      } catch {
        this._sub.unsubscribe();
      }
    }
  }
}

/**
 * Connects to NATS over websockets.
 * @param {object} options `natsUrl` (ws:// or wss://, required), `fileserverUrl`, ... (natsbridge.d.ts)
 */
export async function connect(options = {}) {
  const s = settingsOf(options);
  const urls = Array.isArray(s.natsUrl) ? s.natsUrl : typeof s.natsUrl === 'string' ? s.natsUrl.split(',').map((u) => u.trim()) : [];
  if (!urls.length || urls.some((u) => !/^wss?:\/\//i.test(u))) {
    throw invalidArgument(`natsUrl must name the server's websocket listener (ws://host:port or wss://...), got ${JSON.stringify(s.natsUrl ?? null)}`);
  }
  new PlikClient(s); // checks fileserverUrl
  const opts = { servers: urls, timeout: s.connectTimeout, name: s.name ?? undefined };
  if (s.token) opts.token = s.token;
  if (s.user) {
    opts.user = s.user;
    opts.pass = s.pass ?? '';
  }
  let nc;
  try {
    nc = await natsConnect(opts);
  } catch (e) {
    throw new NatsBridgeError('NATS_CONNECTION_FAILED', `cannot connect to ${urls.join(', ')}: ${e.message}`, { cause: e });
  }
  return new Client(nc, s, urls.join(','));
}

/** The walkthrough's smartsend without a client: connects, sends, closes. */
export async function smartsend(subject, payloads, options = {}) {
  const client = await connect(options);
  try {
    return await client.smartsend(subject, payloads, options);
  } finally {
    await client.close();
  }
}

/**
 * The walkthrough's smartreceive without a client: decodes a message (a NATS message, its
 * bytes or its text) and downloads its link payloads with the link settings of `options`.
 */
export async function smartreceive(msg, options = {}) {
  const s = settingsOf(options);
  return receiveWith(msg, s, new PlikClient(s));
}
