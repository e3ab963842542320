// Shared fixtures and probes for the end-to-end tests.
//
// Every context gets PROBE_SCRIPT, which records each RTCPeerConnection the
// app creates (window.__pcs) and counts getUserMedia calls (window.__gumCalls).
// Media assertions read WebRTC stats through it and tie each inbound stream to
// its tile by track id, so "Bob's tile shows video" means frames from Bob's
// track keep being decoded, not that some <video> exists.
import { test as base, expect, type Browser, type BrowserContext, type Locator, type Page } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';

declare global {
  interface Window {
    __meshcastProbe?: boolean;
    __pcs: RTCPeerConnection[];
    __gumCalls: number;
    __gumStreams: MediaStream[];
  }
}

/** Where screenshots and the relay log go (gitignored). */
export const ARTIFACTS_DIR = path.resolve(__dirname, '..', 'artifacts');

/** Runs before any page script in every document of a probed context. */
export function PROBE_SCRIPT(): void {
  if (window.__meshcastProbe) return;
  window.__meshcastProbe = true;
  window.__pcs = [];
  window.__gumCalls = 0;
  window.__gumStreams = [];

  const Original = window.RTCPeerConnection;
  if (typeof Original === 'function') {
    // A plain function sharing the original prototype: `new` returns the real
    // connection (so it is a genuine RTCPeerConnection) and `instanceof`
    // against either constructor holds.
    const Recorded = function RTCPeerConnection(this: unknown, ...args: unknown[]) {
      if (!new.target) {
        throw new TypeError("Failed to construct 'RTCPeerConnection': Please use the 'new' operator");
      }
      const pc = new (Original as any)(...args) as RTCPeerConnection;
      window.__pcs.push(pc);
      return pc;
    } as unknown as typeof RTCPeerConnection;
    Recorded.prototype = Original.prototype;
    Object.setPrototypeOf(Recorded, Original); // statics, e.g. generateCertificate
    window.RTCPeerConnection = Recorded;
    if ((window as any).webkitRTCPeerConnection) (window as any).webkitRTCPeerConnection = Recorded;
  }

  const devices = navigator.mediaDevices;
  if (devices && typeof devices.getUserMedia === 'function') {
    const getUserMedia = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (constraints?: MediaStreamConstraints) => {
      window.__gumCalls += 1;
      return getUserMedia(constraints).then((stream) => {
        window.__gumStreams.push(stream);
        return stream;
      });
    };
  }
}

// ---------------------------------------------------------------- opening pages

export interface Peer {
  name: string;
  room: string;
  role: 'participant' | 'viewer';
  context: BrowserContext;
  page: Page;
  /** Page errors and console errors/warnings, printed when a test fails. */
  log: string[];
}

export interface OpenOptions {
  viewport?: { width: number; height: number };
  /** Context options, e.g. `permissions: []`. */
  contextOptions?: Parameters<Browser['newContext']>[0];
  /** Leave localStorage['meshcast.name'] unset (the name dialog appears). */
  noName?: boolean;
  /** Path and query to open instead of the default for the role. */
  url?: string;
}

const openedPeers: Peer[] = [];

/** A new context with the probe (and the display name preset), not yet navigated. */
export async function newPeer(
  browser: Browser,
  room: string,
  name: string,
  role: Peer['role'],
  opts: OpenOptions = {},
): Promise<Peer> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    ...opts.contextOptions,
  });
  await context.addInitScript(PROBE_SCRIPT);
  if (!opts.noName) {
    await context.addInitScript((n: string) => {
      try {
        localStorage.setItem('meshcast.name', n);
      } catch {
        // about:blank has no storage
      }
    }, name);
  }
  const page = await context.newPage();
  const peer: Peer = { name, room, role, context, page, log: [] };
  page.on('pageerror', (e) => peer.log.push(`[${name}] pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') peer.log.push(`[${name}] console.${m.type()}: ${m.text()}`);
  });
  page.on('crash', () => peer.log.push(`[${name}] PAGE CRASHED`));
  openedPeers.push(peer);
  return peer;
}

/** A participant (camera and mic) in `room`: `/?room=ROOM` with the name preset. */
export async function openParticipant(browser: Browser, room: string, name: string, opts: OpenOptions = {}): Promise<Peer> {
  const peer = await newPeer(browser, room, name, 'participant', opts);
  await peer.page.goto(opts.url ?? `/?room=${encodeURIComponent(room)}`);
  return peer;
}

/** A viewer (receives only): `/watch?room=ROOM`. */
export async function openViewer(browser: Browser, room: string, name: string, opts: OpenOptions = {}): Promise<Peer> {
  const peer = await newPeer(browser, room, name, 'viewer', opts);
  await peer.page.goto(opts.url ?? `/watch?room=${encodeURIComponent(room)}`);
  return peer;
}

/** A room id unique to this test run: `[A-Za-z0-9_-]`, at most 50 chars (room ids may have 64: room for a suffix). */
export function uniqueRoom(label: string): string {
  const slug = label.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24) || 'room';
  const salt = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  return `e2e-${slug}-${salt}`.slice(0, 50);
}

/**
 * The test fixture: `room` is a fresh room id, and after every test every
 * context opened from the shared browser is closed (so nothing keeps
 * encoding into the next test), and on failure every page's errors are
 * printed and attached.
 */
export const test = base.extend<{ room: string; _cleanup: void }>({
  room: async ({}, use, testInfo) => {
    await use(uniqueRoom(testInfo.title));
  },
  _cleanup: [
    async ({ browser }, use, testInfo) => {
      openedPeers.length = 0;
      await use();
      const logs = openedPeers.flatMap((p) => p.log);
      if (testInfo.status !== testInfo.expectedStatus && logs.length > 0) {
        const text = logs.join('\n');
        console.log(`--- page errors and warnings (${testInfo.title}) ---\n${text}`);
        await testInfo.attach('page-log.txt', { body: text, contentType: 'text/plain' });
      }
      await Promise.all(browser.contexts().map((c) => c.close().catch(() => {})));
      openedPeers.length = 0;
    },
    { auto: true },
  ],
});

export { expect };

// ---------------------------------------------------------------- locators

export function remoteTiles(page: Page): Locator {
  return page.locator('[data-testid=tile][data-local="false"]');
}

export function localTiles(page: Page): Locator {
  return page.locator('[data-testid=tile][data-local="true"]');
}

/** The remote tile whose `.tile-name` contains `name`. */
export function remoteTile(page: Page, name: string): Locator {
  return remoteTiles(page).filter({ has: page.locator('.tile-name', { hasText: name }) });
}

export async function expectConnected(peer: Peer): Promise<void> {
  await expect(peer.page.getByTestId('status'), `${peer.name}: status line should say Connected`).toHaveText(/\bConnected\b/, {
    timeout: 20_000,
  });
}

// ---------------------------------------------------------------- media stats

export interface TileMedia {
  peerId: string | null;
  name: string;
  state: string | null;
  /** Decoded frames of this tile's video track, from inbound-rtp matched by track id; null if no match. */
  framesDecoded: number | null;
  /** Frames the <video> element has presented (getVideoPlaybackQuality). */
  elementFrames: number;
  videoWidth: number;
  paused: boolean;
  hasSrcObject: boolean;
  videoTracks: string[];
  /** readyState of each audio track in the tile's srcObject. */
  audioTrackStates: string[];
  /** packetsReceived of this tile's audio track(s), matched by track id; null if no match. */
  audioPackets: number | null;
  /** Every audio track of the tile is played by some unmuted, playing media element. */
  audioAudible: boolean;
}

export interface PageMedia {
  tiles: TileMedia[];
  /** Per recorded RTCPeerConnection (closed ones included, with zero counts). */
  pcs: { state: string; framesDecoded: number; audioPackets: number }[];
  /** Sum of framesDecoded over all inbound video of the non-closed connections. */
  totalFramesDecoded: number;
  /** packetsReceived of every inbound audio stream of the non-closed connections, by track id. */
  audioPacketsByTrack: Record<string, number>;
  /** Ids of live audio tracks that some unmuted, playing <audio>/<video> plays. */
  audibleTrackIds: string[];
}

/** One snapshot of everything the page receives and shows. */
export async function pageMedia(page: Page): Promise<PageMedia> {
  return page.evaluate(async () => {
    const byTrack = new Map<string, any>();
    const pcs: { state: string; framesDecoded: number; audioPackets: number }[] = [];
    const audioPacketsByTrack: Record<string, number> = {};
    let totalFramesDecoded = 0;
    for (const pc of window.__pcs ?? []) {
      const info = { state: pc.connectionState, framesDecoded: 0, audioPackets: 0 };
      pcs.push(info);
      if (pc.connectionState === 'closed') continue;
      let report: RTCStatsReport;
      try {
        report = await pc.getStats();
      } catch {
        continue; // closed between the check and the call
      }
      report.forEach((s: any) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
        if (s.kind === 'video') {
          info.framesDecoded += s.framesDecoded ?? 0;
          totalFramesDecoded += s.framesDecoded ?? 0;
        } else if (s.kind === 'audio') {
          info.audioPackets += s.packetsReceived ?? 0;
          audioPacketsByTrack[s.trackIdentifier ?? `pc${pcs.length - 1}-${s.id}`] = s.packetsReceived ?? 0;
        }
      });
    }
    const audible = new Set<string>();
    document.querySelectorAll<HTMLMediaElement>('audio, video').forEach((el) => {
      const s = el.srcObject;
      if (!(s instanceof MediaStream) || el.muted || el.paused || el.volume === 0) return;
      s.getAudioTracks().forEach((t) => t.readyState === 'live' && audible.add(t.id));
    });
    const tiles = [...document.querySelectorAll('[data-testid=tile][data-local="false"]')].map((tile) => {
      const video = tile.querySelector('video');
      const stream = video && video.srcObject instanceof MediaStream ? video.srcObject : null;
      const vts = stream ? stream.getVideoTracks() : [];
      const ats = stream ? stream.getAudioTracks() : [];
      const decoded = vts.map((t) => byTrack.get(t.id)?.framesDecoded).filter((n) => typeof n === 'number');
      const packets = ats.map((t) => byTrack.get(t.id)?.packetsReceived).filter((n) => typeof n === 'number');
      return {
        peerId: tile.getAttribute('data-peer-id'),
        name: (tile.querySelector('.tile-name')?.textContent ?? '').trim(),
        state: tile.getAttribute('data-state'),
        framesDecoded: decoded.length ? decoded.reduce((a, b) => a + b, 0) : null,
        elementFrames: video?.getVideoPlaybackQuality?.().totalVideoFrames ?? 0,
        videoWidth: video?.videoWidth ?? 0,
        paused: video ? video.paused : true,
        hasSrcObject: !!stream,
        videoTracks: vts.map((t) => `${t.id}:${t.readyState}${t.enabled ? '' : ':disabled'}`),
        audioTrackStates: ats.map((t) => t.readyState),
        audioPackets: packets.length ? packets.reduce((a, b) => a + b, 0) : null,
        audioAudible: ats.every((t) => audible.has(t.id)),
      };
    });
    return { tiles, pcs, totalFramesDecoded, audioPacketsByTrack, audibleTrackIds: [...audible] };
  });
}

/** framesDecoded over all inbound video of the page's open connections, in total and per remote tile name. */
export async function framesDecoded(page: Page): Promise<{ total: number; byPeer: Record<string, number | null> }> {
  const m = await pageMedia(page);
  return {
    total: m.totalFramesDecoded,
    byPeer: Object.fromEntries(m.tiles.map((t) => [t.name || t.peerId || '?', t.framesDecoded])),
  };
}

export interface FlowOptions {
  /** Also require each broadcaster's audio to be live and arriving (default true). */
  audio?: boolean;
  /** Require exactly these remote tiles, no others (default true). */
  exact?: boolean;
  /** Milliseconds between the two samples that must show growth (default 1000). */
  window?: number;
  timeout?: number;
}

/** What is wrong with media from `names` on this page, comparing two samples `window` ms apart; [] if nothing. */
export async function mediaProblems(page: Page, names: string[], opts: FlowOptions = {}): Promise<string[]> {
  const { audio = true, exact = true, window = 1000 } = opts;
  const a = await pageMedia(page);
  await page.waitForTimeout(window);
  const b = await pageMedia(page);
  const problems: string[] = [];
  const find = (m: PageMedia, name: string) => m.tiles.filter((t) => t.name.includes(name));
  for (const name of names) {
    const [tb, ...extra] = find(b, name);
    const [ta] = find(a, name);
    if (!tb) {
      problems.push(`${name}: no remote tile (tiles: ${JSON.stringify(b.tiles.map((t) => t.name))})`);
      continue;
    }
    if (extra.length) problems.push(`${name}: ${extra.length + 1} remote tiles`);
    if (tb.state !== 'connected') problems.push(`${name}: tile data-state=${tb.state}, want connected`);
    if (!tb.hasSrcObject) {
      problems.push(`${name}: tile <video> has no MediaStream srcObject`);
      continue;
    }
    if (tb.paused) problems.push(`${name}: <video> is paused`);
    if (tb.videoWidth === 0) problems.push(`${name}: <video> has no video dimensions yet`);
    const grew = (x: number | null | undefined, y: number | null | undefined) => typeof x === 'number' && typeof y === 'number' && y > x;
    if (tb.framesDecoded !== null) {
      if (!ta || !grew(ta.framesDecoded, tb.framesDecoded)) {
        problems.push(`${name}: framesDecoded not growing (${ta?.framesDecoded} -> ${tb.framesDecoded} in ${window} ms)`);
      }
    } else if (!ta || !grew(ta.elementFrames, tb.elementFrames)) {
      // The tile's track matched no inbound-rtp (e.g. the app shows a clone):
      // fall back to frames the element itself presented.
      problems.push(
        `${name}: tile track ${JSON.stringify(tb.videoTracks)} matches no inbound-rtp video, and the element's ` +
          `presented frames did not grow (${ta?.elementFrames} -> ${tb.elementFrames})`,
      );
    }
    if (audio && tb.audioTrackStates.length > 0) {
      if (tb.audioTrackStates.some((s) => s !== 'live')) problems.push(`${name}: audio track states ${JSON.stringify(tb.audioTrackStates)}`);
      else if (!tb.audioAudible) problems.push(`${name}: the tile's audio is not played (its <video> is muted or paused, and no other element plays the track)`);
      if (tb.audioPackets !== null && !grew(ta?.audioPackets, tb.audioPackets)) {
        problems.push(`${name}: audio packetsReceived not growing (${ta?.audioPackets} -> ${tb.audioPackets})`);
      }
    }
  }
  if (audio) {
    // Tiles whose stream carries no audio track (the app may play audio in
    // an <audio> element of its own): count inbound audio streams that are
    // still receiving and that some unmuted, playing element plays.
    const silentTiles = names.filter((n) => {
      const t = find(b, n)[0];
      return t && t.hasSrcObject && t.audioTrackStates.length === 0;
    });
    if (silentTiles.length) {
      const played = new Set(b.audibleTrackIds);
      const growing = Object.entries(b.audioPacketsByTrack).filter(([k, v]) => played.has(k) && v > (a.audioPacketsByTrack[k] ?? Infinity)).length;
      const needed = names.length;
      if (growing < needed) {
        problems.push(
          `audio: ${silentTiles.join(', ')} have no audio track in their tile, and only ${growing} inbound audio ` +
            `stream(s) are played and have growing packetsReceived (need ${needed}): packets ${JSON.stringify(b.audioPacketsByTrack)}, ` +
            `played ${JSON.stringify(b.audibleTrackIds)}`,
        );
      }
    }
  }
  if (exact && b.tiles.length !== names.length) {
    problems.push(`want exactly ${names.length} remote tile(s) ${JSON.stringify(names)}, page shows ${JSON.stringify(b.tiles.map((t) => t.name))}`);
  }
  return problems;
}

/**
 * Waits until, on `peer`'s page, every one of `names` has exactly one remote
 * tile that is connected and whose video keeps decoding (and audio keeps
 * arriving), sampled over a window. Fails with the last list of problems.
 */
export async function expectMediaFlowing(peer: Peer, names: string[], opts: FlowOptions = {}): Promise<void> {
  await expect
    .poll(() => mediaProblems(peer.page, names, opts), {
      message: `${peer.name} (${peer.role}) should receive live video${opts.audio === false ? '' : ' and audio'} from ${names.join(', ')}`,
      timeout: opts.timeout ?? 40_000,
      intervals: [250, 500, 1000],
    })
    .toEqual([]);
}

/** The participant's own camera tile is there, playing, and makes no sound (no echo). */
export async function expectLocalPreview(peer: Peer): Promise<void> {
  const tile = localTiles(peer.page);
  await expect(tile, `${peer.name}: exactly one local tile`).toHaveCount(1);
  await expect
    .poll(
      () =>
        tile.evaluate((el) => {
          const v = el.querySelector('video');
          if (!v) return 'no <video> in the local tile';
          const stream = v.srcObject instanceof MediaStream ? v.srcObject : null;
          if (!stream) return 'local <video> has no MediaStream srcObject';
          if (v.paused) return 'local <video> is paused';
          if (v.videoWidth === 0) return 'local <video> has no video dimensions yet';
          if (!v.muted && stream.getAudioTracks().length > 0) return 'local <video> plays our own microphone (not muted)';
          return 'ok';
        }),
      { message: `${peer.name}: the local tile should play the camera`, timeout: 15_000 },
    )
    .toBe('ok');
}

/**
 * Waits until no remote tile named `name` is left on each page and returns
 * when (Date.now(), shared by all pages) it went, per page, polling every
 * 50 ms in the page itself. A page where it did not go within `timeout` gets
 * Infinity.
 */
export async function whenTileGone(pages: Peer[], name: string, timeout = 10_000): Promise<Record<string, number>> {
  const entries = await Promise.all(
    pages.map(async (p) => {
      try {
        const handle = await p.page.waitForFunction(
          (n: string) =>
            ![...document.querySelectorAll('[data-testid=tile][data-local="false"]')].some((t) =>
              (t.querySelector('.tile-name')?.textContent ?? '').includes(n),
            ) && Date.now(),
          name,
          { polling: 50, timeout },
        );
        return [p.name, (await handle.jsonValue()) as number] as const;
      } catch {
        return [p.name, Infinity] as const;
      }
    }),
  );
  return Object.fromEntries(entries);
}

/** `whenTileGone` as milliseconds after `since`. */
export async function timeUntilTileGone(pages: Peer[], name: string, since: number, timeout = 10_000): Promise<Record<string, number>> {
  const at = await whenTileGone(pages, name, timeout);
  return Object.fromEntries(Object.entries(at).map(([k, v]) => [k, v - since]));
}

/**
 * Clicks `[data-testid=TESTID]` and returns when (Date.now()) the click event
 * reached the page, stamped by a capture listener before the app's own
 * handler. Playwright's click() itself can take a second or two on a loaded
 * machine (actionability checks wait for animation frames), which must not
 * count against the app. Falls back to the time before click() if the page
 * is gone by then.
 */
export async function clickStamped(peer: Peer, testId: string): Promise<number> {
  const before = Date.now();
  await peer.page.evaluate((id: string) => {
    document.addEventListener(
      'click',
      (e) => {
        if ((e.target as Element | null)?.closest?.(`[data-testid="${id}"]`)) (window as any).__clickedAt = Date.now();
      },
      { capture: true },
    );
  }, testId);
  await peer.page.getByTestId(testId).click();
  const at = await peer.page.evaluate(() => (window as any).__clickedAt as number | undefined).catch(() => undefined);
  return typeof at === 'number' ? at : before;
}

/** Blurs whatever has focus, so keyboard shortcuts reach the page. */
export async function blur(page: Page): Promise<void> {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur?.());
}

export function ensureArtifactsDir(): string {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return ARTIFACTS_DIR;
}

/** Prints a line the CI log can be grepped for: `METRIC key=value`. */
export function metric(key: string, value: number): void {
  console.log(`METRIC ${key}=${Math.round(value)}`);
  test.info().annotations.push({ type: 'metric', description: `${key}=${Math.round(value)}` });
}
