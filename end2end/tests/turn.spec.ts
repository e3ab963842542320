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
import { iptablesInTestNs } from './netns';

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
      // coturn is given its UDP URL only; the embedded server advertises UDP
      // and TCP, and Chromium may settle on either.
      await expect(chip).toHaveText(kind === 'coturn' ? 'Relayed (UDP)' : /^Relayed \((UDP|TCP)\)$/);
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

  test(`3 s credentials through ${kind}: 10 s into a relay-only call a newcomer still connects relayed, and an ICE restart gets relay candidates again`, async ({ browser, room }) => {
    test.setTimeout(120_000);
    // Credentials live 3 s; the relay pushes fresh ones (iceServers) every 1.5 s.
    const base = await startRelay(port++, [...(await serve(turnPort++, SECRET, SECRET)), '--turn-ttl', '3s']);
    const url = `${base}/?room=${room}&ice=relay&quality=low`;
    const ada = await openParticipant(browser, room, 'Ada', { url });
    const joinedAt = Date.now();
    const bob = await openParticipant(browser, room, 'Bob', { url });
    await expectMediaFlowing(ada, ['Bob']);
    await expectMediaFlowing(bob, ['Ada']);
    // 10 s in, every credential from a welcome has long expired.
    await ada.page.waitForTimeout(Math.max(0, joinedAt + 10_000 - Date.now()));
    const cyd = await openParticipant(browser, room, 'Cyd', { url });
    await Promise.all([expectMediaFlowing(ada, ['Bob', 'Cyd']), expectMediaFlowing(bob, ['Ada', 'Cyd']), expectMediaFlowing(cyd, ['Ada', 'Bob'])]);
    for (const [page, other] of [[ada.page, 'Cyd'], [cyd.page, 'Ada']] as const) {
      await expect(remoteTile(page, other).getByTestId('path'), `${other} reaches the newcomer relayed`).toHaveAttribute('data-path', 'relay', { timeout: 10_000 });
    }

    // Cut UDP (all media and TURN) until the broadcasters restart ICE on
    // their existing connections, then restore it: the restarts must gather
    // relay candidates with fresh credentials.
    const before = await outboundUfrags(ada.page);
    expect(before.length, "Ada's outbound connections").toBe(2);
    const logFrom = ada.log.length;
    const cutAt = new Map([ada, bob, cyd].map((p) => [p, p.log.length]));
    udp(false);
    try {
      // Until the app restarted ICE on both (it waits 3 s after "disconnected").
      const restarts = () => new Set(ada.log.slice(logFrom).filter((l) => l.includes('restarting ICE towards')).map((l) => l.split(' ').pop())).size;
      await expect.poll(restarts, { message: 'Ada restarts ICE towards Bob and Cyd', timeout: 30_000, intervals: [250] }).toBe(2);
    } finally {
      udp(true);
    }
    await expect
      .poll(async () => (await outboundUfrags(ada.page)).filter((c) => c.state === 'connected' && c.local === 'relay').length, {
        message: "Ada's outbound connections connected again through relay candidates",
        timeout: 30_000,
      })
      .toBe(2);
    const after = await outboundUfrags(ada.page);
    expect(after.map((c) => c.index), 'the same connections, none replaced').toEqual(before.map((c) => c.index));
    for (const [i, c] of after.entries()) expect(c.ufrag, `connection ${c.index} was ICE-restarted`).not.toEqual(before[i].ufrag);
    await Promise.all([expectMediaFlowing(ada, ['Bob', 'Cyd']), expectMediaFlowing(bob, ['Ada', 'Cyd']), expectMediaFlowing(cyd, ['Ada', 'Bob'])]);
    // Up to the cut, every credential from a welcome had long expired while
    // the allocations made with them kept being refreshed: coturn checks a
    // REST credential's expiry on every request, so it may refuse those
    // refreshes (401); the embedded server lets an existing allocation go on
    // for --turn-refresh-grace, so it refused nothing. (After the cut, an
    // Allocate that Chromium sent during it and retransmits once UDP is back
    // carries a credential that may have expired meanwhile: a 401 there is
    // right, and the restart completes with the fresh allocations.)
    if (kind !== 'coturn') {
      for (const [p, upTo] of cutAt) {
        expect(p.log.slice(0, upTo).filter((l) => l.includes('answered 401')), `${p.name}: no credential was refused before the cut`).toEqual([]);
      }
    }
  });
}

/** Ada's live outbound connections: index in __pcs, local ufrag, state, selected local candidate type. */
async function outboundUfrags(page: import('@playwright/test').Page) {
  return page.evaluate(async () => {
    const out: { index: number; ufrag: string; state: string; local: string }[] = [];
    for (const [index, pc] of window.__pcs.entries()) {
      if (pc.connectionState === 'closed' || !pc.getTransceivers().some((t) => t.direction === 'sendonly')) continue;
      const ufrag = /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? '')?.[1] ?? '';
      let local = '';
      const stats = await pc.getStats();
      stats.forEach((s: any) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          local = pair ? stats.get(pair.localCandidateId)?.candidateType ?? '' : '';
        }
      });
      out.push({ index, ufrag, state: pc.connectionState, local });
    }
    return out;
  });
}

/** Drops (or again lets through) every UDP packet in this test namespace. */
function udp(on: boolean): void {
  for (const chain of ['INPUT', 'OUTPUT']) iptablesInTestNs([on ? '-D' : '-I', chain, '-p', 'udp', '-j', 'DROP']);
}
