// Quality that follows the tile: each viewer reports how large it shows a
// broadcaster's camera (viewSize), and the broadcaster encodes no more for
// it: a viewer showing Ada in the spotlight strip gets a fraction of the
// pixels a viewer showing her large gets, and a viewer that hides her tile
// gets no video at all while her audio goes on. The figures come from
// getStats on Ada's side (BENCHMARKS.md, "Quality follows the tile").
import type { Page } from '@playwright/test';
import { expect, expectMediaFlowing, metric, openParticipant, openViewer, remoteTile, sleep, test, type Peer } from './helpers';

interface Out {
  /** Index of the connection in the page's creation order (outbound ones only). */
  n: number;
  active: boolean | null;
  scale: number | null;
  width: number;
  height: number;
  video: number;
  audio: number;
  at: number;
}

/** Ada's outbound connections, in the order they were made: encoding and bytes sent. */
async function outbound(page: Page): Promise<Out[]> {
  return page.evaluate(async () => {
    const out: any[] = [];
    let n = 0;
    for (const pc of window.__pcs) {
      const video = pc.getSenders().find((s) => s.track?.kind === 'video');
      if (!video) continue;
      const o: any = { n: n++, video: 0, audio: 0, width: 0, height: 0, at: performance.now() };
      if (pc.connectionState !== 'closed') {
        const enc = video.getParameters().encodings?.[0] ?? {};
        o.active = enc.active ?? null;
        o.scale = enc.scaleResolutionDownBy ?? null;
        (await pc.getStats()).forEach((s: any) => {
          if (s.type !== 'outbound-rtp') return;
          if (s.kind === 'video') {
            o.video += s.bytesSent;
            o.width = s.frameWidth ?? o.width;
            o.height = s.frameHeight ?? o.height;
          } else o.audio += s.bytesSent;
        });
      }
      out.push(o);
    }
    return out;
  });
}

test("each viewer gets the pixels its tile shows: small in the strip, none when hidden, audio always", async ({ browser, room }) => {
  test.setTimeout(150_000);
  const ada = await openParticipant(browser, room, 'Ada');
  const bob = await openParticipant(browser, room, 'Bob', { url: `/?room=${encodeURIComponent(room)}&quality=low` });
  await expectMediaFlowing(bob, ['Ada'], { audio: false });
  // One viewer at a time, so Ada's connections are made in this order.
  const viewers: Peer[] = [];
  for (const name of ['Vic', 'Wes', 'Yuri']) {
    const v = await openViewer(browser, room, name);
    await expectMediaFlowing(v, ['Ada', 'Bob'], { audio: false });
    viewers.push(v);
  }
  const [vic, wes, yuri] = viewers;
  // Wes watches Bob in the spotlight: Ada is a small tile in the strip.
  // Yuri does too, and hides the strip: Ada is not shown at all.
  for (const v of [wes, yuri]) {
    const bobTile = remoteTile(v.page, 'Bob');
    await bobTile.hover();
    await bobTile.getByRole('button', { name: 'Pin', exact: true }).click();
    await expect(bobTile).toHaveAttribute('data-spotlight', 'true');
  }
  await yuri.page.getByRole('button', { name: 'Hide others', exact: true }).click();
  await expect(remoteTile(yuri.page, 'Ada')).toBeHidden();

  // Ada's connections: to Bob, Vic, Wes, Yuri. Wait for the plans to land.
  await expect
    .poll(async () => {
      const o = await outbound(ada.page);
      return o.length === 4 && o[3].active === false && (o[2].scale ?? 1) > 2 && o[1].scale === 1;
    }, { message: "Ada's senders follow the tiles (Vic full size, Wes scaled down, Yuri paused)", timeout: 20_000 })
    .toBe(true);
  await sleep(3_000); // the encoders settle on the new sizes
  const a = await outbound(ada.page);
  await sleep(5_000);
  const b = await outbound(ada.page);
  const rate = (i: number, k: 'video' | 'audio') => ((b[i][k] - a[i][k]) * 8) / (b[i].at - a[i].at); // kbit/s
  const px = (i: number) => b[i].width * b[i].height;
  const rows = ['Bob (grid)', 'Vic (grid, large)', 'Wes (spotlight strip)', 'Yuri (strip hidden)'].map(
    (who, i) =>
      `${who}: ${b[i].width}x${b[i].height} (scale ${b[i].scale}, active ${b[i].active}), video ${rate(i, 'video').toFixed(0)} kbit/s, audio ${rate(i, 'audio').toFixed(0)} kbit/s`,
  );
  console.log(`Ada's outbound, over 5 s:\n  ${rows.join('\n  ')}`);
  metric('tile_large_px', px(1));
  metric('tile_small_px', px(2));
  metric('tile_hidden_video_kbps', Math.round(rate(3, 'video')));
  metric('tile_hidden_audio_kbps', Math.round(rate(3, 'audio')));

  expect(px(1), 'Vic, showing Ada large, gets her camera at full size').toBe(640 * 480);
  expect(px(2), 'Wes, showing Ada small, gets at most a quarter of the pixels').toBeLessThanOrEqual(px(1) / 4);
  expect(px(2), 'Wes still gets video').toBeGreaterThan(0);
  expect(rate(2, 'video'), 'Wes still gets video bytes').toBeGreaterThan(5);
  expect(rate(3, 'video'), 'Yuri, who hides Ada, gets (almost) no video').toBeLessThan(2);
  expect(rate(3, 'audio'), "Yuri still hears Ada").toBeGreaterThan(10);
  expect(rate(1, 'video'), 'Vic gets more video bits than Wes').toBeGreaterThan(rate(2, 'video'));

  // Yuri shows the strip again: Ada's video comes back.
  await yuri.page.getByRole('button', { name: 'Show others', exact: true }).click();
  await expectMediaFlowing(yuri, ['Ada', 'Bob'], { audio: false });
  await expect.poll(async () => (await outbound(ada.page))[3]?.active, { message: "Ada's sender to Yuri is active again" }).toBe(true);
});
