// Calls that heal themselves: the relay goes away (graceful SIGTERM, or
// SIGKILL) in the middle of a 3-party call and comes back on the same port.
// Media must not notice (peer connections do not need the relay once up),
// every page must get its signaling back by itself, and the room must work
// for a newcomer afterwards. Each test owns its relay (tests/relay-process.ts).
import {
  expect,
  expectConnections,
  expectMediaFlowing,
  framesByTile,
  mediaProblems,
  metric,
  openParticipant,
  sleep,
  statusText,
  test,
  whenStatus,
  whenVideoFlowing,
  type Peer,
} from './helpers';
import { RelayProcess, stopAllRelays } from './relay-process';

/** How long the relay stays down while frames are counted. */
const OUTAGE_SAMPLE_MS = 5_000;
/** A newcomer after the restart must see everyone within this. */
const NEWCOMER_BUDGET_MS = 10_000;
/**
 * Restart → every page "Connected" again. The reconnect backoff is capped
 * near 7 s (+20% jitter) and the relay was down ~7 s, so one wait of up to
 * ~8.4 s is expected; more means the pages stopped retrying.
 */
const SIGNALING_BACK_LIMIT_MS = 12_000;

test.afterEach(async () => {
  await stopAllRelays();
});

const others = (names: string[], me: string) => names.filter((n) => n !== me);

for (const [signal, port] of [
  ['SIGTERM', 3100],
  ['SIGKILL', 3101],
] as const) {
  test(`relay stopped with ${signal} and restarted during a 3-party call: media keeps flowing, signaling comes back, a newcomer sees everyone`, async ({
    browser,
    room,
  }) => {
    test.setTimeout(180_000);
    const relay = new RelayProcess(port);
    await relay.start();
    const url = relay.url(`/?room=${room}&quality=low`);
    const names = ['Ada', 'Bob', 'Cyd'];
    const peers: Peer[] = [];
    for (const n of names) peers.push(await openParticipant(browser, room, n, { url }));
    await Promise.all(peers.map((p) => expectMediaFlowing(p, others(names, p.name))));
    await Promise.all(peers.map((p) => expectConnections(p, { inbound: 2, outbound: 2 })));

    // --- The relay goes away.
    const exitMs = await relay.stop(signal);
    const downAt = Date.now();
    console.log(`relay ${signal}: exited ${exitMs} ms after the signal`);
    const noticed = await whenStatus(peers, /Reconnecting|unreachable/i, 10_000);
    expect(
      Object.entries(noticed).filter(([, t]) => !Number.isFinite(t)).map(([n]) => n),
      `every page shows it lost the relay (status: ${JSON.stringify(await Promise.all(peers.map((p) => statusText(p.page))))})`,
    ).toEqual([]);

    // Media keeps flowing while the relay is down: every tile on every page
    // keeps decoding frames over the whole window.
    const before = await Promise.all(peers.map((p) => framesByTile(p.page)));
    await sleep(OUTAGE_SAMPLE_MS);
    const after = await Promise.all(peers.map((p) => framesByTile(p.page)));
    const problems = await Promise.all(peers.map((p) => mediaProblems(p.page, others(names, p.name), { audio: true })));
    expect(relay.child?.exitCode !== null || relay.child?.signalCode !== null, 'the relay is still down while sampling').toBe(true);
    const stalled: string[] = [];
    peers.forEach((p, i) => {
      for (const other of others(names, p.name)) {
        const a = before[i][other];
        const b = after[i][other];
        if (!(typeof a === 'number' && typeof b === 'number' && b > a)) stalled.push(`${p.name} <- ${other}: ${a} -> ${b}`);
      }
    });
    expect(stalled, `framesDecoded grows on every tile while the relay is down (${OUTAGE_SAMPLE_MS} ms)`).toEqual([]);
    expect(problems.flat(), 'media in good shape during the outage').toEqual([]);
    const statuses = await Promise.all(peers.map((p) => statusText(p.page)));
    expect(statuses.filter((s) => s === 'Connected'), `nobody can be Connected to a stopped relay: ${JSON.stringify(statuses)}`).toEqual([]);

    // --- The relay comes back on the same port.
    const restartedAt = await relay.start();
    console.log(`relay was down ${restartedAt - downAt} ms`);
    const back = await whenStatus(peers, /^Connected$/, 30_000);
    const backMs = Object.fromEntries(Object.entries(back).map(([n, t]) => [n, t - restartedAt]));
    const worst = Math.max(...Object.values(backMs));
    console.log(`signaling back per page (ms after restart): ${JSON.stringify(backMs)}`);
    metric('relay_restart_signaling_back_ms', worst);
    metric(`relay_restart_signaling_back_ms_${signal.toLowerCase()}`, worst);
    expect(
      Object.entries(backMs).filter(([, t]) => !(t <= SIGNALING_BACK_LIMIT_MS)).map(([n, t]) => `${n}: ${t}`),
      `every page says Connected within ${SIGNALING_BACK_LIMIT_MS} ms of the restart`,
    ).toEqual([]);

    // The call is the same call: the same tiles, media flowing, no extra connections.
    await Promise.all(peers.map((p) => expectMediaFlowing(p, others(names, p.name), { timeout: 20_000 })));
    await Promise.all(peers.map((p) => expectConnections(p, { inbound: 2, outbound: 2 })));

    // --- Signaling works again: a newcomer joins and sees everyone.
    const joinedAt = Date.now();
    const dan = await openParticipant(browser, room, 'Dan', { url });
    const seen = await whenVideoFlowing(dan.page, names, Math.max(1, NEWCOMER_BUDGET_MS - (Date.now() - joinedAt)));
    if (Number.isFinite(seen)) metric('relay_restart_newcomer_sees_all_ms', seen - joinedAt);
    expect(
      Number.isFinite(seen),
      `the newcomer sees video from everyone within ${NEWCOMER_BUDGET_MS} ms (tiles: ${JSON.stringify(await framesByTile(dan.page))})`,
    ).toBe(true);
    await expectMediaFlowing(dan, names, { timeout: 10_000 });
    const all = [...names, 'Dan'];
    await Promise.all(peers.map((p) => expectMediaFlowing(p, others(all, p.name), { timeout: 20_000 })));
    await Promise.all([...peers, dan].map((p) => expectConnections(p, { inbound: 3, outbound: 3 })));
  });
}
