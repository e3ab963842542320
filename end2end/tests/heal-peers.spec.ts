// Calls that heal themselves, participant side: a participant that dies
// abruptly (context closed, browser killed) leaves no ghost tile behind, and
// one that reloads comes back under the same id, seen by everyone again.
import { chromium } from '@playwright/test';
import { CHROMIUM_PATH, PARTICIPANT_ARGS } from '../chromium';
import {
  expect,
  expectConnections,
  expectMediaFlowing,
  joinFromLobby,
  metric,
  openParticipant,
  openViewer,
  ownPeerId,
  remoteTile,
  test,
  timeUntilTileGone,
  whenVideoFlowing,
  type Peer,
} from './helpers';

/** The relay's heartbeat window: ping every 15 s, idle timeout 30 s. */
const HEARTBEAT_WINDOW_MS = 45_000;

const others = (names: string[], me: string) => names.filter((n) => n !== me);
const low = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;

/** Ada, Bob, Cyd (participants, Cyd opened by `openCyd`) and Vic (viewer), all seeing everyone. */
async function threeAndAViewer(
  browser: import('@playwright/test').Browser,
  room: string,
  cydBrowser = browser,
): Promise<{ ada: Peer; bob: Peer; cyd: Peer; vic: Peer }> {
  const ada = await openParticipant(browser, room, 'Ada', { url: low(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: low(room) });
  const cyd = await openParticipant(cydBrowser, room, 'Cyd', { url: low(room) });
  const vic = await openViewer(browser, room, 'Vic');
  const names = ['Ada', 'Bob', 'Cyd'];
  await Promise.all([...[ada, bob, cyd].map((p) => expectMediaFlowing(p, others(names, p.name))), expectMediaFlowing(vic, names)]);
  return { ada, bob, cyd, vic };
}

/** After Cyd is gone: Ada, Bob and Vic carry on, with no connection left to Cyd. */
async function restCarryOn(ada: Peer, bob: Peer, vic: Peer): Promise<void> {
  await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada']), expectMediaFlowing(vic, ['Ada', 'Bob'])]);
  await Promise.all([
    expectConnections(ada, { inbound: 1, outbound: 2 }),
    expectConnections(bob, { inbound: 1, outbound: 2 }),
    expectConnections(vic, { inbound: 2, outbound: 0 }),
  ]);
}

function expectGoneWithin(label: string, times: Record<string, number>, budget: number): void {
  const took = Object.entries(times)
    .map(([page, t]) => `${page}: ${Number.isFinite(t) ? `${t} ms` : 'never'}`)
    .join(', ');
  expect(
    Object.entries(times).filter(([, t]) => !(t <= budget)).map(([p]) => p),
    `${label}: the tile must vanish from every page within ${budget} ms; ${took}`,
  ).toEqual([]);
}

test("a participant's browser context closed abruptly: its tile vanishes from everyone within the heartbeat window", async ({ browser, room }) => {
  test.setTimeout(150_000);
  const { ada, bob, cyd, vic } = await threeAndAViewer(browser, room);

  const closedAt = Date.now();
  await cyd.context.close();
  const gone = await timeUntilTileGone([ada, bob, vic], 'Cyd', closedAt, HEARTBEAT_WINDOW_MS + 5_000);
  metric('context_closed_gone_ms', Math.max(...Object.values(gone)));
  expectGoneWithin('Cyd (context closed)', gone, HEARTBEAT_WINDOW_MS);
  await restCarryOn(ada, bob, vic);
});

test("a participant's browser killed (SIGKILL): its tile vanishes from everyone within the heartbeat window", async ({ browser, room }) => {
  test.setTimeout(150_000);
  // Cyd gets a browser of its own (a browser server, to get at its process),
  // so that killing it kills nobody else.
  const server = await chromium.launchServer({ executablePath: CHROMIUM_PATH, args: PARTICIPANT_ARGS, headless: true });
  const cydBrowser = await chromium.connect(server.wsEndpoint());
  try {
    const { ada, bob, vic } = await threeAndAViewer(browser, room, cydBrowser);
    const proc = server.process();
    expect(proc.pid, 'the launched browser has a process').toBeTruthy();
    const killedAt = Date.now();
    proc.kill('SIGKILL');
    const gone = await timeUntilTileGone([ada, bob, vic], 'Cyd', killedAt, HEARTBEAT_WINDOW_MS + 5_000);
    metric('browser_killed_gone_ms', Math.max(...Object.values(gone)));
    expectGoneWithin('Cyd (browser killed)', gone, HEARTBEAT_WINDOW_MS);
    await restCarryOn(ada, bob, vic);
  } finally {
    await cydBrowser.close().catch(() => {});
    await server.kill().catch(() => {});
  }
});

test('a participant reloads: same peer id, everyone sees it again with video, no connection left over', async ({ browser, room }) => {
  test.setTimeout(150_000);
  const ada = await openParticipant(browser, room, 'Ada', { url: low(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: low(room) });
  const vic = await openViewer(browser, room, 'Vic');
  await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada']), expectMediaFlowing(vic, ['Ada', 'Bob'])]);
  const adaId = await ownPeerId(ada);
  const bobId = await ownPeerId(bob);
  expect(adaId).not.toEqual(bobId);
  await expect(remoteTile(ada.page, 'Bob'), "Ada's tile of Bob carries Bob's id").toHaveAttribute('data-peer', bobId);
  await expect(remoteTile(vic.page, 'Bob'), "Vic's tile of Bob carries Bob's id").toHaveAttribute('data-peer', bobId);

  const reloadAt = Date.now();
  await bob.page.reload();
  await joinFromLobby(bob.page);
  const back = await Promise.all([
    whenVideoFlowing(ada.page, ['Bob'], 20_000),
    whenVideoFlowing(vic.page, ['Bob'], 20_000),
    whenVideoFlowing(bob.page, ['Ada'], 20_000),
  ]);
  if (back.every(Number.isFinite)) metric('reload_video_back_ms', Math.max(...back) - reloadAt);
  expect(await ownPeerId(bob), 'after the reload Bob has the same peer id').toEqual(bobId);
  await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada']), expectMediaFlowing(vic, ['Ada', 'Bob'])]);
  await expect(remoteTile(ada.page, 'Bob'), "Ada's (only) tile of Bob carries the same id").toHaveAttribute('data-peer', bobId);
  await expect(remoteTile(vic.page, 'Bob'), "Vic's (only) tile of Bob carries the same id").toHaveAttribute('data-peer', bobId);
  await expect(remoteTile(bob.page, 'Ada'), "Bob's tile of Ada carries Ada's id").toHaveAttribute('data-peer', adaId);
  // The connections of Bob's old page are closed everywhere, the new ones are the only ones.
  await Promise.all([
    expectConnections(ada, { inbound: 1, outbound: 2 }),
    expectConnections(bob, { inbound: 1, outbound: 2 }),
    expectConnections(vic, { inbound: 2, outbound: 0 }),
  ]);
});
