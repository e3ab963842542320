// Behind NATs (tests/natnet.ts): two participants, each in a site of its own
// behind a router namespace. With STUN only, two cone NATs connect through
// NAT (srflx); a cone and a symmetric NAT cannot, and the app says a TURN
// server is needed; with the relay's embedded TURN server they connect
// relayed. A direct call (both browsers on one network) is the baseline.
// Each case prints how long the call took to carry media both ways.
import { chromium, type Browser } from '@playwright/test';
import path from 'node:path';
import { ensureArtifactsDir, expect, expectMediaFlowing, metric, openParticipant, remoteTile, test, type Peer } from './helpers';
import { NatSite, PUBLIC_ADDR, type NatKind } from './natnet';
import { RelayProcess, stopAllRelays } from './relay-process';

const PORT = 3400;
const STUN_PORT = 3479;
const TURN_PORT = 3478;

let sites: NatSite[] = [];
let browsers: Browser[] = [];

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const s of sites) console.log(`NAT ${s.index} (${s.kind}) translations:\n${s.conntrack()}`);
  }
  await Promise.all(browsers.map((b) => b.close().catch(() => {})));
  browsers = [];
  for (const s of sites) s.destroy();
  sites = [];
  await stopAllRelays();
});

/** Two sites behind NATs of the given kinds, a relay on the internet side, a participant in each. */
async function callBehind(
  room: string,
  kinds: [NatKind, NatKind],
  relayFlags: () => Promise<string[]>,
): Promise<{ ada: Peer; bob: Peer; t0: number }> {
  // The sites first: the servers listen on PUBLIC_ADDR, which comes with site 0.
  sites = kinds.map((kind, i) => NatSite.create(i, kind));
  await new RelayProcess(PORT, { host: '0.0.0.0', extra: await relayFlags() }).start();
  browsers = await Promise.all(
    sites.map((s) => chromium.launch({ executablePath: s.wrapper, args: s.browserArgs(PORT), headless: true })),
  );
  const url = `http://${PUBLIC_ADDR}:${PORT}/?room=${encodeURIComponent(room)}&quality=low`;
  const t0 = Date.now();
  const ada = await openParticipant(browsers[0], room, 'Ada', { url });
  const bob = await openParticipant(browsers[1], room, 'Bob', { url });
  return { ada, bob, t0 };
}

/** A STUN server on the internet side: a second relay whose embedded TURN server answers Binding requests. */
async function startStun(): Promise<string[]> {
  await new RelayProcess(PORT + 1, { extra: ['--turn-listen', `${PUBLIC_ADDR}:${STUN_PORT}`] }).start();
  return ['--stun', `stun:${PUBLIC_ADDR}:${STUN_PORT}`];
}

async function expectPath(page: Peer, other: string, path: 'host' | 'srflx' | 'relay'): Promise<void> {
  await expect(remoteTile(page.page, other).getByTestId('path')).toHaveAttribute('data-path', path, { timeout: 15_000 });
}

test('direct: two browsers on one network connect host to host', async ({ browser, room }) => {
  await new RelayProcess(PORT).start();
  const url = `http://127.0.0.1:${PORT}/?room=${encodeURIComponent(room)}&quality=low`;
  const t0 = Date.now();
  const ada = await openParticipant(browser, room, 'Ada', { url });
  const bob = await openParticipant(browser, room, 'Bob', { url });
  await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada'])]);
  metric('nat_direct_connect_ms', Date.now() - t0);
  await expectPath(ada, 'Bob', 'host');
  await expectPath(bob, 'Ada', 'host');
});

test('cone NAT to cone NAT with STUN only: connected through the NATs (srflx)', async ({ room }) => {
  const { ada, bob, t0 } = await callBehind(room, ['cone', 'cone'], startStun);
  await Promise.all([expectMediaFlowing(ada, ['Bob'], { timeout: 60_000 }), expectMediaFlowing(bob, ['Ada'], { timeout: 60_000 })]);
  metric('nat_srflx_connect_ms', Date.now() - t0);
  await expectPath(ada, 'Bob', 'srflx');
  await expectPath(bob, 'Ada', 'srflx');
  await expect(remoteTile(ada.page, 'Bob')).toContainText('Through NAT');
});

test('cone NAT to symmetric NAT with STUN only: no call, and the app says a TURN server is needed', async ({ room }) => {
  test.setTimeout(120_000);
  const { ada, bob } = await callBehind(room, ['cone', 'symmetric'], startStun);
  for (const [peer, other] of [[ada, 'Bob'], [bob, 'Ada']] as const) {
    await expect(remoteTile(peer.page, other)).toContainText("Can't connect directly: a TURN server is needed", { timeout: 75_000 });
  }
  const shot = path.join(ensureArtifactsDir(), 'nat-turn-needed.png');
  await ada.page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
  // Nothing ever connected: no tile shows a path, no video arrived.
  for (const [peer, other] of [[ada, 'Bob'], [bob, 'Ada']] as const) {
    await expect(remoteTile(peer.page, other).getByTestId('path')).toHaveCount(0);
    const decoded = await peer.page.evaluate(async () => {
      let frames = 0;
      for (const pc of (window as any).__pcs as RTCPeerConnection[]) {
        (await pc.getStats()).forEach((s: any) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
        });
      }
      return frames;
    });
    expect(decoded).toBe(0);
  }
});

test('cone NAT to symmetric NAT with the embedded TURN server: connected, relayed', async ({ room }) => {
  const { ada, bob, t0 } = await callBehind(room, ['cone', 'symmetric'], async () => [
    '--turn-listen', `${PUBLIC_ADDR}:${TURN_PORT}`,
    '--turn-ports', '49200-49300',
    // The "internet" here is a documentation range, refused by default.
    '--turn-allow-peer', '203.0.113.0/24',
  ]);
  await Promise.all([expectMediaFlowing(ada, ['Bob'], { timeout: 60_000 }), expectMediaFlowing(bob, ['Ada'], { timeout: 60_000 })]);
  metric('nat_relay_connect_ms', Date.now() - t0);
  await expectPath(ada, 'Bob', 'relay');
  await expectPath(bob, 'Ada', 'relay');
  await expect(remoteTile(bob.page, 'Ada')).toContainText('Relayed (UDP)');
  const shot = path.join(ensureArtifactsDir(), 'nat-relayed.png');
  await bob.page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
});
