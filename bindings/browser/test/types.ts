// Compiled (not run) by `tsc -p test` in make test-browser: the declarations describe the API
// as the tests use it, and wrong uses are refused (@ts-expect-error).
import * as nb from '../natsbridge.js';
import type { Table } from 'apache-arrow';

export async function use(table: Table): Promise<void> {
  const client: nb.Client = await nb.connect({ natsUrl: 'ws://127.0.0.1:8222', fileserverUrl: null, allowedOrigins: '*' });
  const [env, json]: [nb.Envelope, string] = await client.smartsend(
    'a.b',
    [['t', 'hi', 'text'], ['d', { k: [1, null] }, 'dictionary'], ['a', table, 'arrowtable'], ['b', new Uint8Array(1), 'binary', { note: 'x' }]],
    { msg_purpose: 'event', sizeThreshold: 10, onProgress: (sent: number, total: number) => void (sent + total) },
  );
  const p: nb.Payload = env.payloads[0];
  const [dataname, data, type] = p;
  void [dataname, data, type, json, p.url, p.metadata.payload_bytes, env.correlation_id, env.broker_url];
  const sub: nb.Subscription = await client.subscribe('a.>');
  for await (const e of sub) {
    const reply: [nb.Envelope, string] = await client.reply(e, [['ok', 'fine', 'text']]);
    void reply;
    break;
  }
  const answer: nb.Envelope = await client.request('svc', [['q', 1, 'dictionary']], { timeout: 100 });
  const received: nb.Envelope = await nb.smartreceive('{}', { maxDownloadBytes: 10, downloadRetry: { maxAttempts: 2 } });
  void [answer, received];
  try {
    await client.flush();
  } catch (e) {
    if (e instanceof nb.NatsBridgeError) {
      const code: nb.ErrorCode = e.code;
      void [code, e.correlationId, e.details];
    }
  }
  // @ts-expect-error an unknown payload type
  await client.smartsend('a.b', [['x', 'y', 'nosuchtype']]);
  // @ts-expect-error a number is not binary
  await client.smartsend('a.b', [['x', 5, 'binary']]);
  // @ts-expect-error not a msg_purpose
  await client.smartsend('a.b', [], { msg_purpose: 'gossip' });
  await client.close();
}
