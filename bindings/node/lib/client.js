'use strict';
// The client, its subscriptions, and the walkthrough's module-level smartsend / smartreceive.
//
// The event loop never waits on the library: every call that can block (connect, send with
// uploads, receive with downloads, request, subscribe, close, a pull that waits) runs on libuv's
// thread pool through koffi's `.async`; only calls that return at once (accessors, setters, a
// pull with timeout 0, a send that publishes at once) run on the JavaScript thread. The library
// never calls into JavaScript: subscriptions are pulled, never called back.
//
// Native handles are owned through NativeHandle (./handle.js): close() frees them, and a client or
// subscription collected without close() has them freed by a FinalizationRegistry. What keeps
// which alive: a subscription holds its client (freeing a client ends its subscriptions), a
// client holds its subscriptions only weakly (a dropped one is freed while the client lives on),
// and a call running on the pool, a pending pull, a callback subscription's delivery loop or a
// queued send holds the object it works for.
//
// Sends first try nb_client_try_smartsend on this thread: it publishes when every payload goes
// direct and the connection's queue has room, and otherwise returns WOULD_BLOCK having done
// nothing; the send then goes to the pool (nb_client_smartsend). A client publishes in call
// order: while a send is on the pool, the sends after it wait in the client's queue.

const { koffi, fn, status, POINTER_SIZE, readPointer, callAsync } = require('./ffi');
const { makeError, fromStatus, check, detail } = require('./errors');
const { takeEnvelope, envelopeFromJson, preparePayloads, headerOnlyJson } = require('./envelope');
const { asBytes } = require('./values');
const { NativeHandle } = require('./handle');
const { CONFIG_KEYS, SEND_KEYS, checkKeys, makeConfig, makeSendOptions, count } = require('./options');

/** Envelopes taken per pull. */
const BATCH = 64;

// A pull that waits holds one thread of libuv's pool (UV_THREADPOOL_SIZE, default 4) until an
// envelope comes or its wait ends (WAIT_MS at most, then it is queued again). Subscriptions wait
// that way only while two threads stay free for other work (sends, fs, dns); the others look at
// their queue every POLL_MS with a non-blocking pull on the main thread, using no pool thread.
const POOL_SIZE = Math.min(1024, Math.max(1, Number.parseInt(process.env.UV_THREADPOOL_SIZE, 10) || 4));
const MAX_WAITING_PULLS = Math.max(0, POOL_SIZE - 2);
const WAIT_MS = 1000;
const POLL_MS = 10;
let waitingPulls = 0;

/** Client method taking payloads already serialized (for the module-level smartsend). */
const SEND_PREPARED = Symbol('sendPrepared');

/** Default deadline of `request`, in milliseconds. */
const DEFAULT_REQUEST_TIMEOUT_MS = 10000;

// Sends with more payload bytes than this go to the pool without trying on this thread:
// encoding them (base64, JSON) would hold the event loop for a while.
const SYNC_SEND_MAX_BYTES = 64 * 1024;

// Up to this many payload bytes, the envelope a send returns is read from the published JSON
// (one JSON.parse); above, from nb_envelope_outline_json, which leaves out the encoded bytes.
const SENT_FROM_JSON_MAX_BYTES = 8 * 1024;

// Sends made on this thread in one turn of the event loop, in units of one small send (a larger
// one counts 1 + size / 16 KiB). A promise that resolves at once lets no timer, I/O or
// subscription run: `for (...) await client.smartsend(...)` would hold the event loop for as
// long as the library can publish at once. Past the budget, the next send waits for the next
// turn (setImmediate), and the sends after it queue behind it.
const SYNC_UNITS_PER_TURN = 64;
let syncUnits = 0;

/** Takes this turn's budget for a send of `size` bytes on this thread; false when spent. */
function takeSyncTurn(size) {
  if (syncUnits >= SYNC_UNITS_PER_TURN) return false;
  if (syncUnits === 0) setImmediate(() => (syncUnits = 0));
  syncUnits += 1 + (size >> 14);
  return true;
}

function nextTurn() {
  return new Promise((resolve) => setImmediate(resolve));
}

// Out-parameters of nb_client_try_smartsend, reused: it runs on this thread only.
const tryEnvOut = [null];
const tryJsonOut = Buffer.alloc(POINTER_SIZE);

/**
 * A send's result from its out-parameters: [the envelope as sent, the published JSON]. Without
 * `envOut`, the envelope is read from the JSON.
 */
function takeSent(envOut, jsonOut, values) {
  const json = takeString(jsonOut);
  if (envOut === null) return [envelopeFromJson(json, values), json];
  return [takeEnvelope(envOut[0], values), json];
}

/** Send options a reply takes from its request unless set: [option, request header key]. */
const REPLY_DEFAULTS = [
  ['reply_to_msg_id', 'msg_id'],
  ['correlation_id', 'correlation_id'],
  ['receiver_name', 'sender_name'],
  ['receiver_id', 'sender_id'],
];

/** The handles of the clients not closed yet (not their Client objects: those stay collectable). */
const openClients = new Set();
let exitHookInstalled = false;

// The handles' onRelease functions are made here, at module level: a closure made in a
// constructor or method shares that scope's variables, `this` among them, and the registry
// holding the handle would then keep the owner alive.
function forgetOpenClient(h) {
  openClients.delete(h);
}

/** Removes `item` from `set`. */
function deleter(set, item) {
  return () => set.delete(item);
}

// Clients still open when nothing else is left to do are closed (flushing what they published),
// after which the process exits: an open client never keeps the process alive by itself, and
// never loses a message sent just before the end. One collected but not yet finalized is freed,
// which flushes too.
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('beforeExit', () => {
    for (const h of openClients) {
      const client = h.owner.deref();
      if (client) client.close().catch(() => {});
      else h.release();
    }
  });
}

function closedError(what) {
  return makeError('CLOSED', `the ${what} is closed`);
}

function subjectArg(subject) {
  if (typeof subject !== 'string') throw makeError('INVALID_ARGUMENT', 'subject must be a string');
  return subject;
}

/** The raw bytes of a NATS message: bytes, a string, or a nats.js message (its `.data`). */
function messageBytes(msg) {
  if (typeof msg === 'string') return Buffer.from(msg, 'utf8');
  const direct = asBytes(msg);
  if (direct) return direct;
  if (msg && typeof msg === 'object' && 'data' in msg) {
    const inner = typeof msg.data === 'string' ? Buffer.from(msg.data, 'utf8') : asBytes(msg.data);
    if (inner) return inner;
  }
  throw makeError(
    'INVALID_ARGUMENT',
    'smartreceive expects a message: a Buffer/Uint8Array, a string, or a nats.js message (with .data)',
  );
}

/** Reads and frees a string handed out through a `char **` out-parameter buffer. */
function takeString(buf) {
  const ptr = readPointer(buf);
  if (!ptr) return null;
  try {
    return koffi.decode(buf, 'const char *');
  } finally {
    fn.nb_string_free(ptr);
  }
}

function pick(obj, keys) {
  const out = {};
  for (const k of Object.keys(obj ?? {})) if (keys.has(k)) out[k] = obj[k];
  return out;
}

// ---------------------------------------------------------------------------------------

class Client {
  #h; // NativeHandle of the nb_client
  #state = 'open'; // 'open' | 'closing' | 'closed'
  #ops = new Set();
  #subs = new Set(); // WeakRefs of the subscriptions not ended
  #closing = null;
  #resolveClosed;
  // Sends waiting behind one on the pool, in call order: #sendQueue[#sendHead] is the next.
  #sendQueue = [];
  #sendHead = 0;
  #draining = null;
  #dropped = 0; // the last count read (kept once the client is released)

  /** @internal Use `connect()`. */
  constructor(ptr) {
    this.#h = new NativeHandle(this, ptr, fn.nb_client_free, 'client', forgetOpenClient);
    /** Resolves once the client is closed and its resources are released. */
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    openClients.add(this.#h);
    installExitHook();
  }

  /** Whether `close()` was called (or the client closed at exit). */
  get isClosed() {
    return this.#state !== 'open';
  }

  /** The largest message the server accepts, as it announced at connect. */
  get maxPayload() {
    const h = this.#h.ptr;
    if (h === null) throw closedError('client');
    const out = [0];
    check(fn.nb_client_max_payload(h, out));
    return Number(out[0]);
  }

  /**
   * Messages this client handed to the connection that the server had not confirmed when the
   * connection dropped, since connect: they may not have arrived (an upper bound). flush() and
   * close() report them as MessagesDroppedError; a send with `confirm` rejects with its own.
   * Still readable once the client is closed (the final count).
   */
  get dropped() {
    const h = this.#h.ptr;
    if (h === null) return this.#dropped;
    const out = [0];
    check(fn.nb_client_dropped(h, out));
    this.#dropped = Number(out[0]);
    return this.#dropped;
  }

  /**
   * Runs a blocking library call on the thread pool with this client's handle first, turning
   * a failed status into its error (read from the client, before anything can free it).
   */
  async #call(func, ...args) {
    if (this.#state !== 'open') throw closedError('client');
    const run = this.#h.use(async (h) => {
      const st = await callAsync(func, h, ...args);
      if (st !== status.OK) throw fromStatus(st, detail.client(h));
    });
    this.#ops.add(run);
    try {
      await run;
    } finally {
      this.#ops.delete(run);
    }
  }

  /**
   * smartsend: serializes each `[dataname, data, payload_type]`, sends small payloads inline
   * and large ones through the file server, and publishes one envelope on `subject`.
   * @returns {Promise<[Envelope, string]>} the envelope as sent and the published JSON
   */
  async smartsend(subject, payloads, options = {}) {
    subjectArg(subject);
    checkKeys(options, [SEND_KEYS], 'smartsend option');
    return this[SEND_PREPARED](subject, preparePayloads(payloads), options);
  }

  /** @internal smartsend of payloads already serialized by preparePayloads. */
  [SEND_PREPARED](subject, prepared, options) {
    return this.#send(subject, prepared, options);
  }

  /**
   * Publishes one envelope with send `options`, after every send made before it on this
   * client. On this thread when nothing is queued and the library can publish at once, else
   * on the pool (and the sends made meanwhile queue behind it); a confirmed send waits for the
   * server, so always on the pool.
   * @returns {Promise<[Envelope, string]>}
   */
  #send(subject, { records, values, size }, options) {
    if (this.#state !== 'open') return Promise.reject(closedError('client'));
    const opts = makeSendOptions(options);
    const trySync = size <= SYNC_SEND_MAX_BYTES && options.confirm !== true;
    const job = { subject, records, values, size, opts, trySync, resolve: null, reject: null };
    if (this.#draining === null && job.trySync && takeSyncTurn(size)) {
      let sent;
      try {
        sent = this.#trySend(job);
      } catch (e) {
        fn.nb_send_options_free(opts);
        return Promise.reject(e);
      }
      if (sent !== null) {
        fn.nb_send_options_free(opts);
        return Promise.resolve(sent);
      }
      job.trySync = false; // it would block: straight to the pool
    }
    const result = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    this.#sendQueue.push(job);
    // A drain starts with a send that goes to the pool or waits for the next turn, so it is
    // still running when #drain() returns.
    if (this.#draining === null) this.#draining = this.#drain();
    return result;
  }

  /** nb_client_try_smartsend on this thread: the result, or null when it would block. */
  #trySend(job) {
    const envOut = job.size <= SENT_FROM_JSON_MAX_BYTES ? null : tryEnvOut;
    const st = fn.nb_client_try_smartsend(
      this.#h.ptr,
      job.subject,
      job.records,
      job.records.length,
      job.opts,
      envOut,
      tryJsonOut,
    );
    if (st === status.OK) return takeSent(envOut, tryJsonOut, job.values);
    if (st === status.WOULD_BLOCK) return null;
    throw fromStatus(st, detail.thread);
  }

  /** Sends the queued sends in order, each on this thread if it can, else on the pool. */
  async #drain() {
    const queue = this.#sendQueue;
    while (this.#sendHead < queue.length) {
      const job = queue[this.#sendHead];
      queue[this.#sendHead++] = undefined;
      if (this.#sendHead >= 1024 && this.#sendHead * 2 >= queue.length) {
        queue.splice(0, this.#sendHead);
        this.#sendHead = 0;
      }
      try {
        let sent = null;
        if (job.trySync) {
          if (!takeSyncTurn(job.size)) {
            await nextTurn();
            takeSyncTurn(job.size);
          }
          sent = this.#trySend(job);
        }
        if (sent === null) sent = await this.#h.use((h) => this.#sendOnPool(h, job));
        job.resolve(sent);
      } catch (e) {
        job.reject(e);
      } finally {
        fn.nb_send_options_free(job.opts);
      }
    }
    queue.length = 0;
    this.#sendHead = 0;
    this.#draining = null;
  }

  /** nb_client_smartsend on the pool. */
  async #sendOnPool(h, job) {
    const envOut = [null];
    const jsonOut = Buffer.alloc(POINTER_SIZE);
    const { records } = job;
    const st = await callAsync(fn.nb_client_smartsend, h, job.subject, records, records.length, job.opts, envOut, jsonOut);
    if (st !== status.OK) throw fromStatus(st, detail.client(h));
    return takeSent(envOut, jsonOut, job.values);
  }

  /**
   * smartreceive with this client's settings: decodes one NATS message (bytes, a string, or a
   * nats.js message), downloading its link payloads.
   * @returns {Promise<Envelope>}
   */
  async smartreceive(msg) {
    const bytes = messageBytes(msg);
    const out = [null];
    await this.#call(fn.nb_client_smartreceive, bytes, bytes.length, out);
    return takeEnvelope(out[0]);
  }

  /**
   * Subscribes to `subject` (wildcards allowed). Without `callback`, the subscription is an
   * async iterator of envelopes; with `callback(err, env)`, each envelope (or the error of a
   * message that could not be delivered) is passed to it in order.
   * @returns {Promise<Subscription>} once the server knows the interest
   */
  async subscribe(subject, options = {}) {
    subjectArg(subject);
    checkKeys(options, [new Set(['queue', 'callback'])], 'subscribe option');
    const { queue = null, callback = null } = options;
    if (queue !== null && typeof queue !== 'string') throw makeError('INVALID_ARGUMENT', 'queue must be a string');
    if (callback !== null && typeof callback !== 'function') {
      throw makeError('INVALID_ARGUMENT', 'callback must be a function');
    }
    const out = [null];
    await this.#call(fn.nb_client_subscribe, subject, queue || null, out);
    const sub = new Subscription(this, this.#subs, out[0], subject, queue, callback);
    if (this.#state !== 'open') sub.close().catch(() => {});
    return sub;
  }

  /**
   * Request/reply: sends an envelope whose `reply_to` is a fresh inbox and waits for the first
   * reply (`timeout` ms, default 10000; a negative timeout waits without limit).
   * @returns {Promise<Envelope>} the reply
   */
  async request(subject, payloads, options = {}) {
    subjectArg(subject);
    checkKeys(options, [SEND_KEYS, new Set(['timeout'])], 'request option');
    const timeout = options.timeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout)) {
      throw makeError('INVALID_ARGUMENT', 'timeout must be an integer number of milliseconds');
    }
    const { records } = preparePayloads(payloads);
    const opts = makeSendOptions(options);
    const out = [null];
    try {
      await this.#call(fn.nb_client_request, subject, records, records.length, opts, timeout, out);
    } finally {
      fn.nb_send_options_free(opts);
    }
    return takeEnvelope(out[0]);
  }

  /**
   * Replies to a received envelope: publishes to its `reply_to`, with `reply_to_msg_id` its
   * `msg_id`, its `correlation_id`, and its sender as receiver (unless `options` sets them).
   * @returns {Promise<[Envelope, string]>}
   */
  async reply(request, payloads, options = {}) {
    checkKeys(options, [SEND_KEYS], 'reply option');
    const header = Buffer.from(headerOnlyJson(request), 'utf8');
    const prepared = preparePayloads(payloads);
    if (this.#state !== 'open') throw closedError('client');
    // The request's header as a native envelope (it has no payloads: nothing is downloaded),
    // checked as the library checks any envelope it receives.
    const reqOut = [null];
    const h = this.#h.ptr;
    check(fn.nb_client_smartreceive(h, header, header.length, reqOut), detail.client(h));
    const req = reqOut[0];
    let head;
    try {
      head = JSON.parse(fn.nb_envelope_header_json(req));
      if (!head.reply_to) {
        // Nothing to answer on: nb_client_reply refuses it, with the library's own error.
        const opts = makeSendOptions(options);
        try {
          await this.#call(fn.nb_client_reply, req, prepared.records, prepared.records.length, opts, null, null);
        } finally {
          fn.nb_send_options_free(opts);
        }
        throw makeError('INTERNAL', 'nb_client_reply accepted a request without reply_to');
      }
    } finally {
      fn.nb_envelope_free(req);
    }
    // What nb_client_reply does, as a send that keeps this client's order: to `reply_to`,
    // with the request's msg_id, correlation id and sender unless `options` sets them.
    const opts = { ...options };
    for (const [key, from] of REPLY_DEFAULTS) {
      if (opts[key] === undefined || opts[key] === null) opts[key] = head[from] ?? '';
    }
    return this.#send(head.reply_to, prepared, opts);
  }

  /**
   * Waits until the server has confirmed everything published so far. Rejects with
   * MessagesDroppedError when messages sent since the last report were not confirmed when the
   * connection to NATS dropped (they may be lost; each is reported once, see `dropped`).
   */
  async flush() {
    await this.#call(fn.nb_client_flush);
  }

  /**
   * Flushes and closes the connection. Subscriptions end after delivering what they already
   * received. Resolves once everything is released; calling it again returns the same promise.
   */
  close() {
    if (!this.#closing) this.#closing = this.#close();
    return this.#closing;
  }

  async #close() {
    this.#state = 'closing';
    openClients.delete(this.#h);
    // Sends made before close() are published first, in order.
    if (this.#draining !== null) await this.#draining;
    let error = null;
    await this.#h.use(async (h) => {
      const st = await callAsync(fn.nb_client_close, h);
      if (st !== status.OK && st !== status.CLOSED) error = fromStatus(st, detail.client(h));
      void this.dropped; // keep the final count
    });
    await Promise.allSettled([...this.#ops]);
    await Promise.allSettled([...this.#subs].map((ref) => ref.deref()?.close()));
    // When closing failed, freeing closes again and may wait for it (on the pool).
    await this.#h.release();
    this.#state = 'closed';
    this.#resolveClosed();
    if (error) throw error;
  }
}

// ---------------------------------------------------------------------------------------

class Subscription {
  // Held only to keep the client alive while the subscription is: freeing the client would
  // end the subscription under its user.
  #client;
  #h; // NativeHandle of the nb_subscription
  #callback;
  #buffer = []; // { env } | { error }
  #ended = false;
  #pulling = null;
  #abandoned = false;
  #closeCall = null;
  #closing = null;
  #closeError = null;
  #dropped = 0;
  #envs = Buffer.alloc(BATCH * POINTER_SIZE);
  #resolveClosed;

  /** @internal Use `client.subscribe()`; `subs`: the client's WeakRefs of its subscriptions. */
  constructor(client, subs, ptr, subject, queue, callback) {
    this.#client = client;
    const ref = new WeakRef(this);
    subs.add(ref);
    this.#h = new NativeHandle(this, ptr, fn.nb_subscription_free, 'subscription', deleter(subs, ref));
    this.#callback = callback;
    /** The subject subscribed to. */
    this.subject = subject;
    /** The queue group, or null. */
    this.queue = queue || null;
    /** Resolves once the subscription has ended (closed, and everything received delivered). */
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    if (callback) this.#deliverToCallback();
  }

  /** Messages dropped so far because this subscriber fell behind (each gap is also an error). */
  get dropped() {
    const h = this.#h.ptr;
    if (h === null) return this.#dropped;
    const out = [0];
    check(fn.nb_subscription_dropped(h, out));
    this.#dropped = Number(out[0]);
    return this.#dropped;
  }

  /** Whether the subscription has ended. */
  get isClosed() {
    return this.#ended;
  }

  // ---- pulling ---------------------------------------------------------------------------

  /** One pull (non-blocking first, then waiting on the pool); one puller at a time. */
  #pullOnce() {
    if (!this.#pulling) this.#pulling = this.#pull().finally(() => (this.#pulling = null));
    return this.#pulling;
  }

  /** Pulls until something is buffered or the subscription ends. */
  async #fill() {
    while (this.#buffer.length === 0 && !this.#ended) await this.#pullOnce();
  }

  async #pull() {
    if (this.#ended) return;
    // Whatever is queued already: a non-blocking pull, on this thread.
    const n = [0];
    let st = fn.nb_subscription_next_batch(this.#h.ptr, this.#envs, BATCH, 0, n);
    if (st === status.PULL_TIMEOUT && this.#abandoned) {
      // The library failed to close it: what was queued is taken, release it.
      st = status.CLOSED;
    } else if (st === status.PULL_TIMEOUT && waitingPulls < MAX_WAITING_PULLS) {
      // Nothing yet: wait on the pool.
      waitingPulls++;
      try {
        st = await this.#h.use((h) => callAsync(fn.nb_subscription_next_batch, h, this.#envs, BATCH, WAIT_MS, n));
      } finally {
        waitingPulls--;
      }
    } else if (st === status.PULL_TIMEOUT) {
      // Nothing yet, and the pool has enough waiting pulls: look again a little later.
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    await this.#take(st, Number(n[0]));
  }

  async #take(st, n) {
    if (st === status.OK) {
      const handles = [];
      for (let i = 0; i < n; i++) handles.push(readPointer(this.#envs, i));
      for (const h of handles) {
        try {
          this.#buffer.push({ env: takeEnvelope(h) });
        } catch (error) {
          this.#buffer.push({ error });
        }
      }
    } else if (st === status.PULL_TIMEOUT) {
      // Nothing came in time: pull again.
    } else if (st === status.CLOSED) {
      await this.#end();
    } else {
      // One message that could not be delivered; the next pull goes on after it.
      this.#buffer.push({ error: fromStatus(st, detail.subscription(this.#h.ptr)) });
    }
  }

  /** Closed and drained: release the handle (after our own close call, if any, returned). */
  async #end() {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#closeCall) await this.#closeCall.catch(() => {});
    void this.dropped; // keep the final count
    // When closing failed, freeing closes again and may wait for it (on the pool).
    await this.#h.release();
    this.#resolveClosed();
  }

  async #next() {
    while (this.#buffer.length === 0 && !this.#ended) await this.#fill();
    if (this.#buffer.length === 0) return { value: undefined, done: true };
    const item = this.#buffer.shift();
    if (item.error) throw item.error;
    return { value: item.env, done: false };
  }

  async #deliverToCallback() {
    let sinceYield = 0;
    for (;;) {
      let item;
      try {
        while (this.#buffer.length === 0 && !this.#ended) await this.#fill();
        if (this.#buffer.length === 0) return;
        item = this.#buffer.shift();
      } catch (error) {
        item = { error };
      }
      try {
        if (item.error) this.#callback(item.error, null);
        else this.#callback(null, item.env);
      } catch (e) {
        // Not swallowed: an exception thrown by the callback surfaces as an uncaught exception,
        // as it would from an event listener. Delivery goes on.
        queueMicrotask(() => {
          throw e;
        });
      }
      // Let I/O run between long runs of queued envelopes.
      if (++sinceYield >= BATCH) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  /**
   * Async iteration over the envelopes. A message that could not be delivered (download
   * failed, invalid envelope, slow consumer, ...) rejects `next()` with its error; the
   * subscription stays open, so iterating again goes on with the next message. Leaving a
   * `for await` loop early (break, return, throw) closes the subscription.
   */
  [Symbol.asyncIterator]() {
    if (this.#callback) {
      throw makeError('INVALID_ARGUMENT', 'this subscription delivers to its callback; it cannot be iterated');
    }
    const iterator = {
      next: () => this.#next(),
      return: async (value) => {
        await this.close().catch(() => {});
        this.#buffer.length = 0;
        return { value, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /**
   * Stops receiving: unsubscribes; what was already received is still delivered (to the
   * callback, or to the iterator), then the subscription ends. Resolves once it has ended.
   */
  close() {
    if (!this.#closing) this.#closing = this.#close();
    return this.#closing;
  }

  async #close() {
    if (!this.#ended) {
      this.#closeCall = this.#h.use(async (h) => {
        const st = await callAsync(fn.nb_subscription_close, h);
        if (st !== status.OK && st !== status.CLOSED) {
          this.#closeError = fromStatus(st, detail.subscription(h));
          this.#abandoned = true;
        }
      });
      await this.#closeCall;
    }
    // Pull what is left (the callback pump does it by itself) until the end.
    if (this.#callback) await this.closed;
    else while (!this.#ended) await this.#pullOnce();
    if (this.#closeError) throw this.#closeError;
  }
}

// ---------------------------------------------------------------------------------------

/**
 * Connects to NATS. Options not given come from the environment (NATS_URL, FILESERVER_URL,
 * SIZE_THRESHOLD), then the built-in defaults.
 * @returns {Promise<Client>}
 */
async function connect(options = {}) {
  checkKeys(options, [CONFIG_KEYS], 'connect option');
  const cfg = makeConfig(options);
  try {
    const out = [null];
    const st = await callAsync(fn.nb_client_connect, cfg, out);
    if (st !== status.OK) throw fromStatus(st, detail.config(cfg));
    return new Client(out[0]);
  } finally {
    fn.nb_config_free(cfg);
  }
}

/**
 * The walkthrough's `smartsend` without a client: connects with `options`, sends, closes.
 * @returns {Promise<[Envelope, string]>}
 */
async function smartsend(subject, payloads, options = {}) {
  checkKeys(options, [CONFIG_KEYS, SEND_KEYS], 'smartsend option');
  subjectArg(subject);
  const prepared = preparePayloads(payloads); // bad input fails before connecting
  const client = await connect(pick(options, CONFIG_KEYS));
  let result;
  try {
    result = await client[SEND_PREPARED](subject, prepared, pick(options, SEND_KEYS));
  } catch (e) {
    await client.close().catch(() => {});
    throw e;
  }
  await client.close();
  return result;
}

/**
 * The walkthrough's `smartreceive` without a client: decodes one message (bytes, a string, or
 * a nats.js message) and downloads its link payloads, with the link settings of `options`.
 * No NATS connection is made.
 * @returns {Promise<Envelope>}
 */
async function smartreceive(msg, options = {}) {
  checkKeys(options, [CONFIG_KEYS], 'smartreceive option');
  const bytes = messageBytes(msg);
  const cfg = makeConfig(options);
  try {
    const out = [null];
    const st = await callAsync(fn.nb_smartreceive, cfg, bytes, bytes.length, out);
    if (st !== status.OK) throw fromStatus(st, detail.config(cfg));
    return takeEnvelope(out[0]);
  } finally {
    fn.nb_config_free(cfg);
  }
}

module.exports = { Client, Subscription, connect, smartsend, smartreceive, count };
