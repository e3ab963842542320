// The grid as a person sees it: screenshots of three tiles, wide and narrow.
import path from 'node:path';
import { ensureArtifactsDir, expect, expectLocalPreview, expectMediaFlowing, openParticipant, test, type Peer } from './helpers';

/** Tiles are on screen side by side or stacked, never on top of each other, and nothing scrolls sideways. */
async function layoutProblems(peer: Peer): Promise<string[]> {
  return peer.page.evaluate(() => {
    const problems: string[] = [];
    const vw = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > vw + 1) problems.push(`page scrolls sideways: scrollWidth ${document.documentElement.scrollWidth} > ${vw}`);
    const rects = [...document.querySelectorAll('[data-testid=tile]')].map((t) => t.getBoundingClientRect());
    rects.forEach((r, i) => {
      if (r.width < 50 || r.height < 50) problems.push(`tile ${i} is ${r.width}x${r.height}`);
      if (r.left < -1 || r.right > vw + 1) problems.push(`tile ${i} sticks out horizontally: ${r.left}..${r.right} of ${vw}`);
      rects.slice(i + 1).forEach((q, j) => {
        const overlapX = Math.min(r.right, q.right) - Math.max(r.left, q.left);
        const overlapY = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
        if (overlapX > 1 && overlapY > 1) problems.push(`tiles ${i} and ${i + j + 1} overlap by ${overlapX}x${overlapY}`);
      });
    });
    // Each video shows a picture, not a flat colour.
    document.querySelectorAll<HTMLVideoElement>('[data-testid=tile] video').forEach((v, i) => {
      if (v.videoWidth === 0) return problems.push(`video ${i} has no frame`);
      const [min, max] = window.__lumaRange(v);
      if (max - min < 10) problems.push(`video ${i} looks flat (luma ${min}..${max})`);
    });
    return problems;
  });
}

async function settle(peer: Peer): Promise<void> {
  await peer.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

test('screenshots of a three-tile grid, wide and narrow', async ({ browser, room }) => {
  const dir = ensureArtifactsDir();
  const ada = await openParticipant(browser, room, 'Ada', { viewport: { width: 1280, height: 800 } });
  const bob = await openParticipant(browser, room, 'Bob');
  const cyd = await openParticipant(browser, room, 'Cyd');
  await Promise.all([
    expectMediaFlowing(ada, ['Bob', 'Cyd']),
    expectMediaFlowing(bob, ['Ada', 'Cyd'], { audio: false }),
    expectMediaFlowing(cyd, ['Ada', 'Bob'], { audio: false }),
  ]);
  await expectLocalPreview(ada);
  await expect(ada.page.getByTestId('tile'), 'Ada sees three tiles: herself, Bob, Cyd').toHaveCount(3);

  for (const [file, viewport] of [
    ['grid-wide.png', { width: 1280, height: 800 }],
    ['grid-narrow.png', { width: 390, height: 844 }],
  ] as const) {
    await ada.page.setViewportSize(viewport);
    await settle(ada);
    await expect.poll(() => layoutProblems(ada), { message: `layout at ${viewport.width}x${viewport.height}` }).toEqual([]);
    await ada.page.screenshot({ path: path.join(dir, file) });
    console.log(`screenshot: ${path.join(dir, file)}`);
  }
});
