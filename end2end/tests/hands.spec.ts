// Raised hands: seen on the tile (with its place in the order) and in the
// room's list of raised hands by everyone else, viewers' hands too, lowered
// again, and known to a late joiner from the relay.
import path from 'node:path';
import { ensureArtifactsDir, expect, openParticipant, openViewer, remoteTile, test } from './helpers';

const low = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;

test('raise and lower hand: tiles, order, viewers and a late joiner', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada', { url: low(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: low(room) });
  const vic = await openViewer(browser, room, 'Vic');
  await Promise.all([ada, bob, vic].map((p) => expect(p.page.getByTestId('status')).toHaveText(/Connected/, { timeout: 20_000 })));
  await expect(remoteTile(bob.page, 'Ada')).toHaveCount(1);

  const raise = (p: typeof ada) => p.page.getByRole('button', { name: 'Raise hand', exact: true });
  const lower = (p: typeof ada) => p.page.getByRole('button', { name: 'Lower hand', exact: true });
  await raise(ada).click();
  await expect(lower(ada), 'the button turns into Lower hand').toBeVisible();
  await expect(ada.page.locator('[data-testid=tile][data-local="true"]')).toHaveAttribute('data-hand', 'true');
  const adaOnBob = remoteTile(bob.page, 'Ada');
  await expect(adaOnBob, "Bob sees Ada's hand").toHaveAttribute('data-hand', 'true');
  await expect(adaOnBob.locator('.hand-mark')).toHaveText('1');
  await expect(remoteTile(vic.page, 'Ada')).toHaveAttribute('data-hand', 'true');

  // The viewer raises second (from the keyboard): no tile, but the list says so, in order.
  await raise(vic).focus();
  await vic.page.keyboard.press('Enter');
  await expect(bob.page.getByTestId('hands')).toHaveText(/Hands raised, in order: Ada, Vic$/);
  await expect(ada.page.getByTestId('hands')).toHaveText(/in order: Vic$/);

  // A late joiner learns both from the relay, in the same order.
  const cy = await openParticipant(browser, room, 'Cy', { url: low(room), viewport: { width: 390, height: 844 } });
  await expect(cy.page.getByTestId('hands')).toHaveText(/in order: Ada, Vic$/);
  await expect(remoteTile(cy.page, 'Ada')).toHaveAttribute('data-hand', 'true');
  const dir = ensureArtifactsDir();
  for (const [p, file] of [[bob, 'hands-1280x800.png'], [cy, 'hands-390x844.png']] as const) {
    await p.page.screenshot({ path: path.join(dir, file) });
    console.log(`screenshot: ${path.join(dir, file)}`);
  }

  await lower(ada).click();
  await expect(raise(ada)).toBeVisible();
  for (const p of [bob, cy]) {
    await expect(remoteTile(p.page, 'Ada'), `${p.name}: Ada's hand is down`).toHaveAttribute('data-hand', 'false');
    await expect(p.page.getByTestId('hands')).toHaveText(/in order: Vic$/);
  }
  await expect(remoteTile(bob.page, 'Cy')).toHaveAttribute('data-hand', 'false');
});
