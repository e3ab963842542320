// Text chat through the relay: two participants and a viewer write, everyone
// reads in order, a message is only ever text, links are web links only, and
// a late joiner gets the history.
import path from 'node:path';
import { type Page } from '@playwright/test';
import { ensureArtifactsDir, expect, openParticipant, openViewer, test, type Peer } from './helpers';

const low = (room: string) => `/?room=${encodeURIComponent(room)}&quality=low`;
const INJECTION = '<img src=x onerror=alert(1)>';

async function openChat(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Chat', exact: true }).click();
  await expect(page.getByRole('complementary', { name: 'Chat' }), 'the chat drawer opens').toBeVisible();
}

/** Each message as the page lists it: "name|text". */
async function lines(page: Page): Promise<string[]> {
  return page
    .locator('.chat-list li')
    .evaluateAll((items) => items.map((li) => `${li.querySelector('.who')?.textContent}|${li.querySelector('p')?.textContent}`));
}

async function say(peer: Peer, text: string, how: 'enter' | 'button'): Promise<void> {
  const box = peer.page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  if (how === 'enter') await box.press('Enter');
  else await peer.page.getByRole('button', { name: 'Send', exact: true }).click();
  await expect(box, `${peer.name}: the box empties once sent`).toHaveValue('');
}

test('chat between participants and a viewer: in order, text only, web links, history for a late joiner', async ({ browser, room }) => {
  const ada = await openParticipant(browser, room, 'Ada', { url: low(room) });
  const bob = await openParticipant(browser, room, 'Bob', { url: low(room) });
  const vic = await openViewer(browser, room, 'Vic');
  await Promise.all([ada, bob, vic].map((p) => expect(p.page.getByTestId('status')).toHaveText(/Connected/, { timeout: 20_000 })));
  const dialogs: string[] = [];
  for (const p of [ada, bob, vic]) p.page.on('dialog', (d) => { dialogs.push(`${p.name}: ${d.message()}`); void d.dismiss(); });

  await openChat(ada.page);
  await say(ada, 'hello from Ada', 'enter');
  await expect(bob.page.getByTestId('chat-unread'), 'Bob sees one unread message on the Chat button').toHaveText('1');
  await openChat(bob.page);
  await expect(bob.page.getByTestId('chat-unread'), 'opening the chat clears the count').toBeHidden();
  await say(bob, INJECTION, 'button');
  await openChat(vic.page);
  await say(vic, 'viewer here: https://example.org/x. And javascript:alert(2)', 'enter');

  const want = ['Ada|hello from Ada', `Bob|${INJECTION}`, 'Vic|viewer here: https://example.org/x. And javascript:alert(2)'];
  const mine = (list: string[], who: string) => list.map((l) => (l.startsWith(`${who}|`) ? l.replace(`${who}|`, `${who} (you)|`) : l));
  for (const p of [ada, bob, vic]) {
    await expect.poll(() => lines(p.page), { message: `${p.name} lists every message, in order, as text` }).toEqual(mine(want, p.name));
    await expect(p.page.locator('.chat-list img'), `${p.name}: the HTML in a message made no element`).toHaveCount(0);
    const link = p.page.locator('.chat-list a');
    await expect(link, `${p.name}: one link, the https one`).toHaveCount(1);
    await expect(link).toHaveAttribute('href', 'https://example.org/x');
    await expect(link).toHaveAttribute('target', '_blank');
    await expect(link).toHaveAttribute('rel', /noopener/);
  }

  await ada.page.screenshot({ path: path.join(ensureArtifactsDir(), 'chat-1280x800.png') });

  // A late joiner (on a phone) gets the history, in order, with the names.
  const cyd = await openViewer(browser, room, 'Cyd', { viewport: { width: 390, height: 844 } });
  cyd.page.on('dialog', (d) => { dialogs.push(`Cyd: ${d.message()}`); void d.dismiss(); });
  await expect(cyd.page.getByTestId('chat-unread'), 'the history counts as unread for the newcomer').toHaveText('3');
  await openChat(cyd.page);
  await expect.poll(() => lines(cyd.page), { message: 'Cyd gets the history' }).toEqual(want);
  await cyd.page.screenshot({ path: path.join(ensureArtifactsDir(), 'chat-390x844.png') });

  // Over the limit: not sendable, and said why.
  await cyd.page.getByRole('textbox', { name: 'Message' }).fill('x'.repeat(2001));
  await expect(cyd.page.getByRole('button', { name: 'Send', exact: true }), '2,001 characters cannot be sent').toBeDisabled();
  await expect(cyd.page.getByTestId('chat').getByRole('alert')).toContainText('2000 characters');
  expect(dialogs, 'no script from a message ever ran').toEqual([]);
});
