// Time to first picture for a viewer joining a running room.
import { expect, expectMediaFlowing, metric, openParticipant, openViewer, test } from './helpers';

/** A sanity bound, not a target: the number itself is what gets tracked. */
const FIRST_FRAME_LIMIT_MS = 15_000;

test('viewer: time from navigation start to the first decoded remote frame', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob');
  await Promise.all([expectMediaFlowing(ada, ['Bob'], { audio: false }), expectMediaFlowing(bob, ['Ada'], { audio: false })]);

  const vic = await openViewer(browser, room, 'Vic');
  await vic.page
    .waitForFunction(() => performance.getEntriesByName('meshcast:first-frame').length > 0, null, { timeout: 30_000 })
    .catch(() => {
      throw new Error('the viewer page never recorded performance.mark("meshcast:first-frame") (30 s)');
    });
  const firstFrame = await vic.page.evaluate(() => performance.getEntriesByName('meshcast:first-frame')[0].startTime);
  metric('viewer_first_frame_ms', firstFrame);

  await expectMediaFlowing(vic, ['Ada', 'Bob'], { audio: false });
  expect(firstFrame, 'first frame after navigation start').toBeGreaterThan(0);
  expect(firstFrame, `first remote frame within ${FIRST_FRAME_LIMIT_MS} ms of navigation`).toBeLessThan(FIRST_FRAME_LIMIT_MS);
});
