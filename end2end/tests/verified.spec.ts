// Verified rooms (issue 13): a room key in the link's fragment that the
// relay never sees. Pages with the key sign their offers and answers and
// refuse any that is unsigned or wrongly signed before applying it; names
// and chat travel sealed. Every page's WebSocket goes through a test proxy
// (Playwright's routeWebSocket) that logs what the relay receives and, for
// the tamper test, rewrites what it sends.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { type Page, type WebSocketRoute } from '@playwright/test';
import path from 'node:path';
import {
  ensureArtifactsDir,
  expect,
  expectMediaFlowing,
  newPeer,
  openParticipant,
  openViewer,
  pageMedia,
  remoteTile,
  test,
  type Peer,
} from './helpers';

const newKey = () => randomBytes(32).toString('base64url');
const call = (room: string, key?: string) => `/?room=${room}&quality=low${key ? `#k=${key}` : ''}`;
const watch = (room: string, key?: string) => `/watch?room=${room}&quality=low${key ? `#k=${key}` : ''}`;

interface Proxy {
  /** Every text frame the page sent to the relay. */
  sent: string[];
  /** Every text frame the relay sent to the page (after any rewrite). */
  received: string[];
}

/** Routes the page's signaling through the test: logs both ways, and
 *  `rewrite` may change what the relay sends before the page sees it. */
async function proxy(page: Page, rewrite: (frame: string) => string = (f) => f): Promise<Proxy> {
  const log: Proxy = { sent: [], received: [] };
  await page.routeWebSocket(/\/ws$/, (ws: WebSocketRoute) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const text = m.toString();
      log.sent.push(text);
      server.send(m);
    });
    server.onMessage((m) => {
      const text = rewrite(m.toString());
      log.received.push(text);
      ws.send(text);
    });
  });
  return log;
}

async function participant(browser: Parameters<typeof newPeer>[0], room: string, name: string, url: string): Promise<[Peer, Proxy]> {
  const peer = await newPeer(browser, room, name, 'participant');
  const log = await proxy(peer.page);
  await peer.page.goto(url);
  const join = peer.page.getByRole('button', { name: 'Join', exact: true });
  await expect(join, `${name}: the lobby is ready`).toBeEnabled({ timeout: 15_000 });
  await join.click();
  return [peer, log];
}

async function viewer(browser: Parameters<typeof newPeer>[0], room: string, name: string, url: string): Promise<[Peer, Proxy]> {
  const peer = await newPeer(browser, room, name, 'viewer');
  const log = await proxy(peer.page);
  await peer.page.goto(url);
  return [peer, log];
}

/** The safety code in a tile's Verified mark. */
async function safetyCode(page: Page, name: string): Promise<string> {
  const title = (await remoteTile(page, name).getByTestId('verified').getAttribute('title')) ?? '';
  const code = /(\d{3} \d{3})/.exec(title)?.[1];
  expect(code, `a safety code on ${name}'s tile (title: ${title})`).toBeTruthy();
  return code as string;
}

async function expectVerified(peer: Peer, names: string[]): Promise<void> {
  await expect(peer.page.getByTestId('trust').locator('summary'), `${peer.name}: the top bar says Verified`).toHaveText('Verified');
  for (const n of names) {
    const tile = remoteTile(peer.page, n);
    await expect(tile, `${peer.name}: ${n}'s tile passed the check`).toHaveAttribute('data-verified', 'true', { timeout: 20_000 });
    await expect(tile.getByTestId('verified')).toHaveText('Verified');
  }
  await expect(peer.page.getByText(/verify/), `${peer.name}: no warning`).toHaveCount(0);
}

/** On `peer`'s page, the `count` tiles named `name` warn and never play anything. */
async function expectRefused(peer: Peer, name: string, count = 1): Promise<void> {
  const tiles = remoteTile(peer.page, name);
  await expect(tiles, `${peer.name}: ${count} tile(s) named ${name}`).toHaveCount(count, { timeout: 20_000 });
  for (let n = 0; n < count; n++) {
    const tile = tiles.nth(n);
    await expect(tile, `${peer.name}: ${name}'s tile is refused`).toHaveAttribute('data-verified', 'false', { timeout: 20_000 });
    await expect(tile.getByTestId('verify-warning')).toHaveText(`Could not verify ${name}: this connection may be intercepted`);
    await expect(tile.getByTestId('verified'), `${peer.name}: no Verified mark on ${name}`).toBeHidden();
  }
  const media = await pageMedia(peer.page);
  const ts = media.tiles.filter((x) => x.name.includes(name));
  expect(ts.length, `${peer.name}: tiles for ${name}`).toBe(count);
  for (const t of ts) {
    expect(t.hasSrcObject, `${peer.name}: nothing of ${name}'s is attached to a <video>`).toBe(false);
    expect(t.elementFrames, `${peer.name}: no frame of ${name}'s was shown`).toBe(0);
  }
}

test('a keyed room: two participants and a viewer verify each other; names and chat never reach the relay in clear', async ({ browser, room }) => {
  const key = newKey();
  const [ada, adaLog] = await participant(browser, room, 'Ada Lovelace', call(room, key));
  const [bob, bobLog] = await participant(browser, room, 'Bob Marley', call(room, key));
  const [vic, vicLog] = await viewer(browser, room, 'Vic Chesnutt', watch(room, key));
  await expectMediaFlowing(ada, ['Bob Marley']);
  await expectMediaFlowing(bob, ['Ada Lovelace']);
  await expectMediaFlowing(vic, ['Ada Lovelace', 'Bob Marley']);
  await expectVerified(ada, ['Bob Marley']);
  await expectVerified(bob, ['Ada Lovelace']);
  await expectVerified(vic, ['Ada Lovelace', 'Bob Marley']);
  // One certificate per page: Ada and Bob read the same code.
  expect(await safetyCode(ada.page, 'Bob Marley')).toBe(await safetyCode(bob.page, 'Ada Lovelace'));
  await expect(ada.page.getByTestId('copy-invite')).toHaveAttribute('title', new RegExp(`\\?room=${room}#k=${key}$`));
  await expect(vic.page.getByTestId('copy-watch')).toHaveAttribute('title', new RegExp(`/watch\\?room=${room}#k=${key}$`));

  const secret = 'meet at the old mill at nine';
  await ada.page.getByRole('button', { name: 'Chat', exact: true }).click();
  const box = ada.page.getByRole('textbox', { name: 'Message' });
  await box.fill(secret);
  await box.press('Enter');
  for (const p of [bob, vic]) {
    await p.page.getByRole('button', { name: 'Chat', exact: true }).click();
    await expect(p.page.locator('.chat-list li').filter({ hasText: secret }), `${p.name} reads Ada's message`).toContainText('Ada Lovelace');
  }

  const logs = { ada: adaLog, bob: bobLog, vic: vicLog };
  const frames = Object.values(logs).flatMap((l) => [...l.sent, ...l.received]);
  const offers = frames.filter((f) => /"event":"(offer|answer)"/.test(f));
  expect(offers.length, 'offers and answers went through the proxy').toBeGreaterThanOrEqual(6);
  for (const f of offers) expect(JSON.parse(f).sig, `every offer and answer is signed: ${f.slice(0, 120)}`).toMatch(/^[A-Za-z0-9_-]{43}$/);
  for (const clear of ['Ada Lovelace', 'Bob Marley', 'Vic Chesnutt', 'Lovelace', secret, 'old mill', key]) {
    expect(frames.filter((f) => f.includes(clear)), `"${clear}" never crosses the relay in clear`).toEqual([]);
  }
  const dir = ensureArtifactsDir();
  fs.writeFileSync(path.join(dir, 'verified-relay-frames.txt'), Object.entries(logs).map(([who, l]) => `== ${who} sent\n${l.sent.join('\n')}\n== ${who} received\n${l.received.join('\n')}`).join('\n'));
  await ada.page.getByRole('button', { name: 'Close chat' }).click();
  await ada.page.getByTestId('trust').locator('summary').click();
  await ada.page.screenshot({ path: path.join(dir, 'verified-1280x800.png') });
  await vic.page.setViewportSize({ width: 390, height: 844 });
  await vic.page.screenshot({ path: path.join(dir, 'verified-viewer-390x844.png') });
});

test('an impostor who knows the room id but not the key is refused and warned about on every page', async ({ browser, room }) => {
  const key = newKey();
  const ada = await openParticipant(browser, room, 'Ada', { url: call(room, key) });
  const bob = await openParticipant(browser, room, 'Bob', { url: call(room, key) });
  const vic = await openViewer(browser, room, 'Vic', { url: watch(room, key) });
  // A real camera, signed with another key; and one that does not sign at all.
  const eve = await openParticipant(browser, room, 'Eve', { url: call(room, newKey()) });
  const mal = await openParticipant(browser, room, 'Mallory', { url: call(room) });
  for (const p of [ada, bob, vic]) {
    // Neither name is shown: Eve's is sealed under her key, and Mallory's
    // plain one could be anyone's (the relay's included).
    await expectRefused(p, 'Unknown guest', 2);
    await expect(p.page.getByText('Mallory'), `${p.name}: a plain name is not shown in a keyed room`).toHaveCount(0);
    await expect(p.page.getByTestId('trust').locator('summary'), `${p.name}: the top bar says not everyone passed`).toHaveText('Not all verified');
  }
  await expectMediaFlowing(vic, ['Ada', 'Bob'], { exact: false });
  for (const [p, other] of [[ada, 'Bob'], [bob, 'Ada'], [vic, 'Ada']] as const) {
    await expect(remoteTile(p.page, other), `${p.name}: ${other} still passes`).toHaveAttribute('data-verified', 'true');
  }
  // Nothing of ours reaches them either: their answers were refused.
  for (const p of [eve, mal]) {
    const media = await pageMedia(p.page);
    expect(media.totalFramesDecoded, `${p.name} decodes nothing of the keyed pages`).toBe(0);
  }
  await expect(eve.page.getByTestId('verify-warning').filter({ visible: true }).first(), 'the impostor is warned too').toBeVisible();
  await vic.page.screenshot({ path: path.join(ensureArtifactsDir(), 'verified-impostor-1280x800.png') });
});

test('a relay that rewrites the fingerprint in offers is refused the same way', async ({ browser, room }) => {
  const key = newKey();
  const ada = await openParticipant(browser, room, 'Ada', { url: call(room, key) });
  const vic = await newPeer(browser, room, 'Vic', 'viewer');
  // A man in the middle: its own certificate's fingerprint in Ada's offers.
  let rewritten = 0;
  await proxy(vic.page, (frame) => {
    if (!frame.includes('"event":"offer"')) return frame;
    rewritten++;
    return frame.replace(/a=fingerprint:sha-256 [0-9A-F:]+/g, `a=fingerprint:sha-256 ${Array(32).fill('AB').join(':')}`);
  });
  await vic.page.goto(watch(room, key));
  await expectRefused(vic, 'Ada');
  expect(rewritten, 'the proxy rewrote offers').toBeGreaterThan(0);
});

test('a relay that swaps two people\'s sealed names is refused: a name is signed with the connection', async ({ browser, room }) => {
  const key = newKey();
  await openParticipant(browser, room, 'Ada', { url: call(room, key) });
  await openParticipant(browser, room, 'Bob', { url: call(room, key) });
  const vic = await newPeer(browser, room, 'Vic', 'viewer');
  let swapped = 0;
  await proxy(vic.page, (frame) => {
    if (!frame.includes('"event":"welcome"')) return frame;
    const msg = JSON.parse(frame);
    const [a, b] = msg.peers ?? [];
    if (!a || !b) return frame;
    [a.name, b.name] = [b.name, a.name];
    swapped++;
    return JSON.stringify(msg);
  });
  await vic.page.goto(watch(room, key));
  // Each camera now carries the other's name: neither passes.
  await expectRefused(vic, 'Ada');
  await expectRefused(vic, 'Bob');
  expect(swapped, 'the proxy swapped the names').toBeGreaterThan(0);
});

test('an old link without a key still calls, and says Not verified', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada', { url: call(room) });
  const vic = await openViewer(browser, room, 'Vic', { url: watch(room) });
  await expectMediaFlowing(vic, ['Ada']);
  for (const p of [ada, vic]) {
    await expect(p.page.getByTestId('trust').locator('summary'), `${p.name}: Not verified`).toHaveText('Not verified');
  }
  await expect(remoteTile(vic.page, 'Ada')).not.toHaveAttribute('data-verified', /./);
  await expect(vic.page.getByText(/verify/)).toHaveCount(0);
});

test('a damaged room key is an error, not a silent downgrade', async ({ browser, room }) => {
  const p = await newPeer(browser, room, 'Ada', 'participant');
  await p.page.goto(call(room, newKey().slice(0, 40)));
  await expect(p.page.getByRole('heading', { name: 'That room link is not valid' })).toBeVisible();
  await expect(p.page.getByText(/room key \(after #k=\) is cut short or changed/)).toBeVisible();
});
