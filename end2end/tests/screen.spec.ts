// Screen share: the screen reaches everyone on the connection they already have, as a tile of its own that
// comes first and is largest; late joiners get it too; it stops from the button and from the browser's own bar.
import { type Locator, type Page } from '@playwright/test';
import path from 'node:path';
import {
  ensureArtifactsDir,
  expect,
  expectConnections,
  expectLocalPreview,
  expectMediaFlowing,
  openParticipant,
  openViewer,
  ownPeerId,
  test,
  type Peer,
} from './helpers';

const callUrl = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;
const watchUrl = (room: string) => `/watch?room=${encodeURIComponent(room)}&quality=low`;

const REMOTE_SCREEN = '[data-testid=screen-tile]:not([data-local="true"])';
const LOCAL_SCREEN = '[data-testid=screen-tile][data-local="true"]';

function remoteScreens(page: Page): Locator {
  return page.locator(REMOTE_SCREEN);
}

function localScreens(page: Page): Locator {
  return page.locator(LOCAL_SCREEN);
}

/**
 * The remote screen tiles as the page shows them: the tile's video, the
 * connection its track arrives on (index in __pcs, by receiver track id),
 * the connection of the same peer's camera tile, and framesDecoded of the
 * screen track (inbound-rtp by trackIdentifier).
 */
async function remoteScreenInfo(page: Page) {
  return page.evaluate(async (selector: string) => {
    const pcOf = (ids: Set<string>) => window.__pcs.findIndex((pc) => pc.connectionState !== 'closed' && pc.getReceivers().some((r) => ids.has(r.track.id)));
    const videoIds = (el: Element | null | undefined) => {
      const v = el?.querySelector('video');
      const s = v && v.srcObject instanceof MediaStream ? v.srcObject : null;
      return new Set((s?.getVideoTracks() ?? []).map((t) => t.id));
    };
    const out: {
      peerId: string | null;
      text: string;
      hasVideo: boolean;
      paused: boolean;
      videoWidth: number;
      tracks: number;
      pcIndex: number;
      cameraPcIndex: number;
      framesDecoded: number | null;
      pcs: number;
    }[] = [];
    for (const tile of document.querySelectorAll(selector)) {
      const v = tile.querySelector('video');
      const peerId = tile.getAttribute('data-sharer');
      const ids = videoIds(tile);
      const pcIndex = pcOf(ids);
      let framesDecoded = null as number | null;
      if (pcIndex >= 0) {
        (await window.__pcs[pcIndex].getStats()).forEach((s: any) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video' && ids.has(s.trackIdentifier)) framesDecoded = (framesDecoded ?? 0) + (s.framesDecoded ?? 0);
        });
      }
      const camera = peerId ? document.querySelector(`[data-testid=tile][data-local="false"][data-peer="${CSS.escape(peerId)}"]`) : null;
      out.push({
        peerId,
        text: (tile.textContent ?? '').replace(/\s+/g, ' ').trim(),
        hasVideo: !!v,
        paused: v ? v.paused : true,
        videoWidth: v?.videoWidth ?? 0,
        tracks: ids.size,
        pcIndex,
        cameraPcIndex: camera ? pcOf(videoIds(camera)) : -2,
        framesDecoded,
        pcs: window.__pcs.length,
      });
    }
    return out;
  }, REMOTE_SCREEN);
}

/**
 * Waits until the page shows exactly one remote screen tile, `name`'s, from
 * peer `peerId`, playing (frames of its track keep being decoded) on the
 * connection that carries `name`'s camera, and the page made no new
 * connection (`pcs` recorded, if given).
 */
async function expectRemoteScreen(watcher: Peer, name: string, peerId: string, pcs?: number): Promise<void> {
  let last: number | null = null;
  await expect
    .poll(
      async () => {
        const tiles = await remoteScreenInfo(watcher.page);
        if (tiles.length !== 1) return [`${tiles.length} remote screen tiles, want 1: ${JSON.stringify(tiles.map((t) => t.text))}`];
        const [t] = tiles;
        const problems: string[] = [];
        if (t.peerId !== peerId) problems.push(`data-sharer ${t.peerId}, want ${name}'s ${peerId}`);
        if (!new RegExp(`${name}['’]s screen`, 'i').test(t.text)) problems.push(`text ${JSON.stringify(t.text)} lacks "${name}'s screen"`);
        if (!t.hasVideo) problems.push('no <video>');
        else if (t.tracks === 0) problems.push('<video> has no video track');
        if (t.paused) problems.push('<video> paused');
        if (t.videoWidth === 0) problems.push('<video> has no frame (videoWidth 0)');
        if (t.pcIndex < 0) problems.push('its track arrives on no live RTCPeerConnection');
        else if (t.pcIndex !== t.cameraPcIndex) problems.push(`its track arrives on connection ${t.pcIndex}, ${name}'s camera on ${t.cameraPcIndex}: want the same`);
        if (pcs !== undefined && t.pcs !== pcs) problems.push(`the page has ${t.pcs} RTCPeerConnections, had ${pcs}: the screen must come on the existing one`);
        if (t.framesDecoded === null) problems.push('no inbound-rtp for its track');
        else if (last === null || !(t.framesDecoded > last)) problems.push(`framesDecoded not growing (${last} -> ${t.framesDecoded})`);
        last = t.framesDecoded;
        return problems;
      },
      { message: `${watcher.name} should show "${name}'s screen" playing, on the connection it already has`, timeout: 20_000, intervals: [500, 1000] },
    )
    .toEqual([]);
}

/** Waits until the sharer's own "Your screen" tile plays (currentTime advancing). */
async function expectLocalScreen(sharer: Peer): Promise<void> {
  const tile = localScreens(sharer.page);
  await expect(tile, `${sharer.name} has one local screen tile`).toHaveCount(1);
  await expect(tile, `${sharer.name}'s own screen tile says "Your screen"`).toContainText(/your screen/i);
  let last: number | null = null;
  await expect
    .poll(
      async () => {
        const s = await tile.evaluate((el) => {
          const v = el.querySelector('video');
          return { has: !!v && v.srcObject instanceof MediaStream, paused: v?.paused ?? true, width: v?.videoWidth ?? 0, time: v?.currentTime ?? 0 };
        });
        const problems: string[] = [];
        if (!s.has) problems.push('no <video> with a MediaStream');
        if (s.paused) problems.push('paused');
        if (s.width === 0) problems.push('no frame (videoWidth 0)');
        if (last === null || !(s.time > last)) problems.push(`currentTime not advancing (${last} -> ${s.time})`);
        last = s.time;
        return problems;
      },
      { message: `${sharer.name}'s "Your screen" tile should play`, timeout: 15_000, intervals: [300, 500, 1000] },
    )
    .toEqual([]);
}

/** contentHint of the video senders' tracks, per live outbound connection (some transceiver sendonly). */
async function outboundVideoHints(page: Page): Promise<string[][]> {
  return page.evaluate(() =>
    window.__pcs
      .filter((pc) => pc.connectionState !== 'closed' && pc.getTransceivers().some((t) => t.direction === 'sendonly'))
      .map((pc) =>
        pc
          .getSenders()
          .filter((s) => s.track?.kind === 'video')
          .map((s) => s.track!.contentHint),
      ),
  );
}

async function startSharing(sharer: Peer): Promise<void> {
  const button = sharer.page.getByTestId('share-screen');
  await expect(button, 'the share button offers "Share screen"').toHaveAccessibleName(/^share screen$/i);
  await expect(button, 'not sharing: the share button is not pressed').not.toHaveAttribute('aria-pressed', 'true');
  await sharer.page.getByRole('button', { name: /^share screen$/i }).click();
  await expect(button, 'sharing: the button now says "Stop sharing"').toHaveAccessibleName(/^stop sharing$/i, { timeout: 10_000 });
  await expect(button, 'sharing: the button is pressed').toHaveAttribute('aria-pressed', 'true');
}

async function expectNotSharing(sharer: Peer, watchers: Peer[], how: string): Promise<void> {
  const button = sharer.page.getByTestId('share-screen');
  await expect(button, `${how}: the button says "Share screen" again`).toHaveAccessibleName(/^share screen$/i, { timeout: 10_000 });
  await expect(button, `${how}: the button is not pressed`).not.toHaveAttribute('aria-pressed', 'true');
  await expect(localScreens(sharer.page), `${how}: ${sharer.name}'s own screen tile is gone`).toHaveCount(0);
  for (const w of watchers) {
    await expect(remoteScreens(w.page), `${how}: ${w.name} no longer shows ${sharer.name}'s screen`).toHaveCount(0, { timeout: 10_000 });
  }
}

test('a shared screen reaches participants and late viewers on their existing connection, and stops from the button and from the track', async ({ browser, room }) => {
  test.setTimeout(150_000);
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: callUrl(room) });
  await Promise.all([expectMediaFlowing(bob, ['Ada']), expectMediaFlowing(ada, ['Bob'], { audio: false })]);
  const adaId = await ownPeerId(ada);
  const bobPcs = await bob.page.evaluate(() => window.__pcs.length);

  await startSharing(ada);
  await expectLocalScreen(ada);
  await expectRemoteScreen(bob, 'Ada', adaId, bobPcs);
  // The screen tile is no camera tile: Bob still has exactly one tile of Ada, still playing.
  await expectMediaFlowing(bob, ['Ada'], { audio: false });
  await expect
    .poll(() => outboundVideoHints(ada.page), { message: "every outbound connection of Ada's sends a video track with contentHint 'detail' (the screen)" })
    .toEqual([expect.arrayContaining(['detail'])]);

  // A viewer who comes while Ada shares gets the screen, with no extra connection.
  const vic = await openViewer(browser, room, 'Vic', { url: watchUrl(room) });
  await expectMediaFlowing(vic, ['Ada', 'Bob'], { audio: false });
  await expectRemoteScreen(vic, 'Ada', adaId);
  await expectConnections(vic, { inbound: 2, outbound: 0 });
  await expect
    .poll(() => outboundVideoHints(ada.page), { message: "both of Ada's outbound connections (Bob, Vic) carry the screen" })
    .toEqual([expect.arrayContaining(['detail']), expect.arrayContaining(['detail'])]);

  // Stop sharing from the button.
  await ada.page.getByRole('button', { name: /^stop sharing$/i }).click();
  await expectNotSharing(ada, [bob, vic], 'after Stop sharing');
  await vic.context.close(); // less to encode from here on

  // Share again, then end the track as the browser's own "Stop sharing" bar
  // would. A track stopped by script fires no 'ended': dispatch it.
  const bobPcsNow = await bob.page.evaluate(() => window.__pcs.length);
  await startSharing(ada);
  await expectLocalScreen(ada);
  await expectRemoteScreen(bob, 'Ada', adaId, bobPcsNow);
  const ended = await ada.page.evaluate(() => {
    const tracks = new Set<MediaStreamTrack>();
    const v = document.querySelector<HTMLVideoElement>('[data-testid=screen-tile][data-local="true"] video');
    if (v && v.srcObject instanceof MediaStream) v.srcObject.getVideoTracks().forEach((t) => tracks.add(t));
    // In case the senders carry a track of their own (a clone).
    for (const pc of window.__pcs) {
      for (const s of pc.getSenders()) if (s.track && s.track.kind === 'video' && s.track.contentHint === 'detail') tracks.add(s.track);
    }
    tracks.forEach((t) => {
      t.stop();
      t.dispatchEvent(new Event('ended'));
    });
    return tracks.size;
  });
  expect(ended, "Ada's local screen tile plays the screen track that was ended").toBeGreaterThanOrEqual(1);
  await expectNotSharing(ada, [bob], 'after the screen track ended');
  await expectMediaFlowing(bob, ['Ada'], { audio: false });
});

/** No sideways scroll, no overlap, pictures in every video, and the screen tile first and largest. */
async function screenLayoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const vw = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > vw + 1) problems.push(`page scrolls sideways: scrollWidth ${document.documentElement.scrollWidth} > ${vw}`);
    const screens = [...document.querySelectorAll('[data-testid=screen-tile]')];
    const tiles = [...document.querySelectorAll('[data-testid=tile]')];
    if (screens.length !== 1) return [...problems, `${screens.length} screen tiles, want 1`];
    const all = [...screens, ...tiles];
    const label = (i: number) => (i === 0 ? 'screen tile' : `tile ${i - 1}`);
    const rects = all.map((t) => t.getBoundingClientRect());
    rects.forEach((r, i) => {
      if (r.width < 50 || r.height < 50) problems.push(`${label(i)} is ${r.width}x${r.height}`);
      if (r.left < -1 || r.right > vw + 1) problems.push(`${label(i)} sticks out horizontally: ${r.left}..${r.right} of ${vw}`);
      rects.slice(i + 1).forEach((q, j) => {
        const overlapX = Math.min(r.right, q.right) - Math.max(r.left, q.left);
        const overlapY = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
        if (overlapX > 1 && overlapY > 1) problems.push(`${label(i)} and ${label(i + j + 1)} overlap by ${overlapX}x${overlapY}`);
      });
    });
    const s = rects[0];
    const area = (r: DOMRect) => r.width * r.height;
    rects.slice(1).forEach((r, i) => {
      if (area(r) > area(s) + 1) problems.push(`tile ${i} (${r.width}x${r.height}) is larger than the screen tile (${s.width}x${s.height})`);
      // First in reading order: no camera tile above it, or left of it on its row.
      if (r.top < s.top - 1 || (Math.abs(r.top - s.top) <= 1 && r.left < s.left - 1)) {
        problems.push(`tile ${i} at ${r.left},${r.top} comes before the screen tile at ${s.left},${s.top}`);
      }
    });
    all.forEach((t, i) => {
      const v = t.querySelector('video');
      if (!v) return;
      if (v.videoWidth === 0) return problems.push(`${label(i)}: video has no frame`);
      const [min, max] = window.__lumaRange(v);
      if (max - min < 10) problems.push(`${label(i)}: video looks flat (luma ${min}..${max})`);
    });
    return problems;
  });
}

test('screenshots of a call with a shared screen, wide and narrow', async ({ browser, room }) => {
  const dir = ensureArtifactsDir();
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: callUrl(room), viewport: { width: 1280, height: 800 } });
  await Promise.all([expectMediaFlowing(bob, ['Ada'], { audio: false }), expectMediaFlowing(ada, ['Bob'], { audio: false })]);
  const adaId = await ownPeerId(ada);
  await startSharing(ada);
  await expectRemoteScreen(bob, 'Ada', adaId);
  await expectMediaFlowing(bob, ['Ada'], { audio: false });
  await expectLocalPreview(bob);

  for (const [file, viewport] of [
    ['call-screen-wide.png', { width: 1280, height: 800 }],
    ['call-screen-narrow.png', { width: 390, height: 844 }],
  ] as const) {
    await bob.page.setViewportSize(viewport);
    await bob.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await expect
      .poll(() => screenLayoutProblems(bob.page), { message: `call layout with a shared screen at ${viewport.width}x${viewport.height} (Bob's page)` })
      .toEqual([]);
    await bob.page.screenshot({ path: path.join(dir, file) });
    console.log(`screenshot: ${path.join(dir, file)}`);
  }
});
