// The browser peer of the conformance matrix (tests/conformance/matrix.py): a headless
// Chromium page running bindings/browser/natsbridge.js (peer_browser_page.js in the page).
//
//   node peer_browser.mjs send SUBJECT SPEC.json   publishes one envelope described by SPEC.json
//   node peer_browser.mjs recv SUBJECT TIMEOUT_S   prints "ready" once subscribed, then the report
//                                                  of the one envelope it receives
//
// NATS_WS_URL (the nats-server's websocket listener) and FILESERVER_URL (a file server with
// CORS for any origin) come from the environment. The page is served on a loopback port of
// its own, so every upload and download is a cross-origin request.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const harness = await import(path.join(here, '..', '..', 'bindings', 'browser', 'test', 'harness.mjs'));

async function main() {
  const [cmd, subject, arg] = process.argv.slice(2);
  if (!((cmd === 'send' || cmd === 'recv') && subject && arg)) {
    throw new Error('usage: node peer_browser.mjs send SUBJECT SPEC.json | recv SUBJECT TIMEOUT_S');
  }
  const cfg = { natsUrl: process.env.NATS_WS_URL, fileserverUrl: process.env.FILESERVER_URL };
  if (!cfg.natsUrl) throw new Error('NATS_WS_URL (the websocket listener of nats-server) is not set');
  const { server, origin } = await harness.serve('/conformance/peer_browser_page.js');
  const browser = await harness.launch();
  try {
    const page = await harness.openPage(browser.context, origin);
    if (cmd === 'send') {
      const spec = JSON.parse(fs.readFileSync(arg, 'utf8'));
      const files = spec.payloads.map((p) => fs.readFileSync(p.file).toString('base64'));
      await page.evaluate(([c, s, sp, f]) => window.suite.send(c, s, sp, f), [cfg, subject, spec, files]);
    } else {
      await page.evaluate(([c, s]) => window.suite.subscribe(c, s), [cfg, subject]);
      process.stdout.write('ready\n');
      const report = await page.evaluate((t) => window.suite.receive(t), Number(arg));
      process.stdout.write(`${JSON.stringify(report)}\n`);
    }
  } finally {
    await browser.close();
    server.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`peer_browser: ${e && e.code ? `${e.code}: ` : ''}${e && e.message ? e.message : e}\n`);
    process.exit(1);
  },
);
