// Who sees whom: a room's participants and viewers see every broadcaster,
// other rooms see nothing, late joiners get everyone, leavers vanish.
import {
  expect,
  expectConnected,
  expectLocalPreview,
  expectMediaFlowing,
  metric,
  openParticipant,
  openViewer,
  remoteTiles,
  test,
  timeUntilTileGone,
  whenTileGone,
  clickStamped,
  type Peer,
} from './helpers';

/** How fast a leaver must disappear from everyone else's page. */
const LEAVE_BUDGET_MS = 2000;

function expectAllWithin(label: string, times: Record<string, number>, budget: number): void {
  const slow = Object.entries(times).filter(([, t]) => !(t <= budget));
  const took = Object.entries(times)
    .map(([page, t]) => `${page}: ${Number.isFinite(t) ? `${t} ms` : 'still there after 10 s'}`)
    .join(', ');
  expect(slow.map(([page]) => page), `${label}: must vanish from every page within ${budget} ms; ${took}`).toEqual([]);
}

test('two participants and a viewer all see and hear every broadcaster; the viewer never asks for the camera', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');
  const vic = await openViewer(browser, room, 'Vic');

  await Promise.all([
    expectMediaFlowing(ada, ['Bob']),
    expectMediaFlowing(bob, ['Ada']),
    expectMediaFlowing(vic, ['Ada', 'Bob']),
  ]);
  await expectLocalPreview(ada);
  await expectLocalPreview(bob);

  expect(await vic.page.evaluate(() => window.__gumCalls), 'the viewer page must never call getUserMedia').toBe(0);
  await expect(vic.page.locator('[data-testid=tile][data-local="true"]'), 'a viewer has no own camera tile').toHaveCount(0);
  for (const p of [ada, bob]) {
    expect(await p.page.evaluate(() => window.__gumCalls), `${p.name} asked for the camera`).toBeGreaterThanOrEqual(1);
  }
  await Promise.all([expectConnected(ada), expectConnected(bob), expectConnected(vic)]);
});

test('a participant in another room sees nobody and opens no peer connection', async ({ browser, room }) => {
  const iso = await openParticipant(browser, `${room}-other`, 'Iso');
  await expectConnected(iso);

  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');
  await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada'])]);

  await expect(remoteTiles(iso.page), 'Iso is alone in its room: no remote tile').toHaveCount(0);
  expect(await iso.page.evaluate(() => window.__pcs.length), 'Iso must not create any RTCPeerConnection').toBe(0);
  // ...and nobody in the room sees Iso (expectMediaFlowing is exact).
  await Promise.all([expectMediaFlowing(ada, ['Bob'], { audio: false }), expectMediaFlowing(bob, ['Ada'], { audio: false })]);
  await expectLocalPreview(iso);
});

test('a late joiner gets everyone; leavers (leave button, closed tab) vanish everywhere within 2 s', async ({ browser, room }) => {
  test.setTimeout(150_000); // up to four browsers' worth of media, several phases
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');
  const vic = await openViewer(browser, room, 'Vic');
  await Promise.all([
    expectMediaFlowing(ada, ['Bob']),
    expectMediaFlowing(bob, ['Ada']),
    expectMediaFlowing(vic, ['Ada', 'Bob']),
  ]);

  // Late joiner.
  const cyd = await openParticipant(browser, room, 'Cyd');
  await Promise.all([
    expectMediaFlowing(cyd, ['Ada', 'Bob']),
    expectMediaFlowing(ada, ['Bob', 'Cyd']),
    expectMediaFlowing(bob, ['Ada', 'Cyd']),
    expectMediaFlowing(vic, ['Ada', 'Bob', 'Cyd']),
  ]);

  // Cyd leaves with the button.
  // Measured from the moment the click reaches Cyd's page.
  const [goneAt, leftAt] = await Promise.all([whenTileGone([ada, bob, vic], 'Cyd'), clickStamped(cyd, 'leave')]);
  const viaButton = Object.fromEntries(Object.entries(goneAt).map(([k, v]) => [k, v - leftAt]));
  metric('leave_button_gone_ms', Math.max(...Object.values(viaButton)));
  await expect(cyd.page.getByTestId('left'), 'after leaving, Cyd sees the "left" screen').toBeVisible();
  await expect(remoteTiles(cyd.page), 'after leaving, Cyd shows nobody').toHaveCount(0);
  await expect
    .poll(() => cyd.page.evaluate(() => window.__pcs.map((pc) => pc.connectionState).filter((s) => s !== 'closed')), {
      message: 'after leaving, every peer connection of Cyd is closed',
    })
    .toEqual([]);
  await expect
    .poll(() => cyd.page.evaluate(() => window.__gumStreams.flatMap((s) => s.getTracks()).filter((t) => t.readyState !== 'ended').map((t) => t.kind)), {
      message: 'after leaving, Cyd has stopped its camera and microphone',
    })
    .toEqual([]);
  expectAllWithin('Cyd (leave button)', viaButton, LEAVE_BUDGET_MS);

  // Cyd rejoins from the "left" screen and is seen again.
  await cyd.page.getByTestId('left').getByRole('button', { name: /join/i }).click();
  await Promise.all([
    expectMediaFlowing(cyd, ['Ada', 'Bob']),
    expectMediaFlowing(ada, ['Bob', 'Cyd']),
    expectMediaFlowing(vic, ['Ada', 'Bob', 'Cyd']),
  ]);

  // Bob's tab closes without any goodbye from the app.
  const closedAt = Date.now();
  await bob.page.close();
  const viaClose = await timeUntilTileGone([ada, cyd, vic], 'Bob', closedAt);
  metric('tab_close_gone_ms', Math.max(...Object.values(viaClose)));
  expectAllWithin('Bob (tab closed)', viaClose, LEAVE_BUDGET_MS);

  // The rest carry on.
  const rest: [Peer, string[]][] = [
    [ada, ['Cyd']],
    [cyd, ['Ada']],
    [vic, ['Ada', 'Cyd']],
  ];
  await Promise.all(rest.map(([p, names]) => expectMediaFlowing(p, names)));
});
