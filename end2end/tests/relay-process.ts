// A relay the test itself owns: started, stopped (SIGTERM or SIGKILL) and
// started again on the same port, inside the test namespace. Every relay
// started here is killed by `stopAllRelays()` (call it in afterEach).
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { ensureArtifactsDir } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');
export const RELAY_BIN = process.env.MESHCAST_RELAY_BIN ?? path.join(ROOT, 'target', 'release', 'meshcast-relay');
export const DIST = process.env.MESHCAST_DIST ?? path.join(ROOT, 'dist');

const running = new Set<ChildProcess>();

export interface RelayOptions {
  /** Address to bind (default 127.0.0.1); `0.0.0.0` to be reachable over a test veth too. */
  host?: string;
  /** Extra relay flags. */
  extra?: string[];
  /** It serves HTTPS (started with TLS flags in `extra`): checked over TLS, any certificate. */
  https?: boolean;
}

/** Whether GET `url` answers 200, over TLS without checking the certificate. */
function httpsOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

export class RelayProcess {
  child: ChildProcess | null = null;
  readonly logFile: string;
  /** http(s)://127.0.0.1:PORT (works for any bind address). */
  readonly base: string;

  constructor(
    readonly port: number,
    readonly opts: RelayOptions = {},
  ) {
    this.logFile = path.join(ensureArtifactsDir(), `relay-${port}.log`);
    this.base = `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}`;
    fs.writeFileSync(this.logFile, '');
  }

  /** Starts it and waits until /healthz answers; returns when it was spawned (Date.now()). */
  async start(timeoutMs = 10_000): Promise<number> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      throw new Error(`relay on port ${this.port} is already running (pid ${this.child.pid})`);
    }
    fs.appendFileSync(this.logFile, `\n=== test: starting relay at ${new Date().toISOString()} ===\n`);
    const log = fs.openSync(this.logFile, 'a');
    const host = this.opts.host ?? '127.0.0.1';
    const spawnedAt = Date.now();
    const child = spawn(RELAY_BIN, ['--listen', `${host}:${this.port}`, '--dist', DIST, '--stun', 'none', ...(this.opts.extra ?? [])], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`relay on port ${this.port} exited at start (${child.exitCode ?? child.signalCode}); see ${this.logFile}`);
      }
      if (this.opts.https) {
        if (await httpsOk(`${this.base}/healthz`)) return spawnedAt;
      } else {
        try {
          if ((await fetch(`${this.base}/healthz`)).ok) return spawnedAt;
        } catch {
          // not listening yet
        }
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`relay on port ${this.port} did not answer /healthz within ${timeoutMs} ms`);
  }

  /** Sends `signal` and waits for the process to exit; returns how long that took (ms). */
  async stop(signal: 'SIGTERM' | 'SIGKILL', timeoutMs = 10_000): Promise<number> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error(`relay on port ${this.port} is not running`);
    const t0 = Date.now();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    fs.appendFileSync(this.logFile, `\n=== test: ${signal} to pid ${child.pid} at ${new Date().toISOString()} ===\n`);
    child.kill(signal);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs));
    if ((await Promise.race([exited, timer])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`relay on port ${this.port} did not exit within ${timeoutMs} ms of ${signal}`);
    }
    return Date.now() - t0;
  }

  /** A page on this relay: path and query, e.g. `/?room=r`. */
  url(pathAndQuery: string): string {
    return `${this.base}${pathAndQuery}`;
  }
}

/** Kills (SIGKILL) every relay these tests started that still runs, and waits for them. */
export async function stopAllRelays(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  running.clear();
}
