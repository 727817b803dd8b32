'use strict';
// Errors: Error subclasses with `.code` set to the wire code, from the binding's own checks and
// from the library, for sending, receiving and connecting.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const nb = require('..');
const { makeError, fromStatus } = require('../lib/errors');
const { REPO, startFileServer, uniqueSubject, withClient } = require('./helpers');

let servers;
let client;
withClient((s, c) => {
  servers = s;
  client = c;
});

/** An assert.rejects / assert.throws matcher: error class, `.code`, and a message. */
function fails(cls, code, message) {
  return (e) => {
    assert.ok(e instanceof cls, `${e?.name} is a ${cls.name}: ${e?.message}`);
    assert.ok(e instanceof nb.NatsBridgeError && e instanceof Error);
    assert.equal(e.code, code);
    assert.equal(e.name, cls.name);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** A loopback port with nothing listening on it. */
async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

test('connecting to nowhere: NATS_CONNECTION_FAILED', async () => {
  const port = await closedPort();
  await assert.rejects(
    nb.connect({ natsUrl: `nats://127.0.0.1:${port}`, connectTimeout: 1000 }),
    fails(nb.NatsConnectionFailedError, 'NATS_CONNECTION_FAILED', /./),
  );
});

test('an unknown payload type: INVALID_PAYLOAD_TYPE, nothing published', async () => {
  await assert.rejects(
    client.smartsend(uniqueSubject('e'), [['x', 'hi', 'spreadsheet']]),
    fails(nb.InvalidPayloadTypeError, 'INVALID_PAYLOAD_TYPE', /spreadsheet/),
  );
});

test('a value that does not fit its type: INVALID_PAYLOAD', async () => {
  const cases = [
    ['text', 42],
    ['jsontable', { not: 'rows' }],
    ['binary', 'a string'],
    ['arrowtable', { a: [1, 2] }],
    ['dictionary', undefined],
  ];
  for (const [type, value] of cases) {
    await assert.rejects(client.smartsend(uniqueSubject('e'), [['x', value, type]]), fails(nb.InvalidPayloadError, 'INVALID_PAYLOAD'));
  }
  // Bytes the library itself refuses: not an Arrow IPC stream.
  await assert.rejects(
    client.smartsend(uniqueSubject('e'), [['x', Buffer.from('not arrow'), 'arrowtable']]),
    fails(nb.InvalidPayloadError, 'INVALID_PAYLOAD'),
  );
});

test('bad arguments and options: INVALID_ARGUMENT', async () => {
  await assert.rejects(client.smartsend(uniqueSubject('e'), [['x', 'hi', 'text']], { msg_purpose: 'gossip' }), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
  await assert.rejects(
    client.smartsend(uniqueSubject('e'), [['x', 'hi', 'text']], { size_threshold: 10 }),
    fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT', /sizeThreshold/),
  );
  await assert.rejects(client.smartsend(uniqueSubject('e'), 'hello'), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
  await assert.rejects(client.smartsend(uniqueSubject('e'), [['', 'hi', 'text']]), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
  await assert.rejects(client.smartsend('', [['x', 'hi', 'text']]), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
  await assert.rejects(nb.connect({ natsURL: 'nats://x' }), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT', /natsURL/));
  assert.throws(() => nb.setLogLevel('loud'), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
});

test('smartreceive of something that is not an envelope: INVALID_ENVELOPE', async () => {
  await assert.rejects(nb.smartreceive('{"hello": 1}'), fails(nb.InvalidEnvelopeError, 'INVALID_ENVELOPE'));
  await assert.rejects(client.smartreceive(Buffer.from('not json')), fails(nb.InvalidEnvelopeError, 'INVALID_ENVELOPE'));
  await assert.rejects(nb.smartreceive(42), fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT'));
});

test('a link to another origin: LINK_URL_REJECTED; a missing file: DOWNLOAD_FAILED', async () => {
  const link = (url) =>
    JSON.stringify({
      payloads: [{ dataname: 'f', payload_type: 'binary', transport: 'link', encoding: 'none', size: 4, data: url }],
    });
  await assert.rejects(
    client.smartreceive(link('http://127.0.0.2:1/file/a/b/f')),
    fails(nb.LinkUrlRejectedError, 'LINK_URL_REJECTED'),
  );
  await assert.rejects(
    nb.smartreceive(link(`${servers.fileserverUrl}/file/missing/missing/f`), {
      fileserverUrl: servers.fileserverUrl,
      downloadRetry: { maxAttempts: 2, baseDelay: 10, maxDelay: 10 },
    }),
    fails(nb.DownloadFailedError, 'DOWNLOAD_FAILED', /404/),
  );
});

test('too large without a file server: PAYLOAD_TOO_LARGE, naming the correlation id', async () => {
  const noFiles = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: null });
  try {
    const big = [['big', Buffer.alloc(2_000_000), 'binary']];
    await assert.rejects(noFiles.smartsend(uniqueSubject('e'), big, { correlation_id: 'c-big' }), (e) => {
      fails(nb.PayloadTooLargeError, 'PAYLOAD_TOO_LARGE')(e);
      assert.equal(e.correlationId, 'c-big');
      return true;
    });
    // Without one given, the id the library chose for the envelope.
    await assert.rejects(noFiles.smartsend(uniqueSubject('e'), big), (e) => {
      fails(nb.PayloadTooLargeError, 'PAYLOAD_TOO_LARGE')(e);
      assert.match(e.correlationId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      return true;
    });
  } finally {
    await noFiles.close();
  }
});

test('a file server that wants a token: UPLOAD_FAILED without it, a link with fileserverToken', async () => {
  const files = await startFileServer(['--token', 'node-tok']);
  const data = [['a', Buffer.alloc(100, 1), 'binary']];
  const opts = { sizeThreshold: 10, fallbackToDirect: false };
  try {
    const anonymous = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: files.url });
    try {
      await assert.rejects(
        anonymous.smartsend(uniqueSubject('tok'), data, opts),
        fails(nb.UploadFailedError, 'UPLOAD_FAILED', /anonymous uploads are disabled/),
      );
    } finally {
      await anonymous.close();
    }
    const withToken = await nb.connect({ natsUrl: servers.natsUrl, fileserverUrl: files.url, fileserverToken: 'node-tok' });
    try {
      const [env] = await withToken.smartsend(uniqueSubject('tok'), data, opts);
      assert.equal(env.payloads[0].transport, 'link');
    } finally {
      await withToken.close();
    }
    await assert.rejects(
      nb.connect({ natsUrl: servers.natsUrl, fileserverToken: 'a\nb' }),
      fails(nb.InvalidArgumentError, 'INVALID_ARGUMENT', /fileserver_token/),
    );
  } finally {
    await files.stop();
  }
});

test('an undecodable received envelope: its correlation id on the error; none for other errors', async () => {
  const raw = JSON.stringify({
    correlation_id: 'c-bad',
    payloads: [{ dataname: 'x', payload_type: 'binary', transport: 'direct', encoding: 'base64', size: 1, data: '!!' }],
  });
  await assert.rejects(client.smartreceive(raw), (e) => {
    fails(nb.DeserializationError, 'DESERIALIZATION_ERROR')(e);
    assert.equal(e.correlationId, 'c-bad');
    return true;
  });
  await assert.rejects(nb.smartreceive(42), (e) => e.correlationId === undefined);
});

test('calls on a closed client: CLOSED; close() again is harmless', async () => {
  const c = await nb.connect({ natsUrl: servers.natsUrl });
  await c.close();
  assert.equal(c.isClosed, true);
  await c.close();
  await assert.rejects(c.smartsend(uniqueSubject('e'), [['x', 'hi', 'text']]), fails(nb.ClosedError, 'CLOSED'));
  await assert.rejects(c.subscribe(uniqueSubject('e')), fails(nb.ClosedError, 'CLOSED'));
  await assert.rejects(c.flush(), fails(nb.ClosedError, 'CLOSED'));
});

test('every wire code has its class, exported, with the code on instances', () => {
  const codes = {
    INVALID_ARGUMENT: 'InvalidArgumentError',
    TIMEOUT: 'TimeoutError',
    CLOSED: 'ClosedError',
    INTERNAL: 'InternalError',
    NATS_CONNECTION_FAILED: 'NatsConnectionFailedError',
    SLOW_CONSUMER: 'SlowConsumerError',
    NO_RESPONDERS: 'NoRespondersError',
    MESSAGES_DROPPED: 'MessagesDroppedError',
    INVALID_ENVELOPE: 'InvalidEnvelopeError',
    INVALID_PAYLOAD_TYPE: 'InvalidPayloadTypeError',
    INVALID_TRANSPORT: 'InvalidTransportError',
    INVALID_PAYLOAD: 'InvalidPayloadError',
    DESERIALIZATION_ERROR: 'DeserializationError',
    PAYLOAD_TOO_LARGE: 'PayloadTooLargeError',
    UPLOAD_FAILED: 'UploadFailedError',
    DOWNLOAD_FAILED: 'DownloadFailedError',
    LINK_URL_REJECTED: 'LinkUrlRejectedError',
    INTEGRITY_ERROR: 'IntegrityError',
  };
  for (const [code, name] of Object.entries(codes)) {
    const e = new nb[name]('m');
    assert.equal(e.code, code);
    assert.ok(e instanceof nb.NatsBridgeError);
  }
  // Every NB_ERR_* of the header has its class: a new status cannot go unnoticed.
  const header = fs.readFileSync(path.join(REPO, 'include', 'natsbridge.h'), 'utf8');
  const wire = [...header.matchAll(/#define NB_ERR_(\w+) (-\d+)/g)].filter(([, , n]) => Number(n) > -100);
  assert.ok(wire.length >= 17);
  for (const [, code, n] of wire) {
    assert.ok(codes[code], `no class for ${code}`);
    const e = makeError(code, `${code}: m`, { status: Number(n) });
    assert.equal(e.name, codes[code]);
    assert.equal(e.status, Number(n));
  }
});

test('MESSAGES_DROPPED: the library status maps to MessagesDroppedError, which says how many', () => {
  const many = fromStatus(-13, () => 'MESSAGES_DROPPED: 7 message(s) were handed to the connection but not confirmed');
  assert.ok(many instanceof nb.MessagesDroppedError && many instanceof nb.NatsBridgeError);
  assert.equal(many.code, 'MESSAGES_DROPPED');
  assert.equal(many.status, -13);
  assert.equal(many.dropped, 7);
  const one = fromStatus(-13, () => 'MESSAGES_DROPPED: the connection to NATS was lost before the server confirmed the message (correlation_id c-1)');
  assert.equal(one.dropped, 1);
  assert.equal(one.correlationId, 'c-1');
  // Without the library's message: its static text.
  assert.match(fromStatus(-13, null).message, /MESSAGES_DROPPED/);
});
