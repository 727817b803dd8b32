'use strict';
// The native handle (nb_client, nb_subscription) of one JavaScript object, its owner. The
// owner's close() frees it with release(); an owner collected without close() has it freed by
// a FinalizationRegistry, so that dropped clients and subscriptions give back their connection,
// subscription and memory. close() stays the way to end them: it flushes, unsubscribes and
// delivers what was received; finalization only frees.
//
// No free may run under a call still using the handle on libuv's pool. Such a call goes
// through use(), whose closure holds this object; a release() asked for meanwhile (by close(),
// or by the finalizer of an owner collected during the call) waits for the last use to end.
// The registry holds this object, never the owner: the owner stays collectable.
//
// Frees run on the pool too (freeing a client closes its connection: a flush, a round trip),
// at most FREES_AT_ONCE at a time: a burst of collected owners neither takes every pool thread
// nor overflows koffi's queue of async calls (max_async_calls).

const { callAsync } = require('./ffi');
const { makeError } = require('./errors');

const FREES_AT_ONCE = 2;
let freesRunning = 0;
const freesWaiting = [];

function startFrees() {
  while (freesRunning < FREES_AT_ONCE && freesWaiting.length > 0) {
    const { free, ptr, done } = freesWaiting.shift();
    freesRunning++;
    callAsync(free, ptr)
      .catch(() => {}) // the free functions return nothing and cannot fail
      .then(() => {
        freesRunning--;
        done();
        startFrees();
      });
  }
}

const finalizer = new FinalizationRegistry((handle) => {
  handle.release();
});

class NativeHandle {
  #ptr;
  #free;
  #what;
  #onRelease;
  #uses = 0;
  #released = null;
  #resolveReleased = null;

  /**
   * @param {object} owner the object whose collection frees the handle
   * @param {*} ptr the library's pointer
   * @param {Function} free the koffi function freeing it (nb_client_free, nb_subscription_free)
   * @param {string} what 'client' or 'subscription', for errors
   * @param {Function} [onRelease] called with this handle once release() is asked for. It must
   *   not refer to the owner: a closure made in the owner's constructor or methods shares their
   *   scope, `this` included, and would keep the owner from ever being collected.
   */
  constructor(owner, ptr, free, what, onRelease = null) {
    this.#ptr = ptr;
    this.#free = free;
    this.#what = what;
    this.#onRelease = onRelease;
    /** The owner, while it has not been collected. */
    this.owner = new WeakRef(owner);
    finalizer.register(owner, this, this);
  }

  /** The pointer, for calls that return at once on this thread (null once freed). */
  get ptr() {
    return this.#ptr;
  }

  /**
   * Runs `body(ptr)`, which may await calls on the pool with the pointer; the handle is not
   * freed before the promise it returns settles.
   */
  async use(body) {
    if (this.#ptr === null) throw makeError('CLOSED', `the ${this.#what} is closed`);
    this.#uses++;
    try {
      return await body(this.#ptr);
    } finally {
      if (--this.#uses === 0 && this.#released !== null) this.#freeNow();
    }
  }

  /**
   * Frees the handle (on the pool, once no use() is running) and takes it out of the registry.
   * Resolves once it is freed; calling it again returns the same promise.
   */
  release() {
    if (this.#released === null) {
      finalizer.unregister(this);
      this.#released = new Promise((resolve) => (this.#resolveReleased = resolve));
      this.#onRelease?.(this);
      if (this.#uses === 0) this.#freeNow();
    }
    return this.#released;
  }

  #freeNow() {
    const ptr = this.#ptr;
    if (ptr === null) return;
    this.#ptr = null;
    freesWaiting.push({ free: this.#free, ptr, done: this.#resolveReleased });
    startFrees();
  }
}

module.exports = { NativeHandle };
