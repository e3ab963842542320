// Who is speaking, the active speaker in Spotlight, Pin beating it, and the
// connection details panel. One participant's microphone is a speech-like
// file (syllables with a gliding pitch: the browser's noise suppression
// removes a steady tone), the others' is silence; each needs a browser of
// its own, since the fake microphone is a launch flag.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from '@playwright/test';
import { CHROMIUM_PATH, PARTICIPANT_ARGS } from '../chromium';
import { ensureArtifactsDir, expect, openParticipant, remoteTile, test, type Peer } from './helpers';

const RATE = 48_000;

/** A 16-bit mono 48 kHz PCM WAV of `samples` (-1..1). */
function wav(file: string, samples: Float32Array): string {
  const data = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32_767), i * 2));
  const head = Buffer.alloc(44);
  head.write('RIFF', 0);
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVEfmt ', 8);
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(RATE, 24);
  head.writeUInt32LE(RATE * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36);
  head.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([head, data]));
  return file;
}

/** Six seconds of "speech": syllables of 150-300 ms with pauses between,
 *  each a harmonic voice whose pitch glides, under a smooth envelope. */
function speech(): Float32Array {
  const out = new Float32Array(RATE * 6);
  let t = 0;
  let n = 0;
  while (t < out.length) {
    const len = Math.floor(RATE * (0.15 + 0.15 * ((n * 7) % 5) / 4));
    const f0 = 110 + ((n * 37) % 90);
    const glide = ((n % 3) - 1) * 40;
    let phase = 0;
    for (let i = 0; i < len && t + i < out.length; i++) {
      const x = i / len;
      const f = f0 + glide * x;
      phase += (2 * Math.PI * f) / RATE;
      let v = 0;
      for (let k = 1; k <= 12; k++) v += Math.sin(k * phase) / k;
      out[t + i] = 0.35 * Math.sin(Math.PI * x) ** 2 * v;
    }
    t += len + Math.floor(RATE * (0.08 + 0.12 * ((n * 3) % 4) / 3));
    n++;
  }
  return out;
}

async function micBrowser(file: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...PARTICIPANT_ARGS, `--use-file-for-fake-audio-capture=${file}`],
  });
}

const low = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;

async function shot(page: Page, file: string): Promise<void> {
  const at = path.join(ensureArtifactsDir(), file);
  await page.screenshot({ path: at });
  console.log(`screenshot: ${at}`);
}

test('the speaker gets the ring and the spotlight; a pin beats it; details show RTT and bitrate', async ({ room }, testInfo) => {
  test.setTimeout(150_000);
  const dir = testInfo.outputPath();
  fs.mkdirSync(dir, { recursive: true });
  const quiet = await micBrowser(wav(path.join(dir, 'silence.wav'), new Float32Array(RATE)));
  const loud = await micBrowser(wav(path.join(dir, 'speech.wav'), speech()));
  try {
    // Bob and Cyd are silent; Ada (who speaks) joins last, so on Bob's
    // page she is not the first tile.
    const bob = await openParticipant(quiet, room, 'Bob', { url: low(room) });
    const cyd = await openParticipant(quiet, room, 'Cyd', { url: low(room) });
    await expect(remoteTile(bob.page, 'Cyd')).toHaveAttribute('data-state', 'connected', { timeout: 30_000 });
    const ada = await openParticipant(loud, room, 'Ada', { url: low(room) });
    for (const p of [bob, cyd]) {
      await expect(remoteTile(p.page, 'Ada'), `${p.name} hears Ada speaking`).toHaveAttribute('data-speaking', 'true', { timeout: 30_000 });
    }
    await expect(ada.page.locator('[data-testid=tile][data-local="true"]'), 'Ada sees her own ring').toHaveAttribute('data-speaking', 'true');
    // Silence never rings, over a few seconds of Ada's speech.
    for (let i = 0; i < 6; i++) {
      await expect(remoteTile(bob.page, 'Cyd')).not.toHaveAttribute('data-speaking', 'true');
      await expect(remoteTile(ada.page, 'Bob')).not.toHaveAttribute('data-speaking', 'true');
      await bob.page.waitForTimeout(500);
    }

    // Spotlight: Ada, the active speaker, is the big tile.
    await bob.page.getByRole('button', { name: 'Spotlight', exact: true }).click();
    await expect(remoteTile(bob.page, 'Ada')).toHaveAttribute('data-spotlight', 'true');
    await expect(remoteTile(bob.page, 'Cyd')).toHaveAttribute('data-spotlight', 'false');
    const big = await remoteTile(bob.page, 'Ada').boundingBox();
    const small = await remoteTile(bob.page, 'Cyd').boundingBox();
    expect(big!.width * big!.height, 'the spotlight is larger than a strip tile').toBeGreaterThan(4 * small!.width * small!.height);
    await shot(bob.page, 'spotlight-1280x800.png');

    // A pin beats the speaker; unpinned, the speaker is back.
    const cydTile = remoteTile(bob.page, 'Cyd');
    await cydTile.hover();
    await cydTile.getByRole('button', { name: 'Pin', exact: true }).click();
    await expect(cydTile).toHaveAttribute('data-spotlight', 'true');
    await expect(remoteTile(bob.page, 'Ada')).toHaveAttribute('data-spotlight', 'false');
    await expect(remoteTile(bob.page, 'Ada'), 'Ada still speaks').toHaveAttribute('data-speaking', 'true');
    await cydTile.getByRole('button', { name: 'Unpin', exact: true }).click();
    await expect(remoteTile(bob.page, 'Ada')).toHaveAttribute('data-spotlight', 'true');

    // Grid again; the details panel of Ada's tile, from the keyboard.
    await bob.page.getByRole('button', { name: 'Grid', exact: true }).click();
    await expect(remoteTile(bob.page, 'Ada')).toHaveAttribute('data-spotlight', 'false');
    const adaTile = remoteTile(bob.page, 'Ada');
    await adaTile.getByRole('button', { name: 'Connection details', exact: true }).focus();
    await bob.page.keyboard.press('Enter');
    const details = adaTile.getByTestId('details');
    await expect(details).toBeVisible();
    await expect(details, 'the round trip (0 ms on loopback is fine)').toContainText(/Round trip: \d+ ms/);
    await expect(details, 'a non-zero bitrate').toContainText(/Bitrate: [1-9]\d* kbit\/s/);
    await expect(details).toContainText(/Path: Direct/);
    await expect(details).toContainText(/Codec: \w+/);
    console.log(`details on Bob's page: ${(await details.innerText()).replace(/\n/g, ' | ')}`);
    await shot(bob.page, 'grid-details-1280x800.png');

    // Full screen works on a tile (and Escape-free: the same button exits).
    await adaTile.getByRole('button', { name: 'Full screen', exact: true }).click();
    await expect.poll(() => bob.page.evaluate(() => document.fullscreenElement?.getAttribute('data-peer') ?? null)).not.toBeNull();
    await adaTile.getByRole('button', { name: 'Full screen', exact: true }).click();
    await expect.poll(() => bob.page.evaluate(() => document.fullscreenElement === null)).toBe(true);

    // A phone: the grid and the spotlight without overlap.
    await cyd.page.setViewportSize({ width: 390, height: 844 });
    await shot(cyd.page, 'grid-390x844.png');
    await cyd.page.getByRole('button', { name: 'Spotlight', exact: true }).click();
    await expect(remoteTile(cyd.page, 'Ada')).toHaveAttribute('data-spotlight', 'true');
    await expectNoOverlap(cyd);
    await shot(cyd.page, 'spotlight-390x844.png');
    const adaOnCyd = remoteTile(cyd.page, 'Ada');
    await adaOnCyd.getByRole('button', { name: 'Connection details', exact: true }).click();
    await expect(adaOnCyd.getByTestId('details')).toContainText(/Bitrate: [1-9]/);
    await shot(cyd.page, 'details-390x844.png');

    // A pinned peer who leaves takes the pin along: the speaker is back.
    const cydOnBob = remoteTile(bob.page, 'Cyd');
    await cydOnBob.hover();
    await cydOnBob.getByRole('button', { name: 'Pin', exact: true }).click();
    await expect(cydOnBob).toHaveAttribute('data-spotlight', 'true');
    await cyd.context.close();
    await expect(remoteTile(bob.page, 'Ada'), 'Cyd left: Ada, speaking, is the spotlight again').toHaveAttribute('data-spotlight', 'true');
  } finally {
    await Promise.all([quiet.close(), loud.close()]);
  }
});

/** No two tiles of the page cover each other. */
async function expectNoOverlap(p: Peer): Promise<void> {
  const boxes = await p.page.locator('[data-testid=tile]').evaluateAll((els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { x: r.x, y: r.y, w: r.width, h: r.height };
    }),
  );
  const overlaps = boxes.flatMap((a, i) =>
    boxes.slice(i + 1).filter((b) => a.x < b.x + b.w - 1 && b.x < a.x + a.w - 1 && a.y < b.y + b.h - 1 && b.y < a.y + a.h - 1),
  );
  expect(overlaps, `${p.name}: tiles do not overlap`).toEqual([]);
}
