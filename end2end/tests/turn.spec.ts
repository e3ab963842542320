// TURN, through coturn and through the relay's embedded server: a
// relay-only call (`?ice=relay`) really relays, and wrong or expired
// credentials are refused and explained. Each test starts its own TURN
// server and relay (inside the test namespace, on loopback, which both TURN
// servers are told to allow: test only).
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, expectMediaFlowing, openParticipant, remoteTile, test } from './helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const RELAY_BIN = process.env.MESHCAST_RELAY_BIN ?? path.join(ROOT, 'target', 'release', 'meshcast-relay');
const DIST = process.env.MESHCAST_DIST ?? path.join(ROOT, 'dist');
const SECRET = 'e2e-shared-secret';

const started: ChildProcess[] = [];

function start(cmd: string, args: string[], logName: string): ChildProcess {
  const log = fs.openSync(path.join(ROOT, 'end2end', 'artifacts', logName), 'w');
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  started.push(child);
  return child;
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${ms} ms`);
}

/** coturn on 127.0.0.1:turnPort with the shared secret (loopback peers allowed: test only). */
async function startCoturn(turnPort: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshcast-turn-'));
  start('turnserver', [
    '-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${turnPort}`,
    `--min-port=${turnPort + 100}`, `--max-port=${turnPort + 200}`, '--realm=meshcast.test',
    '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--fingerprint', '--no-tls', '--no-dtls',
    '--no-cli', '--allow-loopback-peers', '--no-multicast-peers', `--userdb=${dir}/turndb`,
    `--pidfile=${dir}/turn.pid`, '--log-file=stdout', '--simple-log',
  ], `coturn-${turnPort}.log`);
  const logFile = path.join(ROOT, 'end2end', 'artifacts', `coturn-${turnPort}.log`);
  await waitFor(async () => fs.readFileSync(logFile, 'utf8').includes('Total General servers'), 'coturn');
}

/** A relay on 127.0.0.1:port with these flags. */
async function startRelay(port: number, flags: string[]): Promise<string> {
  start(RELAY_BIN, ['--listen', `127.0.0.1:${port}`, '--dist', DIST, '--stun', 'none', ...flags], `relay-${port}.log`);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    try {
      return (await fetch(`${base}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 'relay');
  return base;
}

test.afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

/** The embedded TURN server's flags, on 127.0.0.1:turnPort. */
function embedded(turnPort: number): string[] {
  return ['--turn-listen', `127.0.0.1:${turnPort}`, '--turn-allow-loopback', '--turn-ports', `${turnPort + 100}-${turnPort + 200}`];
}

/**
 * The two TURN servers under test. `serve` starts whatever runs beside the
 * signaling relay and returns the relay's flags for a TURN server that
 * checks `secret`, handing out credentials made with `issued` (a different
 * secret: wrong credentials).
 */
const SERVERS: Record<string, (turnPort: number, secret: string, issued: string) => Promise<string[]>> = {
  coturn: async (turnPort, secret, issued) => {
    if (secret !== SECRET) throw new Error('coturn is started with SECRET');
    await startCoturn(turnPort);
    return ['--turn-url', `turn:127.0.0.1:${turnPort}?transport=udp`, '--turn-secret', issued];
  },
  'the embedded TURN server': async (turnPort, secret, issued) => {
    if (secret === issued) return [...embedded(turnPort), '--turn-secret', secret];
    // Wrong credentials: a second relay runs the TURN server with the real
    // secret; the signaling relay hands out credentials made with another.
    await startRelay(turnPort + 1000, [...embedded(turnPort), '--turn-secret', secret]);
    return ['--turn-url', `turn:127.0.0.1:${turnPort}?transport=udp`, '--turn-secret', issued];
  },
};

async function relayCandidates(page: import('@playwright/test').Page): Promise<number> {
  return page.evaluate(async () => {
    let n = 0;
    for (const pc of (window as any).__pcs as RTCPeerConnection[]) {
      (await pc.getStats()).forEach((s: any) => {
        if (s.type === 'local-candidate' && s.candidateType === 'relay') n++;
      });
    }
    return n;
  });
}

let port = 3200;
let turnPort = 3478;

for (const [kind, serve] of Object.entries(SERVERS)) {
  test(`a relay-only call through ${kind} carries video, and both ends show the relayed path`, async ({ browser, room }) => {
    const base = await startRelay(port++, await serve(turnPort++, SECRET, SECRET));
    const url = `${base}/?room=${room}&ice=relay`;
    const ada = await openParticipant(browser, room, 'Ada', { url });
    const bob = await openParticipant(browser, room, 'Bob', { url });
    await expectMediaFlowing(ada, ['Bob']);
    await expectMediaFlowing(bob, ['Ada']);
    for (const [page, other] of [[ada.page, 'Bob'], [bob.page, 'Ada']] as const) {
      const chip = remoteTile(page, other).getByTestId('path');
      await expect(chip).toHaveAttribute('data-path', 'relay', { timeout: 10_000 });
      await expect(chip).toHaveText('Relayed (UDP)');
    }
    // Every candidate in use, local and remote, is a relay candidate.
    const types = await ada.page.evaluate(async () => {
      const out: string[] = [];
      for (const pc of (window as any).__pcs as RTCPeerConnection[]) {
        if (pc.connectionState !== 'connected') continue;
        const stats = await pc.getStats();
        stats.forEach((s: any) => {
          if (s.type === 'transport' && s.selectedCandidatePairId) {
            const pair = stats.get(s.selectedCandidatePairId);
            out.push(stats.get(pair.localCandidateId).candidateType, stats.get(pair.remoteCandidateId).candidateType);
          }
        });
      }
      return out;
    });
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t === 'relay')).toBe(true);
  });

  test(`wrong credentials for ${kind}: no relay candidates, and the tile says why`, async ({ browser, room }) => {
    const base = await startRelay(port++, await serve(turnPort++, SECRET, 'not-the-secret'));
    const url = `${base}/?room=${room}&ice=relay`;
    const ada = await openParticipant(browser, room, 'Ada', { url });
    const bob = await openParticipant(browser, room, 'Bob', { url });
    for (const [page, other] of [[ada.page, 'Bob'], [bob.page, 'Ada']] as const) {
      await expect(remoteTile(page, other)).toContainText('TURN server refused our credentials', { timeout: 20_000 });
    }
    expect(await relayCandidates(ada.page)).toBe(0);
  });

  test(`expired credentials are refused by ${kind} too`, async ({ browser, room }) => {
    const tp = turnPort++;
    // Credentials live 1 s; Ada's are long expired when Bob arrives and she
    // opens her connection to him.
    const base = await startRelay(port++, [...(await serve(tp, SECRET, SECRET)), '--turn-ttl', '1s']);
    const url = `${base}/?room=${room}&ice=relay`;
    const ada = await openParticipant(browser, room, 'Ada', { url });
    await expect(ada.page.getByTestId('status')).toHaveText('Connected');
    await ada.page.waitForTimeout(2_500);
    await openParticipant(browser, room, 'Bob', { url });
    // Ada's connection from Bob uses her expired credentials.
    await expect(remoteTile(ada.page, 'Bob')).toContainText('TURN server refused our credentials', { timeout: 30_000 });
    expect(await relayCandidates(ada.page)).toBe(0);
    if (kind === 'coturn') {
      const log = fs.readFileSync(path.join(ROOT, 'end2end', 'artifacts', `coturn-${tp}.log`), 'utf8');
      expect(log).toMatch(/401|Unauthorized|expired|check_stun_auth/i);
    } else {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const failures = Number(/^meshcast_turn_auth_failures_total (\d+)/m.exec(metrics)?.[1] ?? 0);
      expect(failures).toBeGreaterThan(0);
    }
  });
}
