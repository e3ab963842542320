// End-to-end tests: Debian's Chromium with fake camera/mic against a relay
// serving the built app. Run them with scripts/e2e.sh (it builds nothing but
// the relay, makes a network namespace with only `lo`, starts the relay there
// and runs `playwright test` inside it); arguments go to Playwright, e.g.
// `scripts/e2e.sh -g "late joiner"`.
import { defineConfig } from '@playwright/test';
import { CHROMIUM_PATH, PARTICIPANT_ARGS, assertLoopbackOnly } from './chromium';

// Listing tests opens no browser; running them must happen in the namespace.
if (!process.argv.includes('--list')) assertLoopbackOnly();

export default defineConfig({
  testDir: 'tests',
  outputDir: 'test-results',
  // Several browsers' worth of VP8 encoding and decoding on 2 cores: one at a time.
  workers: 1,
  fullyParallel: false,
  // A flaky test must show up as a failure, not be retried into a pass.
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  forbidOnly: !!process.env.CI,
  // results.json feeds the one-line summary scripts/e2e.sh prints for CI.
  reporter: [['list'], ['json', { outputFile: 'test-results/results.json' }]],
  use: {
    baseURL: process.env.MESHCAST_URL || 'http://127.0.0.1:3000',
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: PARTICIPANT_ARGS,
    },
    actionTimeout: 10_000,
    navigationTimeout: 20_000,
    // No screencast in traces: it costs CPU the video pipelines need.
    trace: { mode: 'retain-on-failure', screenshots: false, snapshots: true, sources: true },
    screenshot: 'only-on-failure',
  },
});
