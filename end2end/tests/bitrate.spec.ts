// The uplink budget is split between a broadcaster's viewers: every outbound
// video sender is capped (maxBitrate, scaleResolutionDownBy) by the plan
//   per viewer = clamp(budget / viewers, 80, 1500) kbit/s,
//   scale = 4 below 150 kbit/s, 2 below 300, else 1,
// re-applied whenever the number of viewers changes, and the encoders keep
// to it (bytesSent over a few seconds).
import type { Page } from '@playwright/test';
import { expect, expectMediaFlowing, openParticipant, openViewer, sleep, test, type Peer } from './helpers';

/** The video budget every participant gets (`?uplink=`), small enough for the caps to bite. */
const BUDGET_KBPS = 600;

/** The plan, as the app computes it (frontend/src/rtc/bitrate.rs). */
function plan(budgetKbps: number, viewers: number): { maxBitrate: number; scale: number } {
  const per = Math.min(1500, Math.max(80, Math.floor(budgetKbps / Math.max(1, viewers))));
  return { maxBitrate: per * 1000, scale: per < 150 ? 4 : per < 300 ? 2 : 1 };
}

interface SenderSample {
  pc: number;
  maxBitrate: number | null;
  scale: number | null;
  bytesSent: number;
  timestamp: number;
  frameWidth: number | null;
  targetBitrate: number | null;
  limitation: string | null;
}

/** Every outbound video sender on the page's live connections: its encoding parameters and outbound-rtp stats. */
async function senders(page: Page): Promise<SenderSample[]> {
  return page.evaluate(async () => {
    const out: any[] = [];
    const pcs = window.__pcs;
    for (let i = 0; i < pcs.length; i++) {
      const pc = pcs[i];
      if (pc.connectionState === 'closed') continue;
      for (const sender of pc.getSenders()) {
        if (sender.track?.kind !== 'video') continue;
        const enc = sender.getParameters().encodings?.[0] ?? {};
        let rtp: any = null;
        (await sender.getStats()).forEach((s: any) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video') rtp = s;
        });
        out.push({
          pc: i,
          maxBitrate: enc.maxBitrate ?? null,
          scale: enc.scaleResolutionDownBy ?? null,
          bytesSent: rtp?.bytesSent ?? 0,
          timestamp: rtp?.timestamp ?? performance.timeOrigin + performance.now(),
          frameWidth: rtp?.frameWidth ?? null,
          targetBitrate: rtp?.targetBitrate ?? null,
          limitation: rtp?.qualityLimitationReason ?? null,
        });
      }
    }
    return out;
  });
}

/** Waits until every participant's outbound video senders (one per viewer) carry the planned caps. */
async function expectCaps(participants: Peer[], viewers: number): Promise<void> {
  const want = plan(BUDGET_KBPS, viewers);
  await Promise.all(
    participants.map((p) =>
      expect
        .poll(async () => (await senders(p.page)).map((s) => ({ maxBitrate: s.maxBitrate, scale: s.scale })), {
          message: `${p.name}: ${viewers} video senders capped at ${want.maxBitrate} bit/s, scaleResolutionDownBy ${want.scale}`,
          timeout: 20_000,
          intervals: [250, 500, 1000],
        })
        .toEqual(Array.from({ length: viewers }, () => ({ maxBitrate: want.maxBitrate, scale: want.scale }))),
    ),
  );
}

/** Over `ms`, every outbound video stream stays within its cap (payload bytes), and its frames are scaled down. */
async function expectEncodersKeepToCaps(participants: Peer[], viewers: number, ms = 5_000): Promise<void> {
  const want = plan(BUDGET_KBPS, viewers);
  // Encoders settle on a new target within a moment of setParameters.
  await sleep(2_000);
  const a = await Promise.all(participants.map((p) => senders(p.page)));
  await sleep(ms);
  const b = await Promise.all(participants.map((p) => senders(p.page)));
  const lines: string[] = [];
  const over: string[] = [];
  participants.forEach((p, i) => {
    for (const s of b[i]) {
      const s0 = a[i].find((x) => x.pc === s.pc);
      if (!s0) continue;
      const kbps = ((s.bytesSent - s0.bytesSent) * 8) / (s.timestamp - s0.timestamp); // bits per ms = kbit/s
      const line =
        `${p.name} pc${s.pc}: ${kbps.toFixed(0)} kbit/s (cap ${s.maxBitrate! / 1000}, target ${s.targetBitrate === null ? '?' : (s.targetBitrate / 1000).toFixed(0)}), ` +
        `${s.frameWidth ?? '?'} px wide (scale ${s.scale}), limited by ${s.limitation}`;
      lines.push(line);
      if (!(kbps > 0)) over.push(`${line}: sends nothing`);
      if (kbps * 1000 > want.maxBitrate * 1.2) over.push(`${line}: more than 1.2 x the cap`);
      if (s.frameWidth !== null && s.frameWidth > 320 / want.scale) over.push(`${line}: wider than ${320 / want.scale} px`);
    }
  });
  console.log(`${viewers} viewers each, plan ${want.maxBitrate / 1000} kbit/s at scale ${want.scale}:\n  ${lines.join('\n  ')}`);
  expect(over, `outbound video keeps to the plan (${want.maxBitrate / 1000} kbit/s, scale ${want.scale})`).toEqual([]);
}

test('four participants and viewers: every video sender is capped by the split budget, re-planned as viewers come and go', async ({ browser, room }) => {
  test.setTimeout(240_000);
  const url = `/?room=${encodeURIComponent(room)}&quality=low&uplink=${BUDGET_KBPS}`;
  const names = ['Ada', 'Bob', 'Cyd', 'Dan'];
  const parts: Peer[] = [];
  for (const n of names) parts.push(await openParticipant(browser, room, n, { url }));
  const others = (me: string) => names.filter((n) => n !== me);
  await Promise.all(parts.map((p) => expectMediaFlowing(p, others(p.name), { audio: false })));

  // 3 viewers each (the other participants): 200 kbit/s, half size.
  await expectCaps(parts, 3);
  await expectEncodersKeepToCaps(parts, 3);

  // A viewer: 4 each, 150 kbit/s, still half size (scale 2 up to 299 kbit/s).
  const vic = await openViewer(browser, room, 'Vic');
  await expectMediaFlowing(vic, names, { audio: false });
  await expectCaps(parts, 4);
  await expectEncodersKeepToCaps(parts, 4);
  // Everyone still sees everyone.
  await Promise.all(parts.map((p) => expectMediaFlowing(p, others(p.name), { audio: false })));

  // A second viewer: 5 each, 120 kbit/s, quarter size.
  const wes = await openViewer(browser, room, 'Wes');
  await expectMediaFlowing(wes, names, { audio: false });
  await expectCaps(parts, 5);
  await expectEncodersKeepToCaps(parts, 5);

  // It leaves: back to 4.
  await wes.context.close();
  await expectCaps(parts, 4);
  await Promise.all([...parts.map((p) => expectMediaFlowing(p, others(p.name), { audio: false })), expectMediaFlowing(vic, names, { audio: false })]);
});

/** Kbit/s of each outbound video sender of the page over `ms`. */
async function sendRates(page: Page, ms: number): Promise<{ kbps: number; sample: SenderSample }[]> {
  const a = await senders(page);
  await sleep(ms);
  const b = await senders(page);
  return b.flatMap((s) => {
    const s0 = a.find((x) => x.pc === s.pc);
    return s0 ? [{ kbps: ((s.bytesSent - s0.bytesSent) * 8) / (s.timestamp - s0.timestamp), sample: s }] : [];
  });
}

test('the cap binds: at full camera quality a sender capped at 300 kbit/s keeps to it, while the same camera uncapped sends more', async ({ browser, room }) => {
  test.setTimeout(120_000);
  // One viewer each: Ada's budget 300 → 300 kbit/s at full size; Bob's default → 1500.
  const ada = await openParticipant(browser, room, 'Ada', { url: `/?room=${encodeURIComponent(room)}&uplink=300` });
  const bob = await openParticipant(browser, room, 'Bob', { url: `/?room=${encodeURIComponent(room)}` });
  await Promise.all([expectMediaFlowing(ada, ['Bob'], { audio: false }), expectMediaFlowing(bob, ['Ada'], { audio: false })]);
  await expect.poll(async () => (await senders(ada.page)).map((s) => [s.maxBitrate, s.scale]), { message: "Ada's sender capped" }).toEqual([[300_000, 1]]);
  await expect.poll(async () => (await senders(bob.page)).map((s) => [s.maxBitrate, s.scale]), { message: "Bob's sender capped" }).toEqual([[1_500_000, 1]]);

  // Bandwidth estimation ramps up over some seconds: wait until the uncapped
  // sender shows the camera needs more than Ada's cap allows...
  const capKbps = 300;
  let bobKbps = 0;
  await expect
    .poll(async () => (bobKbps = (await sendRates(bob.page, 2_000))[0]?.kbps ?? 0), {
      message: `the same fake camera, uncapped, sends more than ${capKbps * 1.2} kbit/s`,
      timeout: 40_000,
      intervals: [0],
    })
    .toBeGreaterThan(capKbps * 1.2);
  // ...while Ada's sender, over the same time, keeps to hers.
  const [adaRate] = await sendRates(ada.page, 5_000);
  console.log(`uncapped Bob: ${bobKbps.toFixed(0)} kbit/s; Ada capped at ${capKbps}: ${adaRate.kbps.toFixed(0)} kbit/s (target ${adaRate.sample.targetBitrate}, limited by ${adaRate.sample.limitation})`);
  expect(adaRate.kbps, `Ada sends at most 1.2 x her ${capKbps} kbit/s cap`).toBeLessThanOrEqual(capKbps * 1.2);
  expect(adaRate.kbps, 'Ada still sends video').toBeGreaterThan(0);
  if (adaRate.sample.targetBitrate !== null) expect(adaRate.sample.targetBitrate, "Ada's encoder target is within the cap").toBeLessThanOrEqual(capKbps * 1000);
});
