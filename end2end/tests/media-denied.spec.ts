// Camera permission denied: the page says so and can watch the room instead.
import { chromium } from '@playwright/test';
import { CHROMIUM_PATH, DENIED_ARGS } from '../chromium';
import { expect, expectMediaFlowing, localTiles, openParticipant, test } from './helpers';

test('camera permission denied: the error is shown and "continue as viewer" watches the others', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');

  // The shared browser answers every prompt with "allow"
  // (--use-fake-ui-for-media-stream overrides any denial), so this one gets a
  // browser of its own without it, where getUserMedia rejects with
  // NotAllowedError at once.
  const denyingBrowser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: DENIED_ARGS, headless: true });
  try {
    const den = await openParticipant(denyingBrowser, room, 'Den', { contextOptions: { permissions: [] } });
    await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada'])]);

    const error = den.page.getByTestId('media-error');
    await expect(error, 'the media error is shown when the camera is denied').toBeVisible();
    await expect(error, 'the media error says something').toHaveText(/\S/);
    console.log(`media-error text: ${JSON.stringify((await error.innerText()).trim())}`);
    await expect(den.page.getByTestId('retry-media')).toBeVisible();
    const calls = await den.page.evaluate(() => window.__gumCalls);
    expect(calls, 'the participant page asked for the camera').toBeGreaterThanOrEqual(1);

    // Retrying while still denied asks again and fails again.
    await den.page.getByTestId('retry-media').click();
    await expect.poll(() => den.page.evaluate(() => window.__gumCalls), { message: 'retry asks for the camera again' }).toBeGreaterThan(calls);
    await expect(error, 'still denied: the error stays').toBeVisible();

    const beforeWatching = await den.page.evaluate(() => window.__gumCalls);
    await den.page.getByTestId('continue-as-viewer').click();
    await expect(den.page.getByTestId('media-error'), 'watching: the error goes away').toBeHidden();
    await expectMediaFlowing(den, ['Ada', 'Bob']);
    await expect(localTiles(den.page), 'watching: no own camera tile').toHaveCount(0);
    expect(await den.page.evaluate(() => window.__gumCalls), 'watching does not ask for the camera again').toBeLessThanOrEqual(beforeWatching);
    // The others carry on, and do not get a tile for a watcher.
    await Promise.all([expectMediaFlowing(ada, ['Bob']), expectMediaFlowing(bob, ['Ada'])]);
  } finally {
    await denyingBrowser.close();
  }
});
