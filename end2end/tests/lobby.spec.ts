// The pre-join lobby: a live preview, a level meter, device choice that the call uses and that is remembered,
// a mid-call camera switch that keeps the same connection, joining without a camera, and how the lobby looks.
import { chromium, type Locator, type Page } from '@playwright/test';
import path from 'node:path';
import { CHROMIUM_PATH, DENIED_ARGS } from '../chromium';
import {
  ensureArtifactsDir,
  expect,
  expectMediaFlowing,
  joinFromLobby,
  localTiles,
  metric,
  openParticipant,
  openViewer,
  pageMedia,
  remoteTile,
  remoteTiles,
  test,
  type Peer,
} from './helpers';

// fake_device_1 previews locally but WebRTC encodes no frames from it: the two cameras are 0 and 2.
const CAMERA_A = 'fake_device_0';
const CAMERA_B = 'fake_device_2';

const callUrl = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;
const watchUrl = (room: string) => `/watch?room=${encodeURIComponent(room)}&quality=low`;

function lobby(page: Page): Locator {
  return page.getByTestId('lobby');
}

function select(scope: Page | Locator, name: 'Camera' | 'Microphone' | 'Speaker'): Locator {
  return scope.getByRole('combobox', { name: new RegExp(`^${name}$`, 'i') });
}

/** The deviceId (option value) of the option labelled `label` in a device select. */
async function optionValue(sel: Locator, label: string): Promise<string> {
  const option = sel.locator('option').filter({ hasText: label });
  await expect(option, `the select offers "${label}" exactly once`).toHaveCount(1);
  const value = (await option.getAttribute('value')) ?? '';
  expect(value, `the "${label}" option's value is its deviceId`).not.toBe('');
  return value;
}

/**
 * Waits until the <video> plays: not paused, has a frame, currentTime moves
 * between two samples, and (if given) it shows the track labelled `label`.
 */
async function expectVideoPlaying(video: Locator, what: string, label?: string): Promise<void> {
  let last: number | null = null;
  await expect
    .poll(
      async () => {
        const s = await video.evaluate((el) => {
          const v = el as HTMLVideoElement;
          const stream = v.srcObject instanceof MediaStream ? v.srcObject : null;
          return {
            paused: v.paused,
            width: v.videoWidth,
            time: v.currentTime,
            labels: stream ? stream.getVideoTracks().map((t) => `${t.label}:${t.readyState}`) : null,
          };
        });
        const problems: string[] = [];
        if (!s.labels) problems.push('no MediaStream srcObject');
        else if (label && !s.labels.includes(`${label}:live`)) problems.push(`shows ${JSON.stringify(s.labels)}, want a live "${label}"`);
        if (s.paused) problems.push('paused');
        if (s.width === 0) problems.push('no frame yet (videoWidth 0)');
        if (last === null || !(s.time > last)) problems.push(`currentTime not advancing (${last} -> ${s.time})`);
        last = s.time;
        return problems;
      },
      { message: `${what} should be playing${label ? ` ${label}` : ''}`, timeout: 15_000, intervals: [300, 500, 1000] },
    )
    .toEqual([]);
}

/** Per live outbound connection (some transceiver sendonly): index in __pcs, ICE ufrags, labels of the video senders' tracks. */
async function outbound(page: Page) {
  return page.evaluate(() =>
    window.__pcs
      .map((pc, index) => ({ pc, index }))
      .filter(({ pc }) => pc.connectionState !== 'closed' && pc.getTransceivers().some((t) => t.direction === 'sendonly'))
      .map(({ pc, index }) => ({
        index,
        ufrag: /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? '')?.[1] ?? '',
        remoteUfrag: /a=ice-ufrag:(\S+)/.exec(pc.remoteDescription?.sdp ?? '')?.[1] ?? '',
        videoLabels: pc
          .getSenders()
          .filter((s) => s.track?.kind === 'video')
          .map((s) => s.track!.label),
      })),
  );
}

/** Waits until every outbound connection of the page sends exactly one video track, labelled `label`. */
async function expectSendsCamera(peer: Peer, label: string, outboundCount: number): Promise<void> {
  await expect
    .poll(async () => (await outbound(peer.page)).map((o) => o.videoLabels), {
      message: `${peer.name}: every one of her ${outboundCount} outbound connection(s) sends the camera "${label}" (labels of the video senders' tracks)`,
      timeout: 15_000,
    })
    .toEqual(Array.from({ length: outboundCount }, () => [label]));
}

/**
 * The connection on which the page receives the video of `name`'s camera
 * tile: index in __pcs (found by the tile's track id among the receivers),
 * __pcs.length and the ICE ufrags of both ends.
 */
async function receivingConnection(page: Page, name: string) {
  return page.evaluate((n: string) => {
    const tile = [...document.querySelectorAll('[data-testid=tile][data-local="false"]')].find((t) =>
      (t.querySelector('.tile-name')?.textContent ?? '').includes(n),
    );
    const v = tile?.querySelector('video');
    const stream = v && v.srcObject instanceof MediaStream ? v.srcObject : null;
    const ids = new Set((stream?.getVideoTracks() ?? []).map((t) => t.id));
    const index = window.__pcs.findIndex((pc) => pc.getReceivers().some((r) => ids.has(r.track.id)));
    const pc = index >= 0 ? window.__pcs[index] : null;
    return {
      pcs: window.__pcs.length,
      index,
      state: pc?.connectionState ?? null,
      ufrag: /a=ice-ufrag:(\S+)/.exec(pc?.localDescription?.sdp ?? '')?.[1] ?? '',
      remoteUfrag: /a=ice-ufrag:(\S+)/.exec(pc?.remoteDescription?.sdp ?? '')?.[1] ?? '',
    };
  }, name);
}

/** Samples the level meter in the page every 40 ms until it was seen both at ~0 and clearly above 0. */
async function expectMeterMoves(page: Page): Promise<void> {
  const meter = page.getByRole('meter', { name: /microphone level/i });
  await expect(meter, 'the lobby has a "Microphone level" meter').toBeVisible();
  await expect(meter, 'the meter is data-testid=mic-level').toHaveAttribute('data-testid', 'mic-level');
  await page.evaluate(() => {
    const w = window as any;
    w.__micLevels = [] as (string | null)[];
    w.__micTimer = setInterval(() => {
      w.__micLevels.push(document.querySelector('[data-testid=mic-level]')?.getAttribute('aria-valuenow') ?? null);
    }, 40);
  });
  try {
    await expect
      .poll(
        async () => {
          const raw = await page.evaluate(() => (window as any).__micLevels as (string | null)[]);
          const bad = raw.filter((v) => v === null || !/^\d+$/.test(v) || Number(v) > 100);
          const nums = raw.filter((v) => v !== null && /^\d+$/.test(v)).map(Number);
          return {
            notAnIntegerFrom0To100: [...new Set(bad)].slice(0, 5),
            sawQuiet: nums.some((v) => v <= 2),
            sawSound: nums.some((v) => v > 5),
            seen: `${nums.length} samples, ${Math.min(...nums)}..${Math.max(...nums)}`,
          };
        },
        {
          message: 'the fake mic beeps: aria-valuenow (an integer 0..100) should be seen both at ~0 (<= 2) and clearly above it (> 5)',
          timeout: 10_000,
          intervals: [500],
        },
      )
      .toMatchObject({ notAnIntegerFrom0To100: [], sawQuiet: true, sawSound: true });
  } finally {
    await page.evaluate(() => clearInterval((window as any).__micTimer)).catch(() => {});
  }
}

test('the lobby previews the camera, meters the mic and prefills the name; the chosen camera is sent and remembered', async ({ browser, room }) => {
  test.setTimeout(120_000);
  const bob = await openParticipant(browser, room, 'Bob', { url: callUrl(room) });
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room), lobby: true });
  const page = ada.page;

  await expect(lobby(page), 'the lobby is shown before joining').toBeVisible();
  await expect(localTiles(page), 'not in the call yet: no local tile').toHaveCount(0);
  await expect(remoteTile(bob.page, 'Ada'), 'Ada is still in the lobby: Bob has no tile of her').toHaveCount(0);
  await expectVideoPlaying(page.getByTestId('lobby-preview'), 'the lobby preview');
  await expectMeterMoves(page);
  const name = lobby(page).getByRole('textbox', { name: /^your name$/i });
  await expect(name, 'the "Your name" field is the name-input').toHaveAttribute('data-testid', 'name-input');
  await expect(name, 'the name is prefilled from localStorage meshcast.name').toHaveValue('Ada');

  const camera = select(lobby(page), 'Camera');
  await expect(camera, 'the lobby has a Camera select').toBeVisible();
  await expect(select(lobby(page), 'Microphone'), 'the lobby has a Microphone select').toBeVisible();
  await expect(select(lobby(page), 'Speaker'), 'Chromium has setSinkId: the lobby has a Speaker select').toBeVisible();
  await optionValue(camera, CAMERA_A);
  const cameraB = await optionValue(camera, CAMERA_B);

  // Picking the other camera switches the preview at once.
  await camera.selectOption({ label: CAMERA_B });
  await expectVideoPlaying(page.getByTestId('lobby-preview'), 'after choosing the second camera, the lobby preview', CAMERA_B);

  await joinFromLobby(page);
  await expect(lobby(page), 'joined: the lobby is gone').toBeHidden();
  await expectMediaFlowing(bob, ['Ada']);
  await expectSendsCamera(ada, CAMERA_B, 1);
  await expectVideoPlaying(localTiles(page).locator('video'), "Ada's own tile", CAMERA_B);
  expect(await page.evaluate(() => localStorage.getItem('meshcast.camera')), 'the chosen camera is remembered (its deviceId)').toBe(cameraB);

  // After a reload the lobby comes back with the same camera chosen, and Join is one click.
  await page.reload();
  await expect(lobby(page), 'after a reload the lobby is shown again').toBeVisible();
  await expect(select(lobby(page), 'Camera'), 'after a reload the remembered camera is preselected').toHaveValue(cameraB);
  await expectVideoPlaying(page.getByTestId('lobby-preview'), 'after a reload, the lobby preview', CAMERA_B);
  await joinFromLobby(page);
  await expect(lobby(page), 'one click on Join: the lobby is gone').toBeHidden();
  await expect(page.getByTestId('name-dialog'), 'one click on Join: no name is asked').toHaveCount(0);
  await expect(localTiles(page), 'one click on Join: Ada is in the call').toHaveCount(1);
  await expectMediaFlowing(bob, ['Ada']);
  await expectSendsCamera(ada, CAMERA_B, 1);
});

test('what the lobby toggles say is what the call starts with', async ({ browser, room }) => {
  const vic = await openViewer(browser, room, 'Vic', { url: watchUrl(room) });
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room), lobby: true });
  const page = ada.page;
  await expect(lobby(page), 'the lobby is shown before joining').toBeVisible();
  const cam = page.getByTestId('toggle-camera');
  const mic = page.getByTestId('toggle-mic');
  await expect(cam, 'the lobby camera toggle starts on').toHaveAccessibleName(/^turn camera off \(v\)$/i);
  await expect(mic, 'the lobby mic toggle starts on').toHaveAccessibleName(/^mute microphone \(m\)$/i);
  await cam.click();
  await mic.click();
  await expect(cam, 'lobby: the camera toggle shows off').toHaveAttribute('aria-pressed', 'true');
  await expect(cam, 'lobby: the camera toggle offers to turn it on').toHaveAccessibleName(/^turn camera on \(v\)$/i);
  await expect(mic, 'lobby: the mic toggle shows muted').toHaveAttribute('aria-pressed', 'true');
  await expect(mic, 'lobby: the mic toggle offers to unmute').toHaveAccessibleName(/^unmute microphone \(m\)$/i);

  await joinFromLobby(page);
  await expect(cam, 'in the call the camera is still off').toHaveAttribute('aria-pressed', 'true');
  await expect(mic, 'in the call the mic is still muted').toHaveAttribute('aria-pressed', 'true');
  await expect(localTiles(page).getByTestId('badge-camera-off'), "Ada's own tile shows camera off").toBeVisible();
  const tile = remoteTile(vic.page, 'Ada');
  await expect(tile, 'Vic gets a tile of Ada').toHaveCount(1, { timeout: 20_000 });
  await expect(tile.getByTestId('badge-camera-off'), 'Vic sees Ada joined with the camera off').toBeVisible({ timeout: 10_000 });
  await expect(tile.getByTestId('badge-muted'), 'Vic sees Ada joined muted').toBeVisible({ timeout: 10_000 });

  // Turning them on in the call really starts her camera and mic.
  await cam.click();
  await mic.click();
  await expect(tile.getByTestId('badge-camera-off'), 'camera turned on in the call: the badge goes').toBeHidden({ timeout: 10_000 });
  await expect(tile.getByTestId('badge-muted'), 'mic unmuted in the call: the badge goes').toBeHidden({ timeout: 10_000 });
  await expectMediaFlowing(vic, ['Ada']);
});

test('switching the camera mid-call in Settings keeps the same connection playing and sends the new camera; a camera that goes away is replaced', async ({ browser, room }) => {
  test.setTimeout(120_000);
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room) });
  const vic = await openViewer(browser, room, 'Vic', { url: watchUrl(room) });
  await expectMediaFlowing(vic, ['Ada']);
  await expect(lobby(vic.page), '/watch never shows the lobby').toHaveCount(0);
  expect(await vic.page.evaluate(() => window.__gumCalls), '/watch never asks for a camera or mic').toBe(0);

  await expect.poll(async () => (await outbound(ada.page)).length, { message: 'Ada has one outbound connection (to Vic)' }).toBe(1);
  const [from] = (await outbound(ada.page))[0].videoLabels;
  const to = from === CAMERA_B ? CAMERA_A : CAMERA_B;
  const adaBefore = await outbound(ada.page);
  const adaPcsBefore = await ada.page.evaluate(() => window.__pcs.length);
  const vicBefore = await receivingConnection(vic.page, 'Ada');
  expect(vicBefore.index, "Vic's connection carrying Ada's camera tile is found by track id").toBeGreaterThanOrEqual(0);

  await ada.page.getByRole('button', { name: /^settings$/i }).click();
  const dialog = ada.page.getByRole('dialog', { name: /^settings$/i });
  await expect(dialog, 'Settings opens a dialog').toBeVisible();
  await expect(dialog, 'the Settings dialog is data-testid=settings-dialog').toHaveAttribute('data-testid', 'settings-dialog');
  await expect(select(dialog, 'Microphone'), 'Settings has a Microphone select').toBeVisible();
  await expect(select(dialog, 'Speaker'), 'Settings has a Speaker select').toBeVisible();
  const camera = select(dialog, 'Camera');
  const toId = await optionValue(camera, to);
  // The longest stretch without a new decoded frame at Vic, over 4 s around
  // the switch (printed as a metric: a number, not a timed assertion).
  const longestGap = vic.page.evaluate(async (index: number) => {
    const pc = window.__pcs[index];
    let last = -1;
    let changedAt = performance.now();
    let gap = 0;
    const end = performance.now() + 4_000;
    while (performance.now() < end) {
      let frames = 0;
      (await pc.getStats()).forEach((s: any) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
      });
      const now = performance.now();
      if (frames !== last) {
        if (last >= 0) gap = Math.max(gap, now - changedAt);
        changedAt = now;
        last = frames;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return Math.round(Math.max(gap, performance.now() - changedAt));
  }, vicBefore.index);
  await camera.selectOption({ label: to });

  await expectSendsCamera(ada, to, 1);
  await expectVideoPlaying(localTiles(ada.page).locator('video'), "after the switch, Ada's own tile", to);
  // Frames of the new camera keep being decoded on the same connection.
  const decoded = async () => (await pageMedia(vic.page)).pcs[vicBefore.index]?.framesDecoded ?? -1;
  const atSwitch = await decoded();
  await expect
    .poll(decoded, { message: `Vic's connection ${vicBefore.index} keeps decoding Ada's video after the switch (from ${atSwitch})`, timeout: 15_000 })
    .toBeGreaterThan(atSwitch + 10);
  await expectMediaFlowing(vic, ['Ada']);
  metric('camera_switch_longest_frame_gap_ms', await longestGap);
  expect(await receivingConnection(vic.page, 'Ada'), "Vic: the same RTCPeerConnection carries Ada's tile, none added, no ICE restart").toEqual(vicBefore);
  expect(await ada.page.evaluate(() => window.__pcs.length), 'Ada made no new RTCPeerConnection').toBe(adaPcsBefore);
  expect(
    (await outbound(ada.page)).map(({ index, ufrag, remoteUfrag }) => ({ index, ufrag, remoteUfrag })),
    "Ada: the same outbound connection, same ICE ufrags (no ICE restart)",
  ).toEqual(adaBefore.map(({ index, ufrag, remoteUfrag }) => ({ index, ufrag, remoteUfrag })));

  // Close closes it; reopened, it shows the camera in use; Escape closes it too.
  await dialog.getByRole('button', { name: /^close$/i }).click();
  await expect(dialog, 'Close closes the Settings dialog').toBeHidden();
  await ada.page.getByRole('button', { name: /^settings$/i }).click();
  await expect(dialog, 'Settings opens again').toBeVisible();
  await expect(select(dialog, 'Camera'), 'reopened, Settings shows the camera in use').toHaveValue(toId);
  await dialog.getByRole('button', { name: /^close$/i }).focus();
  await ada.page.keyboard.press('Escape');
  await expect(dialog, 'Escape closes the Settings dialog').toBeHidden();

  // The camera in use goes away (as when unplugged: its track ends): the
  // call falls back to another camera on the same connection and says so.
  await ada.page.evaluate(() => {
    const v = document.querySelector<HTMLVideoElement>('[data-testid=tile][data-local="true"] video');
    const t = (v?.srcObject as MediaStream).getVideoTracks()[0];
    t.stop();
    t.dispatchEvent(new Event('ended'));
  });
  await expect(ada.page.getByTestId('notice'), 'Ada is told her camera stopped and which one took over').toContainText(
    /camera stopped working\. Switched to fake_device_\d/,
  );
  await expect
    .poll(async () => (await outbound(ada.page)).map((o) => o.videoLabels), { message: 'Ada sends another camera (one video track)' })
    .not.toEqual([[to]]);
  expect((await outbound(ada.page)).map((o) => o.videoLabels.length), 'still one video sender').toEqual([1]);
  expect(await ada.page.evaluate(() => window.__pcs.length), 'still no new RTCPeerConnection').toBe(adaPcsBefore);
});

test('camera denied in the lobby: the error is shown, and "Join without camera" watches the others', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room) });
  // The shared browser answers every prompt with "allow"; this one denies.
  const denyingBrowser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: DENIED_ARGS, headless: true });
  try {
    const den = await openParticipant(denyingBrowser, room, 'Den', { url: callUrl(room), contextOptions: { permissions: [] }, lobby: true });
    const page = den.page;
    await expect(lobby(page), 'the lobby is shown').toBeVisible();
    const error = page.getByTestId('media-error');
    await expect(error, 'camera denied: the lobby shows the media error').toBeVisible();
    await expect(error, 'the media error is role=alert').toHaveAttribute('role', 'alert');
    await expect(error, 'the media error says something (a sentence)').toHaveText(/\w{3,}.*\w{3,}/);
    const retry = page.getByRole('button', { name: /^try again$/i });
    const joinWithout = page.getByRole('button', { name: /^join without camera$/i });
    await expect(retry, 'a "Try again" button (retry-media)').toHaveAttribute('data-testid', 'retry-media');
    await expect(joinWithout, 'a "Join without camera" button').toHaveAttribute('data-testid', 'join-without-camera');

    const calls = await page.evaluate(() => window.__gumCalls);
    await retry.click();
    await expect.poll(() => page.evaluate(() => window.__gumCalls), { message: 'Try again asks for the camera again' }).toBeGreaterThan(calls);
    await expect(error, 'still denied: the error stays').toBeVisible();

    const beforeJoining = await page.evaluate(() => window.__gumCalls);
    await joinWithout.click();
    await expect(lobby(page), 'joined without camera: the lobby is gone').toBeHidden();
    await expect(error, 'joined without camera: the error is gone').toBeHidden();
    await expectMediaFlowing(den, ['Ada']);
    await expect(localTiles(page), 'joined without camera: no own tile').toHaveCount(0);
    expect(await page.evaluate(() => window.__gumCalls), 'joining without camera does not ask for it again').toBeLessThanOrEqual(beforeJoining);
    await expect(remoteTiles(ada.page), 'Ada gets no tile for someone who only watches').toHaveCount(0);
  } finally {
    await denyingBrowser.close();
  }
});

/** Nothing scrolls sideways, the controls are on screen, Join is fully in the viewport, and the preview shows a picture. */
async function lobbyLayoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const vw = document.documentElement.clientWidth;
    const vh = document.documentElement.clientHeight;
    if (document.documentElement.scrollWidth > vw + 1) problems.push(`page scrolls sideways: scrollWidth ${document.documentElement.scrollWidth} > ${vw}`);
    const lobbyEl = document.querySelector('[data-testid=lobby]');
    if (!lobbyEl) return [...problems, 'no lobby'];
    lobbyEl.querySelectorAll('button, select, input, video, [role=meter]').forEach((el) => {
      const r = el.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) return; // hidden or visually hidden
      if (r.left < -1 || r.right > vw + 1) problems.push(`${el.tagName.toLowerCase()} ${el.getAttribute('data-testid') ?? el.getAttribute('aria-label') ?? ''} sticks out horizontally: ${r.left}..${r.right} of ${vw}`);
    });
    const join = document.querySelector('[data-testid=join]');
    if (!join) problems.push('no Join button');
    else {
      const r = join.getBoundingClientRect();
      if (r.width < 40 || r.height < 24) problems.push(`Join button is only ${r.width}x${r.height}`);
      if (r.left < 0 || r.top < 0 || r.right > vw + 1 || r.bottom > vh + 1) {
        problems.push(`Join button is not within the ${vw}x${vh} viewport: ${r.left},${r.top}..${r.right},${r.bottom}`);
      }
    }
    const v = document.querySelector<HTMLVideoElement>('[data-testid=lobby-preview]');
    if (!v) problems.push('no lobby preview');
    else {
      const r = v.getBoundingClientRect();
      if (r.width < 120 || r.height < 80) problems.push(`lobby preview is only ${r.width}x${r.height}`);
      if (v.videoWidth === 0) problems.push('lobby preview has no frame');
      else {
        const [min, max] = window.__lumaRange(v);
        if (max - min < 10) problems.push(`lobby preview looks flat (luma ${min}..${max})`);
      }
    }
    return problems;
  });
}

test('screenshots of the lobby, wide and narrow', async ({ browser, room }) => {
  const dir = ensureArtifactsDir();
  const ada = await openParticipant(browser, room, 'Ada', { url: callUrl(room), lobby: true, viewport: { width: 1280, height: 800 } });
  await expect(lobby(ada.page), 'the lobby is shown').toBeVisible();
  await expectVideoPlaying(ada.page.getByTestId('lobby-preview'), 'the lobby preview');
  for (const [file, viewport] of [
    ['lobby-wide.png', { width: 1280, height: 800 }],
    ['lobby-narrow.png', { width: 390, height: 844 }],
  ] as const) {
    await ada.page.setViewportSize(viewport);
    await ada.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await expect.poll(() => lobbyLayoutProblems(ada.page), { message: `lobby layout at ${viewport.width}x${viewport.height}` }).toEqual([]);
    await ada.page.screenshot({ path: path.join(dir, file) });
    console.log(`screenshot: ${path.join(dir, file)}`);
  }
});
