// Call set-up time, measured from the marks the app records
// (performance.mark("meshcast:<step>")): a viewer joining a room with one
// broadcaster, RUNS times, then a 4-way mesh from cold. Prints a table and
// writes artifacts/bench-callsetup.json.
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS_DIR, ensureArtifactsDir, expectMediaFlowing, openParticipant, openViewer, test } from '../tests/helpers';

const RUNS = Number(process.env.MESHCAST_BENCH_RUNS ?? 20);
const STEPS = ['wasm-start', 'interactive', 'socket-connecting', 'socket-open', 'welcome', 'offer', 'ice-connected', 'first-frame'] as const;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

test('viewer page load to first decoded remote frame, and a 4-way mesh', async ({ browser, room }) => {
  await openParticipant(browser, room, 'Ada');
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < RUNS; i++) {
    const vic = await openViewer(browser, room, `Vic${i}`);
    await vic.page.waitForFunction(() => performance.getEntriesByName('meshcast:first-frame').length > 0, null, { timeout: 30_000 });
    const marks = await vic.page.evaluate((steps) => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const out: Record<string, number> = { 'html-loaded': nav.responseEnd, 'dom-ready': nav.domContentLoadedEventEnd };
      for (const s of steps) out[s] = performance.getEntriesByName(`meshcast:${s}`)[0]?.startTime ?? NaN;
      return out;
    }, [...STEPS]);
    runs.push(marks);
    await vic.context.close();
  }
  const keys = Object.keys(runs[0]);
  const table = keys.map((k) => {
    const xs = runs.map((r) => r[k]).filter((x) => Number.isFinite(x));
    return { step: k, p50: Math.round(pct(xs, 50)), p95: Math.round(pct(xs, 95)), n: xs.length };
  });
  console.log(`\nviewer navigation start -> step (ms), ${RUNS} runs`);
  console.table(table);

  // 4-way mesh from cold: all four pages opened at once; done when every page
  // shows the other three connected.
  const meshRoom = `${room}-mesh`;
  const t0 = Date.now();
  const peers = await Promise.all(['M1', 'M2', 'M3', 'M4'].map((n) => openParticipant(browser, meshRoom, n, { url: `/?room=${meshRoom}&quality=low` })));
  await Promise.all(
    peers.map((p) =>
      p.page.waitForFunction(
        () => document.querySelectorAll('[data-testid=tile][data-local="false"][data-state="connected"]').length === 3,
        null,
        { timeout: 60_000, polling: 50 },
      ),
    ),
  );
  const meshMs = Date.now() - t0;
  await Promise.all(peers.map((p) => expectMediaFlowing(p, peers.filter((q) => q !== p).map((q) => q.name), { audio: false })));
  console.log(`4-way mesh: every page connected to the other three ${meshMs} ms after the pages were opened`);
  ensureArtifactsDir();
  fs.writeFileSync(path.join(ARTIFACTS_DIR, 'bench-callsetup.json'), JSON.stringify({ runs: RUNS, table, raw: runs, mesh4_connected_ms: meshMs }, null, 2));
});
