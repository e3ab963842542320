// Getting in: the lobby's name (participants), the name dialog (viewers), and
// a room made up when the link has none.
import { expect, expectConnected, joinFromLobby, localTiles, newPeer, openParticipant, test } from './helpers';

test('the lobby asks for a name, remembers it, and a reload comes back to it pre-filled', async ({ browser, room }) => {
  const eve = await newPeer(browser, room, 'Eve', 'participant', { noName: true });
  await eve.page.goto(`/?room=${room}`);
  const input = eve.page.getByLabel('Your name');
  await expect(input, 'no stored name: the lobby suggests one').toHaveValue(/\S/);
  await input.fill('   ');
  await eve.page.getByTestId('join').click();
  await expect(eve.page.getByRole('alert'), 'an empty name is refused in words').toContainText('1 to 64 characters');
  await input.fill('  Eve  ');
  await joinFromLobby(eve.page);
  expect(await eve.page.evaluate(() => localStorage.getItem('meshcast.name')), 'the name is stored, trimmed').toBe('Eve');
  await expect(localTiles(eve.page).locator('.tile-name'), 'the own tile shows the name').toContainText('Eve');
  await expectConnected(eve);

  await eve.page.reload();
  await expect(eve.page.getByTestId('lobby'), 'a reload shows the lobby again').toBeVisible();
  await expect(input, 'with the name pre-filled').toHaveValue('Eve');
  await joinFromLobby(eve.page);
  await expectConnected(eve);
});

test('the watch page asks for a name only when none is stored, and never for a camera', async ({ browser, room }) => {
  const wes = await newPeer(browser, room, 'Wes', 'viewer', { noName: true });
  await wes.page.goto(`/watch?room=${room}`);
  const dialog = wes.page.getByTestId('name-dialog');
  await expect(dialog, 'no stored name: the dialog asks for one').toBeVisible();
  await expect(wes.page.getByTestId('lobby'), 'no lobby on the watch page').toHaveCount(0);
  await wes.page.getByTestId('name-input').fill('Wes');
  await wes.page.getByTestId('name-submit').click();
  await expect(dialog).toBeHidden();
  await expectConnected(wes);
  await wes.page.reload();
  await expectConnected(wes);
  await expect(dialog, 'a stored name is not asked again').toBeHidden();
  expect(await wes.page.evaluate(() => window.__gumCalls), 'the watch page never asks for the camera').toBe(0);
});

test('a link without a room gets a fresh room id in the address bar', async ({ browser }) => {
  const ann = await openParticipant(browser, '', 'Ann', { url: '/' });
  await expect
    .poll(() => new URL(ann.page.url()).searchParams.get('room'), { message: 'the app puts a generated ?room= into the URL' })
    .toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  const first = new URL(ann.page.url()).searchParams.get('room');
  expect(new URL(ann.page.url()).pathname).toBe('/');
  await expectConnected(ann);

  const ben = await openParticipant(browser, '', 'Ben', { url: '/' });
  await expect.poll(() => new URL(ben.page.url()).searchParams.get('room')).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  expect(new URL(ben.page.url()).searchParams.get('room'), 'two fresh links get two different rooms').not.toBe(first);
});
