// What the browser tests and the conformance peer share: a static HTTP server for the module,
// its dependencies and a test page on loopback, and one headless Chromium driven by
// playwright-core. Chromium comes from the system (CHROMIUM_BIN, default /usr/bin/chromium;
// install.sh installs it); playwright-core downloads no browser.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MODULE_DIR = path.resolve(HERE, '..');
export const REPO = path.resolve(MODULE_DIR, '..', '..');

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.json': 'application/json', '.map': 'application/json' };

/** The import map the page needs: the module's two dependencies and theirs. */
export const IMPORT_MAP = {
  imports: {
    'nats.ws': '/node_modules/nats.ws/esm/nats.js',
    'apache-arrow': '/node_modules/apache-arrow/Arrow.dom.mjs',
    flatbuffers: '/node_modules/flatbuffers/mjs/flatbuffers.js',
    'json-with-bigint': '/node_modules/json-with-bigint/json-with-bigint.js',
    tslib: '/node_modules/tslib/tslib.es6.mjs',
  },
};

/**
 * Serves bindings/browser/ at / (the module, lib/, node_modules/, test/), tests/vectors/
 * at /vectors/ and tests/conformance/ at /conformance/, on 127.0.0.1 (a secure context: crypto.subtle works). `/page.html` is a page
 * with the import map that imports `script` (a path under bindings/browser).
 */
export async function serve(script) {
  const roots = [
    ['/vectors/', path.join(REPO, 'tests', 'vectors')],
    ['/conformance/', path.join(REPO, 'tests', 'conformance')],
    ['/', MODULE_DIR],
  ];
  const hits = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><meta charset="utf-8"><title>natsbridge</title>
<script type="importmap">${JSON.stringify(IMPORT_MAP)}</script>
<script type="module">import * as t from ${JSON.stringify(script)}; window.suite = t; window.suiteReady = true;</script>`);
      return;
    }
    // For the download tests: a redirect (never to be followed), and an answer that fails
    // twice with 503 before it succeeds (retried with backoff); /hits tells how often each
    // was asked for.
    if (url.pathname.startsWith('/t/')) {
      const key = url.pathname;
      hits.set(key, (hits.get(key) || 0) + 1);
      if (key.startsWith('/t/redirect')) {
        res.writeHead(302, { location: '/t/redirected-target' });
        res.end();
      } else if (key.startsWith('/t/flaky') && hits.get(key) <= 2) {
        res.writeHead(503);
        res.end('busy\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end('abc');
      }
      return;
    }
    if (url.pathname === '/hits') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.fromEntries(hits)));
      return;
    }
    if (url.pathname === '/vectors/index.json') {
      const dir = path.join(REPO, 'tests', 'vectors');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()));
      return;
    }
    for (const [prefix, dir] of roots) {
      if (!url.pathname.startsWith(prefix)) continue;
      const file = path.resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
      if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) break;
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    res.writeHead(404);
    res.end('not found\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Chromium from CHROMIUM_BIN or /usr/bin/chromium; a clear error saying how to get it. */
export function chromiumPath() {
  const bin = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
  if (!fs.existsSync(bin)) {
    throw new Error(`Chromium not found at ${bin}: install it (Debian/Ubuntu: apt-get install chromium; ` +
      'bindings/browser/test/install.sh does it as root or with passwordless sudo) or set CHROMIUM_BIN');
  }
  return bin;
}

/** One headless Chromium with a fresh profile; `close()` stops it and removes the profile. */
export async function launch() {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    // The fresh profile is passed as --user-data-dir by playwright-core.
    args: CHROMIUM_FLAGS,
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Opens `origin`/page.html and waits for its module to load; page errors go to stderr. */
export async function openPage(context, origin) {
  const page = await context.newPage();
  let failed;
  const loadError = new Promise((_, reject) => {
    failed = reject;
  });
  loadError.catch(() => {});
  page.on('pageerror', (e) => {
    process.stderr.write(`[page error] ${e.message}\n`);
    failed(new Error(`the test page failed to load: ${e.message}`));
  });
  // The tests provoke failed requests on purpose; the console is shown when asked for.
  page.on('console', (m) => {
    if (process.env.NB_BROWSER_VERBOSE && m.type() === 'error') process.stderr.write(`[page console] ${m.text()}\n`);
  });
  await page.goto(`${origin}/page.html`);
  await Promise.race([page.waitForFunction(() => window.suiteReady === true, null, { timeout: 30_000 }), loadError]);
  return page;
}
