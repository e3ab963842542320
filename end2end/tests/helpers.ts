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
    /** Creation and connectionState changes of each recorded connection, by index in __pcs: [Date.now(), state]. */
    __pcHistory: [number, string][][];
    __sockets: WebSocket[];
    __gumCalls: number;
    /** Network checks the page ran (their connections are not in __pcs). */
    __networkChecks?: number;
    __gumStreams: MediaStream[];
    /** Listeners on RTCPeerConnection and WebSocket instances (see ListenerStats). */
    __listenerStats: () => ListenerStats;
    /** Darkest and brightest luma of the video's current frame, drawn small (a flat picture has max - min < 10). */
    __lumaRange: (v: HTMLVideoElement) => [number, number];
  }
}

/** Event listeners the page has on RTCPeerConnection ('pc') and WebSocket ('ws') instances. */
export interface ListenerKindStats {
  /** Instances that ever had a listener. */
  targets: number;
  /** Instances not closed (pc: connectionState != closed; ws: CONNECTING or OPEN). */
  liveTargets: number;
  /** Listeners registered on instances that are not closed. */
  onLive: number;
  /** Listeners still registered on closed instances (the app forgot to remove them). */
  onClosed: number;
  /** addEventListener minus removeEventListener calls that took effect, over the page's life. */
  net: number;
  adds: number;
  removes: number;
  /** Listeners added with `once` or `signal` (they can go without removeEventListener: not tracked). */
  untracked: number;
}
export interface ListenerStats {
  pc: ListenerKindStats;
  ws: ListenerKindStats;
}

/** Where screenshots and the relay log go (gitignored). */
export const ARTIFACTS_DIR = path.resolve(__dirname, '..', 'artifacts');

/** Runs before any page script in every document of a probed context. */
export function PROBE_SCRIPT(): void {
  if (window.__meshcastProbe) return;
  window.__meshcastProbe = true;
  window.__pcs = [];
  window.__pcHistory = [];
  window.__sockets = [];
  window.__gumCalls = 0;
  window.__gumStreams = [];

  // The probe's own listeners go through the original method, uncounted.
  const originalAdd = EventTarget.prototype.addEventListener;
  const originalRemove = EventTarget.prototype.removeEventListener;

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
      const history: [number, string][] = [[Date.now(), 'created']];
      window.__pcs.push(pc);
      window.__pcHistory.push(history);
      originalAdd.call(pc, 'connectionstatechange', () => {
        history.push([Date.now(), pc.connectionState]);
      });
      return pc;
    } as unknown as typeof RTCPeerConnection;
    // close() fires no event: record it too ('close()' in the history).
    const close = Original.prototype.close;
    Original.prototype.close = function (this: RTCPeerConnection) {
      const i = window.__pcs.indexOf(this);
      if (i >= 0 && this.connectionState !== 'closed') window.__pcHistory[i].push([Date.now(), 'close()']);
      return close.call(this);
    };
    // The network check's throwaway connection (rtc/probe.rs, a data channel
    // labelled "network-check", made right after the connection) is not a
    // call's: it leaves __pcs at once and is only counted.
    const createDataChannel = Original.prototype.createDataChannel;
    Original.prototype.createDataChannel = function (this: RTCPeerConnection, label: string, ...rest: any[]) {
      const i = window.__pcs.indexOf(this);
      if (label === 'network-check' && i >= 0) {
        window.__pcs.splice(i, 1);
        window.__pcHistory.splice(i, 1);
        window.__networkChecks = (window.__networkChecks ?? 0) + 1;
      }
      return (createDataChannel as any).call(this, label, ...rest);
    };
    Recorded.prototype = Original.prototype;
    Object.setPrototypeOf(Recorded, Original); // statics, e.g. generateCertificate
    window.RTCPeerConnection = Recorded;
    if ((window as any).webkitRTCPeerConnection) (window as any).webkitRTCPeerConnection = Recorded;
  }

  const OriginalWs = window.WebSocket;
  if (typeof OriginalWs === 'function') {
    const RecordedWs = function WebSocket(this: unknown, ...args: unknown[]) {
      if (!new.target) throw new TypeError("Failed to construct 'WebSocket': Please use the 'new' operator");
      const ws = new (OriginalWs as any)(...args) as WebSocket;
      window.__sockets.push(ws);
      return ws;
    } as unknown as typeof WebSocket;
    RecordedWs.prototype = OriginalWs.prototype;
    Object.setPrototypeOf(RecordedWs, OriginalWs); // CONNECTING, OPEN, ...
    window.WebSocket = RecordedWs;
  }

  // Listener bookkeeping on RTCPeerConnection and WebSocket instances, with
  // the browser's own rules: the same (type, listener, capture) is
  // registered once, and removing an unknown one does nothing.
  type Kind = 'pc' | 'ws';
  const registry = new Map<EventTarget, { kind: Kind; keys: Map<string, Set<unknown>> }>();
  const counts = { pc: { adds: 0, removes: 0, untracked: 0 }, ws: { adds: 0, removes: 0, untracked: 0 } };
  const kindOf = (t: unknown): Kind | null =>
    typeof Original === 'function' && t instanceof Original ? 'pc' : typeof OriginalWs === 'function' && t instanceof OriginalWs ? 'ws' : null;
  const capture = (o: unknown) => (typeof o === 'boolean' ? o : !!(o && typeof o === 'object' && (o as any).capture));
  EventTarget.prototype.addEventListener = function (this: EventTarget, type: string, listener: any, options?: any) {
    const kind = listener ? kindOf(this) : null;
    if (kind) {
      let entry = registry.get(this);
      if (!entry) registry.set(this, (entry = { kind, keys: new Map() }));
      const key = `${type}|${capture(options)}`;
      let set = entry.keys.get(key);
      if (!set) entry.keys.set(key, (set = new Set()));
      if (!set.has(listener)) {
        set.add(listener);
        counts[kind].adds += 1;
        if (options && typeof options === 'object' && (options.once || options.signal)) counts[kind].untracked += 1;
      }
    }
    return originalAdd.call(this, type, listener, options);
  };
  EventTarget.prototype.removeEventListener = function (this: EventTarget, type: string, listener: any, options?: any) {
    const entry = listener ? registry.get(this) : undefined;
    if (entry) {
      const set = entry.keys.get(`${type}|${capture(options)}`);
      if (set && set.delete(listener)) counts[entry.kind].removes += 1;
    }
    return originalRemove.call(this, type, listener, options);
  };
  window.__listenerStats = () => {
    const out: any = {};
    for (const kind of ['pc', 'ws'] as Kind[]) {
      let targets = 0;
      let liveTargets = 0;
      let onLive = 0;
      let onClosed = 0;
      registry.forEach((entry, target) => {
        if (entry.kind !== kind) return;
        targets += 1;
        const live =
          kind === 'pc' ? (target as RTCPeerConnection).connectionState !== 'closed' : (target as WebSocket).readyState < 2;
        let n = 0;
        entry.keys.forEach((set) => (n += set.size));
        if (live) {
          liveTargets += 1;
          onLive += n;
        } else onClosed += n;
      });
      const c = counts[kind];
      out[kind] = { targets, liveTargets, onLive, onClosed, net: c.adds - c.removes, adds: c.adds, removes: c.removes, untracked: c.untracked };
    }
    return out as ListenerStats;
  };

  window.__lumaRange = (v: HTMLVideoElement) => {
    const c = document.createElement('canvas');
    c.width = 32;
    c.height = 24;
    const g = c.getContext('2d')!;
    g.drawImage(v, 0, 0, c.width, c.height);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    let min = 255;
    let max = 0;
    for (let k = 0; k < px.length; k += 4) {
      const y = (px[k] + px[k + 1] + px[k + 2]) / 3;
      min = Math.min(min, y);
      max = Math.max(max, y);
    }
    return [min, max];
  };

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
  /** Participants: stay on the lobby (do not click Join). */
  lobby?: boolean;
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
    // The app's own diagnostics (browser::log): evidence when a test fails.
    else if (/^(webrtc|signaling|relay):/.test(m.text())) peer.log.push(`[${name}] ${new Date().toISOString().slice(11, 23)} ${m.text()}`);
  });
  page.on('crash', () => peer.log.push(`[${name}] PAGE CRASHED`));
  openedPeers.push(peer);
  return peer;
}

/** A participant (camera and mic) in `room`: `/?room=ROOM` with the name
 *  preset, joined from the lobby (unless `opts.lobby`). */
export async function openParticipant(browser: Browser, room: string, name: string, opts: OpenOptions = {}): Promise<Peer> {
  const peer = await newPeer(browser, room, name, 'participant', opts);
  await peer.page.goto(opts.url ?? `/?room=${encodeURIComponent(room)}`);
  if (!opts.lobby) await joinFromLobby(peer.page);
  return peer;
}

/** Clicks the lobby's Join (once the camera is ready) and waits for the call. */
export async function joinFromLobby(page: Page): Promise<void> {
  const join = page.getByRole('button', { name: 'Join', exact: true });
  await expect(join, 'the lobby is ready to join').toBeEnabled({ timeout: 15_000 });
  await join.click();
  await expect(page.getByTestId('lobby'), 'Join leaves the lobby').toBeHidden();
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
        peerId: tile.getAttribute('data-peer'),
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

// ---------------------------------------------------------------- connections and listeners

export interface Connections {
  /** Not-closed connections that receive (every transceiver recvonly). */
  inbound: number;
  /** Not-closed connections that send (some transceiver sends). */
  outbound: number;
  /** Not-closed connections with no transceiver yet (being set up). */
  unknown: number;
  live: number;
  closed: number;
  /** connectionState of every recorded connection, in creation order. */
  states: string[];
}

/** The page's RTCPeerConnections that are not closed, by direction. */
export async function connections(page: Page): Promise<Connections> {
  return page.evaluate(() => {
    const out = { inbound: 0, outbound: 0, unknown: 0, live: 0, closed: 0, states: [] as string[] };
    for (const pc of window.__pcs ?? []) {
      out.states.push(pc.connectionState);
      if (pc.connectionState === 'closed') {
        out.closed += 1;
        continue;
      }
      out.live += 1;
      const ts = pc.getTransceivers();
      if (ts.length === 0) out.unknown += 1;
      else if (ts.some((t) => t.direction === 'sendonly' || t.direction === 'sendrecv')) out.outbound += 1;
      else out.inbound += 1;
    }
    return out;
  });
}

/**
 * What the page should hold: a participant one inbound and one outbound
 * connection per other participant and one outbound per viewer; a viewer one
 * inbound per participant.
 */
export function expectedConnections(peer: Peer, participants: number, viewers: number): { inbound: number; outbound: number } {
  if (peer.role === 'viewer') return { inbound: participants, outbound: 0 };
  return { inbound: participants - 1, outbound: participants - 1 + viewers };
}

/** Waits until the page's live connections are exactly `want` (inbound/outbound, none half-made). */
export async function expectConnections(peer: Peer, want: { inbound: number; outbound: number }, timeout = 20_000): Promise<void> {
  await expect
    .poll(
      async () => {
        const c = await connections(peer.page);
        return { inbound: c.inbound, outbound: c.outbound, unknown: c.unknown };
      },
      { message: `${peer.name}: live (not closed) RTCPeerConnections`, timeout, intervals: [250, 500, 1000] },
    )
    .toEqual({ ...want, unknown: 0 });
}

export async function listenerStats(page: Page): Promise<ListenerStats> {
  return page.evaluate(() => window.__listenerStats());
}

/** connectionState history of the page's connections, times in ms after `since` (Date.now()). */
export async function connectionHistory(page: Page, since: number): Promise<string[]> {
  const h = await page.evaluate(() => (window.__pcHistory ?? []).map((h, i) => ({ now: window.__pcs[i].connectionState, h })));
  return h.map(({ now, h }, i) => `pc${i} [${now}] ${h.map(([t, s]) => `${s}@${t - since >= 0 ? '+' : ''}${t - since}`).join(' ')}`);
}

/** The status line's text. */
export async function statusText(page: Page): Promise<string> {
  return ((await page.getByTestId('status').textContent()) ?? '').trim();
}

/**
 * When (Date.now()) each page's status line says `text` (polled every 50 ms
 * in the page); Infinity for a page where it did not within `timeout`.
 */
export async function whenStatus(pages: Peer[], text: RegExp, timeout = 20_000): Promise<Record<string, number>> {
  const entries = await Promise.all(
    pages.map(async (p) => {
      try {
        const handle = await p.page.waitForFunction(
          ([source, flags]: [string, string]) => {
            const el = document.querySelector('[data-testid=status]');
            return !!el && new RegExp(source, flags).test((el.textContent ?? '').trim()) && Date.now();
          },
          [text.source, text.flags] as [string, string],
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

/** The peer id on the page's own tile (`data-peer`), once joined. */
export async function ownPeerId(peer: Peer): Promise<string> {
  const tile = localTiles(peer.page);
  await expect(tile, `${peer.name}: the local tile carries the own peer id`).toHaveAttribute('data-peer', /\S/, { timeout: 20_000 });
  return (await tile.getAttribute('data-peer')) ?? '';
}

/** Per remote tile name: framesDecoded of its video (null when no stats match). */
export async function framesByTile(page: Page): Promise<Record<string, number | null>> {
  return (await framesDecoded(page)).byPeer;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Samples the page every `interval` ms until the video of every tile named
 * in `names` decoded more frames than in the previous sample; returns
 * Date.now() of that sample, or Infinity if that did not happen within
 * `timeout`. Cheaper and finer-grained than expectMediaFlowing, for timing.
 */
export async function whenVideoFlowing(page: Page, names: string[], timeout = 20_000, interval = 200): Promise<number> {
  const until = Date.now() + timeout;
  let prev: Record<string, number | null> | null = null;
  while (Date.now() < until) {
    let now: Record<string, number | null>;
    try {
      now = await framesByTile(page);
    } catch {
      return Infinity; // page gone
    }
    const at = Date.now();
    const frames = (m: Record<string, number | null>, name: string) => {
      const hits = Object.entries(m).filter(([k]) => k.includes(name));
      return hits.length === 1 ? hits[0][1] : null;
    };
    if (
      prev &&
      names.every((n) => {
        const a = frames(prev!, n);
        const b = frames(now, n);
        return typeof a === 'number' && typeof b === 'number' && b > a;
      })
    ) {
      return at;
    }
    prev = now;
    await sleep(interval);
  }
  return Infinity;
}

/**
 * Starts recording, in the page, every change of the remote tiles: each
 * tile's `data-state` as it changes, and tiles appearing and going, as
 * [Date.now(), data-peer, state | 'gone']. Read it with `tileStateLog`.
 */
export async function recordTileStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: [number, string, string][] = [];
    (window as any).__tileLog = log;
    const isTile = (n: Node): n is Element => n instanceof Element && n.matches('[data-testid=tile][data-local="false"]');
    const note = (el: Element, state?: string) => log.push([Date.now(), el.getAttribute('data-peer') ?? '?', state ?? el.getAttribute('data-state') ?? '?']);
    document.querySelectorAll('[data-testid=tile][data-local="false"]').forEach((t) => note(t));
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' && isTile(r.target)) note(r.target);
        r.addedNodes.forEach((n) => {
          if (isTile(n)) note(n);
          if (n instanceof Element) n.querySelectorAll('[data-testid=tile][data-local="false"]').forEach((t) => note(t));
        });
        r.removedNodes.forEach((n) => {
          if (isTile(n)) note(n, 'gone');
          if (n instanceof Element) n.querySelectorAll('[data-testid=tile][data-local="false"]').forEach((t) => note(t, 'gone'));
        });
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

/** What `recordTileStates` saw for the tile of `peerId`: [Date.now(), state] in order, repeats dropped. */
export async function tileStateLog(page: Page, peerId: string): Promise<[number, string][]> {
  const log = await page.evaluate(() => ((window as any).__tileLog ?? []) as [number, string, string][]);
  const out: [number, string][] = [];
  for (const [t, id, state] of log) {
    if (id !== peerId) continue;
    if (out.length && out[out.length - 1][1] === state) continue;
    out.push([t, state]);
  }
  return out;
}

/** Every line the app logged (`webrtc:`, `signaling:`, `relay:`) and every error/warning on these pages so far. */
export function appLog(peers: Peer[]): string {
  return peers.flatMap((p) => p.log.filter((l) => !l.includes('integrity` attribute'))).join('\n');
}

/** The raw creation/connectionState/close() history of the page's connections ([Date.now(), state]). */
export async function rawConnectionHistory(page: Page): Promise<[number, string][][]> {
  return page.evaluate(() => window.__pcHistory ?? []);
}
