// The Plik client of a page (wire format §5, design/plik.md), as the core's src/store/plik.rs
// behaves: upload = create an upload, add the file (multipart field `file`, filename = the
// dataname made routable), URL = {base}/file/{id}/{fileId}/{name}; download with exponential
// backoff, 4xx other than 408/429 permanent, redirects never followed, only from allowed
// origins, within size caps, sha256 checked (Web Crypto) before the bytes are handed on.
//
// The file server must answer CORS for the page's origin (`natsbridge fileserver
// --cors-origin ORIGIN`). Uploads of the file body go through XMLHttpRequest, the one browser
// API that reports upload progress; everything else is fetch.

import { NatsBridgeError } from './errors.js';

/** Bytes of a path segment left as they are, as the core's percent-encoding of file names. */
function encodeSegment(name) {
  return encodeURIComponent(name).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The file name a dataname travels as: no path separators or control characters. */
function routableName(dataname) {
  // eslint-disable-next-line no-control-regex
  const name = [...dataname].map((c) => (c === '/' || c === '\\' || /[\u0000-\u001f\u007f-\u009f]/.test(c) ? '_' : c)).join('');
  return name === '' || name === '.' || name === '..' ? 'payload' : name;
}

const utf8 = new TextEncoder();

function base64OfText(text) {
  let bin = '';
  for (const b of utf8.encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/**
 * The file server's base URL without user info or trailing '/', and its basic-auth header
 * from the user info (a browser refuses URLs with credentials in fetch).
 */
export function parseBaseUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new NatsBridgeError('INVALID_ARGUMENT', `fileserverUrl ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NatsBridgeError('INVALID_ARGUMENT', `fileserverUrl ${JSON.stringify(text)} must be http or https`);
  }
  let basic = null;
  if (url.username || url.password) {
    basic = `Basic ${base64OfText(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`)}`;
    url.username = '';
    url.password = '';
  }
  url.search = '';
  url.hash = '';
  return { base: url.href.replace(/\/+$/, ''), origin: url.origin, basic };
}

/**
 * Checks a link URL from an envelope before any connection: http(s), a host, no embedded
 * credentials, an allowed origin (`allowed`: '*' for any, or a list; the file server's own
 * origin always). Fails with LINK_URL_REJECTED.
 */
export function checkLinkUrl(link, allowed, ownOrigin) {
  const reject = (why) =>
    new NatsBridgeError('LINK_URL_REJECTED', `link URL ${JSON.stringify(link)} refused: ${why}`, { details: { url: link } });
  let url;
  try {
    url = new URL(link);
  } catch {
    throw reject('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw reject(`scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not http or https`);
  if (!url.hostname) throw reject('no host');
  if (url.username || url.password) throw reject('credentials embedded in the URL');
  if (allowed === '*') return url;
  const origins = allowed.map((o) => {
    try {
      return new URL(o).origin;
    } catch {
      return null;
    }
  });
  if (url.origin === ownOrigin || origins.includes(url.origin)) return url;
  const list = [ownOrigin, ...allowed].filter(Boolean);
  throw reject(
    `origin ${url.origin} is not allowed (allowed: ${list.length ? list.join(', ') : 'none: no file server configured'}); allow it with allowedOrigins`,
  );
}

/** The first line of an error reply, for messages. */
async function errorText(resp) {
  let body = '';
  try {
    body = await resp.text();
  } catch {
    /* the status says enough */
  }
  const line = body.split('\n')[0].trim().slice(0, 200);
  return line ? `HTTP ${resp.status}: ${line}` : `HTTP ${resp.status}`;
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

/** The hex sha256 of `bytes` (Web Crypto). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let out = '';
  for (const b of digest) out += b.toString(16).padStart(2, '0');
  return out;
}

/** A deadline of `base` ms plus `bytes` at `rate` bytes/s. */
export function transferDeadline(base, bytes, rate) {
  return base + Math.ceil((bytes * 1000) / Math.max(1, rate));
}

export class PlikClient {
  /**
   * @param {object} s the client's settings: fileserverUrl, fileserverToken, linkOneshot,
   *   linkTtl (s), operationTimeout, minTransferRate, downloadRetry, maxDownloadBytes
   */
  constructor(s) {
    this.s = s;
    const parsed = s.fileserverUrl ? parseBaseUrl(s.fileserverUrl) : null;
    this.base = parsed?.base ?? null;
    this.origin = parsed?.origin ?? null;
    this.basic = parsed?.basic ?? null;
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.basic) h.Authorization = this.basic;
    return h;
  }

  /**
   * Uploads one payload's bytes; resolves with `{ url, discard }` (discard removes the upload).
   * `onBytes(n)` is told of every chunk of the body the browser has sent.
   */
  async upload(dataname, bytes, onBytes) {
    const base = this.base;
    if (!base) throw new NatsBridgeError('UPLOAD_FAILED', 'no file server is configured');
    const deadline = transferDeadline(this.s.operationTimeout, bytes.length, this.s.minTransferRate);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), deadline);
    let created = null;
    try {
      const headers = this.headers({ 'Content-Type': 'application/json' });
      if (this.s.fileserverToken) headers['X-PlikToken'] = this.s.fileserverToken;
      let resp;
      try {
        resp = await fetch(`${base}/upload`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ OneShot: !!this.s.linkOneshot, TTL: Math.max(1, Math.floor(this.s.linkTtl)) }),
          redirect: 'error',
          signal: abort.signal,
          cache: 'no-store',
        });
      } catch (e) {
        throw this.failed(`cannot reach file server ${base}: ${abort.signal.aborted ? `no answer within ${deadline} ms` : e.message}`, e);
      }
      if (resp.status !== 200) throw this.failed(`file server refused to create an upload: ${await errorText(resp)}`);
      const upload = await this.replyJson(resp, 'create an upload');
      checkedId(upload.id, 'upload', this);
      created = { id: upload.id, token: upload.uploadToken ?? '' };
      const name = routableName(dataname);
      const added = await this.sendFile(`${base}/file/${upload.id}`, created.token, name, bytes, onBytes, abort.signal, deadline);
      checkedId(added.id, 'file', this);
      const url = `${base}/file/${upload.id}/${added.id}/${encodeSegment(name)}`;
      const discard = () => this.removeUpload(created.id, created.token);
      return { url, discard };
    } catch (e) {
      if (created) await this.removeUpload(created.id, created.token);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  failed(message, cause) {
    return new NatsBridgeError('UPLOAD_FAILED', message, cause ? { cause } : {});
  }

  async replyJson(resp, what) {
    const text = await resp.text();
    try {
      return JSON.parse(text);
    } catch {
      throw this.failed(`file server's answer to ${what} is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /** POST of the multipart body, by XMLHttpRequest for its upload progress events. */
  sendFile(url, token, name, bytes, onBytes, signal, deadline) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', url);
      for (const [k, v] of Object.entries(this.headers({ 'X-UploadToken': token }))) xhr.setRequestHeader(k, v);
      let sent = 0;
      xhr.upload.onprogress = (ev) => {
        // The multipart framing counts too: report payload bytes only, never more than there are.
        const now = Math.min(bytes.length, ev.loaded);
        if (now > sent && onBytes) onBytes(now - sent);
        sent = Math.max(sent, now);
      };
      const fail = (why) => reject(this.failed(`uploading ${JSON.stringify(name)} to ${this.base}: ${why}`));
      xhr.onerror = () => fail('network error');
      xhr.onabort = () => fail(`did not complete within ${deadline} ms`);
      xhr.onload = () => {
        // XHR follows redirects on its own: a reply from another URL is refused as fetch would.
        if (xhr.responseURL && xhr.responseURL !== url) return fail(`redirected to ${xhr.responseURL}; redirects are refused`);
        if (xhr.status !== 200) {
          const line = String(xhr.responseText || '').split('\n')[0].trim().slice(0, 200);
          return reject(this.failed(`file server did not accept the file ${JSON.stringify(name)}: HTTP ${xhr.status}${line ? `: ${line}` : ''}`));
        }
        if (onBytes && sent < bytes.length) onBytes(bytes.length - sent);
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          fail(`the answer is not JSON: ${String(xhr.responseText).slice(0, 200)}`);
        }
      };
      signal.addEventListener('abort', () => xhr.abort(), { once: true });
      const form = new FormData();
      form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), name);
      xhr.send(form);
    });
  }

  async removeUpload(id, token) {
    try {
      await fetch(`${this.base}/upload/${id}`, {
        method: 'DELETE',
        headers: this.headers({ 'X-UploadToken': token }),
        redirect: 'error',
        signal: AbortSignal.timeout(this.s.operationTimeout),
      });
    } catch {
      /* best effort, as the core's */
    }
  }

  /**
   * Downloads a link payload (its URL already checked): retries with backoff; checks the size
   * against `expected` (or maxDownloadBytes) and the sha256 when given.
   * @returns {Promise<Uint8Array>}
   */
  async download(url, expected, sha256, signal) {
    const retry = this.s.downloadRetry;
    const attempts = Math.max(1, retry.maxAttempts);
    let last = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const r = await this.attempt(url, expected, sha256, signal);
      if (r.ok) return r.bytes;
      if (r.permanent) throw r.permanent;
      last = r.why;
      if (signal.aborted) break;
      if (attempt < attempts) {
        const delay = Math.min(retry.maxDelay, retry.baseDelay * 2 ** (attempt - 1));
        try {
          await sleep(delay, signal);
        } catch {
          break;
        }
      }
    }
    if (signal.aborted) throw signal.reason;
    throw new NatsBridgeError('DOWNLOAD_FAILED', `Failed to fetch data after ${attempts} attempts: ${last}`, { details: { url, attempts } });
  }

  async attempt(url, expected, sha256, signal) {
    const integrity = (why) => ({
      permanent: new NatsBridgeError('INTEGRITY_ERROR', `payload at ${url}: ${why}`, { details: { url } }),
    });
    const answer = new AbortController();
    const onAbort = () => answer.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => answer.abort(), this.s.operationTimeout);
    let resp;
    try {
      // 'manual': a redirect is never followed; it arrives as an opaque answer refused below.
      resp = await fetch(url, { redirect: 'manual', signal: answer.signal, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      if (signal.aborted) return { why: 'deadline passed' };
      return { why: answer.signal.aborted ? `no answer within ${this.s.operationTimeout} ms` : `${e.message}` };
    }
    clearTimeout(timer);
    try {
      if (resp.type === 'opaqueredirect' || (resp.status >= 300 && resp.status < 400)) {
        return {
          permanent: new NatsBridgeError('DOWNLOAD_FAILED', `file server answered a redirect for ${url}; redirects are refused`, {
            details: { url, status: resp.status },
          }),
        };
      }
      if (resp.status !== 200) {
        const text = await errorText(resp);
        const permanent = resp.status >= 400 && resp.status < 500 && resp.status !== 408 && resp.status !== 429;
        if (!permanent) return { why: text };
        return {
          permanent: new NatsBridgeError('DOWNLOAD_FAILED', `file server answered ${text} for ${url}`, { details: { url, status: resp.status } }),
        };
      }
      const cap = expected ?? this.s.maxDownloadBytes;
      const announced = Number(resp.headers.get('Content-Length'));
      if (resp.headers.has('Content-Length') && announced > cap) {
        resp.body?.cancel();
        return integrity(`file server announces ${announced} bytes, more than the ${cap} expected`);
      }
      let buf = new Uint8Array(expected ?? (Number.isFinite(announced) && announced > 0 ? announced : 64 * 1024));
      let received = 0;
      const reader = resp.body.getReader();
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (e) {
          return { why: signal.aborted ? 'deadline passed' : `download interrupted: ${e.message}` };
        }
        if (chunk.done) break;
        const piece = chunk.value;
        if (received + piece.length > cap) {
          reader.cancel();
          return integrity(`file server sent more than the ${cap} bytes expected`);
        }
        if (received + piece.length > buf.length) {
          const grown = new Uint8Array(Math.min(cap, Math.max(buf.length * 2, received + piece.length)));
          grown.set(buf.subarray(0, received));
          buf = grown;
        }
        buf.set(piece, received);
        received += piece.length;
      }
      if (expected != null && received !== expected) {
        return integrity(`received ${received} bytes, the envelope declares ${expected}`);
      }
      const bytes = received === buf.length ? buf : buf.slice(0, received);
      if (sha256) {
        const got = await sha256Hex(bytes);
        if (got !== sha256.toLowerCase()) {
          return integrity(`sha256 mismatch: envelope declares ${sha256}, received bytes hash to ${got}`);
        }
      }
      return { ok: true, bytes };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

function checkedId(id, what, client) {
  if (typeof id !== 'string' || !/^[A-Za-z0-9]{1,64}$/.test(id)) {
    throw client.failed(`file server returned an unusable ${what} id ${JSON.stringify(id)}`);
  }
}
