// Getting in: the name dialog, and a room made up when the link has none.
import { expect, expectConnected, localTiles, newPeer, openParticipant, test } from './helpers';

test('without a stored name the name dialog asks for one, and it is remembered', async ({ browser, room }) => {
  const eve = await newPeer(browser, room, 'Eve', 'participant', { noName: true });
  await eve.page.goto(`/?room=${room}`);
  const dialog = eve.page.getByTestId('name-dialog');
  await expect(dialog, 'no stored name: the dialog asks for one').toBeVisible();
  await eve.page.getByTestId('name-input').fill('  Eve  ');
  await eve.page.getByTestId('name-submit').click();
  await expect(dialog).toBeHidden();
  expect(await eve.page.evaluate(() => localStorage.getItem('meshcast.name')), 'the name is stored, trimmed').toBe('Eve');
  await expect(localTiles(eve.page).locator('.tile-name'), 'the own tile shows the name').toContainText('Eve');
  await expectConnected(eve);

  await eve.page.reload();
  await expectConnected(eve);
  await expect(eve.page.getByTestId('name-dialog'), 'a stored name is not asked again').toBeHidden();
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
