// The browser tests (`make test-browser`): nats-server with a websocket listener, the embedded
// file server with CORS for the page's origin (another port, so CORS is really exercised),
// the test page on loopback, one headless Chromium running test/suite.js in the page.
// Prints one line per test; exits non-zero on any failure (a missing Chromium included).

import { launch, openPage, serve } from './harness.mjs';
import { freePort, startServers } from './servers.mjs';

async function main() {
  const t0 = Date.now();
  const { server, origin } = await serve('/test/suite.js');
  let servers = null;
  let browser = null;
  try {
    servers = await startServers(origin);
    browser = await launch();
    const page = await openPage(browser.context, origin);
    // A port nothing listens on: a file server or NATS server that is down.
    const cfg = { natsUrl: servers.wsUrl, fileserverUrl: servers.fileserverUrl, closedPort: await freePort() };
    const results = await page.evaluate((c) => window.suite.run(c), cfg);
    let failed = 0;
    for (const r of results) {
      console.log(`${r.ok ? 'ok' : 'not ok'} - ${r.name} (${r.ms} ms)`);
      for (const p of r.problems) console.log(`    ${p.replace(/\n/g, '\n    ')}`);
      failed += r.ok ? 0 : 1;
    }
    console.log(`browser: ${results.length - failed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return failed === 0 && results.length > 0 ? 0 : 1;
  } finally {
    if (browser) await browser.close();
    if (servers) servers.stop();
    server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`browser: cannot run: ${e && e.message ? e.message : e}`);
    console.log('browser: 0 passed, 1 failed');
    process.exit(1);
  },
);
