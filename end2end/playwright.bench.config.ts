// The browser benchmarks (call set-up time): not tests, never in CI. Run with
//   scripts/e2e.sh --config playwright.bench.config.ts
// (scripts/bench.sh does that and records the numbers).
import { defineConfig } from '@playwright/test';
import base from './playwright.config';

export default defineConfig({
  ...base,
  testDir: 'bench',
  timeout: 20 * 60_000,
  reporter: [['list']],
});
