// Join/leave churn: one participant joins and leaves a room 20 times (by
// the leave button, or by its tab going away) while others stay. The pages
// that stayed must end up exactly where they started: the same live peer
// connections, the same event listeners on RTCPeerConnection and WebSocket
// instances (none left on closed ones), the same tiles and <video> elements.
import type { Page } from '@playwright/test';
import {
  clickStamped,
  expect,
  expectConnections,
  expectMediaFlowing,
  listenerStats,
  openParticipant,
  openViewer,
  test,
  whenTileGone,
  whenVideoFlowing,
  type ListenerStats,
  type Peer,
} from './helpers';

const ROUNDS = 20;

interface Footprint {
  livePcs: number;
  tiles: number;
  videos: number;
  listeners: ListenerStats;
}

async function footprint(page: Page): Promise<Footprint> {
  const [livePcs, tiles, videos] = await page.evaluate(() => [
    window.__pcs.filter((pc) => pc.connectionState !== 'closed').length,
    document.querySelectorAll('[data-testid=tile]').length,
    document.querySelectorAll('video').length,
  ]);
  return { livePcs, tiles, videos, listeners: await listenerStats(page) };
}

/** What must not grow: everything but the lifetime add/remove totals and the closed instances. */
function steady(f: Footprint) {
  const l = (k: ListenerStats['pc']) => ({ liveTargets: k.liveTargets, onLive: k.onLive, onClosed: k.onClosed, net: k.net });
  return { livePcs: f.livePcs, tiles: f.tiles, videos: f.videos, pc: l(f.listeners.pc), ws: l(f.listeners.ws) };
}

test(`${ROUNDS} rounds of join/leave churn: the pages that stayed hold no more connections, listeners or tiles than before`, async ({ browser, room }) => {
  test.setTimeout(600_000);
  const url = `/?room=${encodeURIComponent(room)}&quality=low`;
  const ada = await openParticipant(browser, room, 'Ada', { url });
  const bob = await openParticipant(browser, room, 'Bob', { url });
  const vic = await openViewer(browser, room, 'Vic');
  const stayers: [Peer, string[]][] = [
    [ada, ['Bob']],
    [bob, ['Ada']],
    [vic, ['Ada', 'Bob']],
  ];
  const settled = async () => {
    await Promise.all(stayers.map(([p, names]) => expectMediaFlowing(p, names, { audio: false })));
    await Promise.all([
      expectConnections(ada, { inbound: 1, outbound: 2 }),
      expectConnections(bob, { inbound: 1, outbound: 2 }),
      expectConnections(vic, { inbound: 2, outbound: 0 }),
    ]);
  };
  await settled();
  const before = await Promise.all(stayers.map(([p]) => footprint(p.page)));
  for (const f of before) {
    expect(f.listeners.pc.untracked, 'the app adds no once/signal listeners to connections (the count could not follow them)').toBe(0);
    // gloo-net's WebSocket registers `open` and `close` with `once` (the
    // close event ends the socket; dropping it removes `open`): two per socket, no more.
    expect(f.listeners.ws.untracked, "only gloo-net's two once-listeners per socket").toBe(2 * f.listeners.ws.targets);
  }

  const roundMs: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const t0 = Date.now();
    const eve = await openParticipant(browser, room, 'Eve', { url });
    const seen = await Promise.all([
      ...stayers.map(([p]) => whenVideoFlowing(p.page, ['Eve'], 30_000)),
      whenVideoFlowing(eve.page, ['Ada', 'Bob'], 30_000),
    ]);
    expect(seen.map(Number.isFinite), `round ${round}: Eve's video reaches Ada, Bob and Vic, and Eve sees Ada and Bob`).toEqual([true, true, true, true]);
    // Half the rounds by the leave button, half by the tab going away.
    const byButton = round % 2 === 1;
    const gone = whenTileGone(
      stayers.map(([p]) => p),
      'Eve',
      15_000,
    );
    if (byButton) await clickStamped(eve, 'leave');
    else await eve.context.close();
    const at = await gone;
    expect(
      Object.entries(at).filter(([, t]) => !Number.isFinite(t)).map(([n]) => n),
      `round ${round}: Eve's tile goes from every page after she left (${byButton ? 'leave button' : 'tab closed'})`,
    ).toEqual([]);
    if (byButton) await eve.context.close();
    roundMs.push(Date.now() - t0);
  }
  console.log(`${ROUNDS} rounds, ${Math.round(roundMs.reduce((a, b) => a + b, 0) / ROUNDS)} ms each on average`);

  await settled();
  const after = await Promise.all(stayers.map(([p]) => footprint(p.page)));
  stayers.forEach(([p], i) => {
    console.log(
      `${p.name}: before ${JSON.stringify(steady(before[i]))}\n` +
        `${' '.repeat(p.name.length)}  after ${JSON.stringify(steady(after[i]))}; pc listeners added/removed over the page's life ` +
        `${after[i].listeners.pc.adds}/${after[i].listeners.pc.removes}, connections ever made ${after[i].listeners.pc.targets}`,
    );
  });
  for (let i = 0; i < stayers.length; i++) {
    const [p] = stayers[i];
    expect(steady(after[i]), `${p.name}: after ${ROUNDS} rounds of churn, nothing grew`).toEqual(steady(before[i]));
    expect(after[i].listeners.pc.onClosed, `${p.name}: no listener left on a closed RTCPeerConnection`).toBe(0);
    // The churn really went through this page.
    expect(after[i].listeners.pc.targets - before[i].listeners.pc.targets, `${p.name}: made a connection per round`).toBeGreaterThanOrEqual(ROUNDS);
  }
});
