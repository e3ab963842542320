// How the tests launch Chromium. Shared by playwright.config.ts and the tests
// that launch a browser of their own (tests/media-denied.spec.ts).
import os from 'node:os';

/** Debian's real binary, not the /usr/bin/chromium shell wrapper. */
export const CHROMIUM_PATH = process.env.CHROMIUM || '/usr/lib/chromium/chromium';

/** Flags every test browser gets. */
export const BASE_ARGS = [
  // Fake cameras (640x480, 20 fps, a moving pattern; three of them, for the
  // device pickers: fake_device_1 encodes nothing over WebRTC, see
  // MACHINE.md) and a beeping fake mic.
  '--use-fake-device-for-media-stream=device-count=3',
  // In a namespace with only `lo`, Chromium gathers no ICE candidate without it.
  '--allow-loopback-in-peer-connection',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // A page without camera permission (the watch page) would hide its host
  // candidates behind mDNS names, and there is no multicast here.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
  // No name resolves except the hosts the tests open (MAP * also catches IP
  // literals, so every host used must be EXCLUDEd).
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
];

/** Answers every camera/microphone prompt with "allow". It also overrides any
 *  denial (Playwright's `permissions`, CDP Browser.setPermission), so a test
 *  that needs a denial launches a browser without it: DENIED_ARGS. */
export const FAKE_UI_ARG = '--use-fake-ui-for-media-stream';

export const PARTICIPANT_ARGS = [...BASE_ARGS, FAKE_UI_ARG];

/** getUserMedia rejects at once with NotAllowedError ("Permission denied").
 *  Playwright's contexts already deny ungranted permissions when the fake UI
 *  is off; --deny-permission-prompts makes that hold without Playwright too. */
export const DENIED_ARGS = [...BASE_ARGS, '--deny-permission-prompts'];

/**
 * Test traffic must never reach a non-loopback address (WebRTC would happily
 * pair over the machine's real interface). scripts/e2e.sh runs everything in a
 * fresh network namespace that has only `lo`; refuse to run anywhere else.
 */
export function assertLoopbackOnly(): void {
  const outside = Object.entries(os.networkInterfaces())
    .flatMap(([name, addrs]) => (addrs ?? []).filter((a) => !a.internal).map((a) => `${name} ${a.address}`));
  if (outside.length > 0) {
    throw new Error(
      `refusing to run: this network namespace has non-loopback interfaces (${outside.join(', ')}). ` +
        'Run the end-to-end tests with scripts/e2e.sh, which runs them in a namespace that has only lo.',
    );
  }
}
