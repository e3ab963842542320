// TURN through coturn: a relay-only call (`?ice=relay`) really relays, and
// bad or expired credentials are refused and explained. Each test starts its
// own coturn and relay (inside the test namespace, on loopback).
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

/** A relay on 127.0.0.1:port handing out TURN credentials for coturn. */
async function startRelay(port: number, turnPort: number, extra: string[] = []): Promise<string> {
  start(RELAY_BIN, [
    '--listen', `127.0.0.1:${port}`, '--dist', DIST, '--stun', 'none',
    '--turn-url', `turn:127.0.0.1:${turnPort}?transport=udp`, ...extra,
  ], `relay-${port}.log`);
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

test('a relay-only call through coturn carries video, and both ends show the relayed path', async ({ browser, room }) => {
  await startCoturn(3478);
  const base = await startRelay(3200, 3478, ['--turn-secret', SECRET]);
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
  // Every local candidate in use is a relay candidate.
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
  expect(types).toContain('relay');
  expect(types.every((t) => t === 'relay')).toBe(true);
});

test('wrong TURN credentials: no relay candidates, and the tile says why', async ({ browser, room }) => {
  await startCoturn(3479);
  const base = await startRelay(3201, 3479, ['--turn-secret', 'not-the-secret']);
  const url = `${base}/?room=${room}&ice=relay`;
  const ada = await openParticipant(browser, room, 'Ada', { url });
  const bob = await openParticipant(browser, room, 'Bob', { url });
  for (const [page, other] of [[ada.page, 'Bob'], [bob.page, 'Ada']] as const) {
    await expect(remoteTile(page, other)).toContainText('TURN server refused our credentials', { timeout: 20_000 });
  }
  const relayCandidates = await ada.page.evaluate(async () => {
    let n = 0;
    for (const pc of (window as any).__pcs as RTCPeerConnection[]) {
      (await pc.getStats()).forEach((s: any) => {
        if (s.type === 'local-candidate' && s.candidateType === 'relay') n++;
      });
    }
    return n;
  });
  expect(relayCandidates).toBe(0);
});

test('expired TURN credentials are refused too', async ({ browser, room }) => {
  await startCoturn(3480);
  // Credentials live 1 s; Ada's are long expired when Bob arrives and she
  // opens her connection to him.
  const base = await startRelay(3202, 3480, ['--turn-secret', SECRET, '--turn-ttl', '1s']);
  const url = `${base}/?room=${room}&ice=relay`;
  const ada = await openParticipant(browser, room, 'Ada', { url });
  await expect(ada.page.getByTestId('status')).toHaveText('Connected');
  await ada.page.waitForTimeout(2_500);
  await openParticipant(browser, room, 'Bob', { url });
  // Ada's connection from Bob uses her expired credentials.
  await expect(remoteTile(ada.page, 'Bob')).toContainText('TURN server refused our credentials', { timeout: 30_000 });
  const log = fs.readFileSync(path.join(ROOT, 'end2end', 'artifacts', 'coturn-3480.log'), 'utf8');
  expect(log).toMatch(/401|Unauthorized|expired|check_stun_auth/i);
});
