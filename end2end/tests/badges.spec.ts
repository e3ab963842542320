// Muting the mic or turning the camera off shows on everyone else's page.
import { blur, expect, expectMediaFlowing, openParticipant, openViewer, remoteTile, test, type Peer } from './helpers';

function badges(watcher: Peer, name: string) {
  const tile = remoteTile(watcher.page, name);
  return { muted: tile.getByTestId('badge-muted'), cameraOff: tile.getByTestId('badge-camera-off') };
}

async function expectBadges(watchers: Peer[], name: string, want: { muted: boolean; cameraOff: boolean }, how: string) {
  for (const w of watchers) {
    const b = badges(w, name);
    await expect(remoteTile(w.page, name), `${w.name} still shows ${name}'s tile`).toHaveCount(1);
    const check = async (loc: typeof b.muted, on: boolean, what: string) => {
      const msg = `${w.name}: ${name}'s tile ${on ? 'shows' : 'does not show'} the ${what} badge (${how})`;
      if (on) await expect(loc, msg).toBeVisible({ timeout: 5000 });
      else await expect(loc, msg).toBeHidden({ timeout: 5000 });
    };
    await check(b.muted, want.muted, 'mic-muted');
    await check(b.cameraOff, want.cameraOff, 'camera-off');
  }
}

test('mute and camera-off show as badges on the other pages, and go away again', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');
  const vic = await openViewer(browser, room, 'Vic');
  await Promise.all([
    expectMediaFlowing(ada, ['Bob']),
    expectMediaFlowing(bob, ['Ada']),
    expectMediaFlowing(vic, ['Ada', 'Bob']),
  ]);
  const watchers = [bob, vic];
  const mic = ada.page.getByTestId('toggle-mic');
  const cam = ada.page.getByTestId('toggle-camera');

  await expectBadges(watchers, 'Ada', { muted: false, cameraOff: false }, 'at the start');
  await expect(mic).not.toHaveAttribute('aria-pressed', 'true');
  await expect(cam).not.toHaveAttribute('aria-pressed', 'true');

  // Buttons.
  await mic.click();
  await expect(mic, 'the mic button shows it is muted').toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: true, cameraOff: false }, 'after Ada clicked mute');
  await cam.click();
  await expect(cam, 'the camera button shows it is off').toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: true, cameraOff: true }, 'after Ada also turned the camera off');
  // The badges are Ada's alone.
  await expectBadges([vic], 'Bob', { muted: false, cameraOff: false }, 'Bob changed nothing');

  await mic.click();
  await expect(mic).not.toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: false, cameraOff: true }, 'after Ada unmuted');
  await cam.click();
  await expect(cam).not.toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: false, cameraOff: false }, 'after Ada turned the camera back on');
  // Her video and sound really come back.
  await Promise.all([expectMediaFlowing(bob, ['Ada']), expectMediaFlowing(vic, ['Ada', 'Bob'])]);

  // Keyboard shortcuts: m and v.
  await blur(ada.page);
  await ada.page.keyboard.press('m');
  await expect(mic, '"m" mutes').toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: true, cameraOff: false }, 'after Ada pressed m');
  await ada.page.keyboard.press('v');
  await expect(cam, '"v" turns the camera off').toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: true, cameraOff: true }, 'after Ada pressed v');
  await ada.page.keyboard.press('m');
  await ada.page.keyboard.press('v');
  await expect(mic, 'a second "m" unmutes').not.toHaveAttribute('aria-pressed', 'true');
  await expect(cam, 'a second "v" turns the camera on').not.toHaveAttribute('aria-pressed', 'true');
  await expectBadges(watchers, 'Ada', { muted: false, cameraOff: false }, 'after Ada pressed m and v again');
});
