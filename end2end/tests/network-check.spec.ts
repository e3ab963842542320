// The network check in the lobby (and in Settings): the page asks the relay
// for its ICE servers (/ice-servers), gathers candidates with them and says
// what this network lets through. The relay runs the embedded TURN server
// (UDP and TCP) and names it as its STUN server too; iptables in the test
// namespace then takes away UDP, and then TCP, to it.
import { expect, expectMediaFlowing, joinFromLobby, openParticipant, remoteTile, test } from './helpers';
import { iptablesInTestNs } from './netns';
import { RelayProcess, stopAllRelays } from './relay-process';

const PORT = 3445;
const TURN = 3678;
const dropped: string[][] = [];

function drop(proto: 'udp' | 'tcp'): void {
  const rule = ['OUTPUT', '-p', proto, '--dport', String(TURN), '-j', 'DROP'];
  iptablesInTestNs(['-I', ...rule]);
  dropped.push(rule);
}

test.afterEach(async () => {
  for (const rule of dropped.splice(0)) iptablesInTestNs(['-D', ...rule]);
  await stopAllRelays();
});

test('the lobby says what the network lets through: direct, relayed only, nothing; Settings checks again', async ({ browser, room }) => {
  const relay = new RelayProcess(PORT, {
    extra: ['--stun', `stun:127.0.0.1:${TURN}`, '--turn-listen', `127.0.0.1:${TURN}`, '--turn-allow-loopback', '--turn-ports', `${TURN + 100}-${TURN + 200}`],
  });
  await relay.start();
  const ada = await openParticipant(browser, room, 'Ada', { url: relay.url(`/?room=${room}`), lobby: true });
  const check = ada.page.getByTestId('network-check');
  const again = check.getByRole('button', { name: 'Check network' });
  await expect(check).toContainText('Direct calls should work', { timeout: 15_000 });
  await expect(check).toContainText('TURN/UDP ok');
  await expect(check).toContainText('TURN/TCP ok');
  expect(await ada.page.evaluate(() => window.__networkChecks), 'one check on arrival').toBe(1);

  drop('udp');
  await again.click();
  await expect(check).toContainText('Checking your network');
  await expect(check).toContainText('Only relayed calls will work on this network', { timeout: 15_000 });
  await expect(check).toContainText('STUN blocked · TURN/UDP blocked · TURN/TCP ok');

  drop('tcp');
  await again.click();
  await expect(check).toContainText('Nothing gets out: calls will fail', { timeout: 15_000 });
  await expect(check).toContainText('TURN/TCP blocked');

  // In the call, Settings runs it on demand.
  dropped.splice(0).forEach((rule) => iptablesInTestNs(['-D', ...rule]));
  await joinFromLobby(ada.page);
  await ada.page.getByRole('button', { name: /^settings$/i }).click();
  const inSettings = ada.page.getByRole('dialog', { name: /^settings$/i }).getByTestId('network-check');
  await inSettings.getByRole('button', { name: 'Check network' }).click();
  await expect(inSettings).toContainText('Direct calls should work', { timeout: 15_000 });
});

test('a connection that fails with every candidate is retried once relay-only, and the tile says so', async ({ browser, room }) => {
  test.setTimeout(120_000);
  const relay = new RelayProcess(PORT, {
    extra: ['--turn-listen', `127.0.0.1:${TURN}`, '--turn-allow-loopback', '--turn-ports', `${TURN + 100}-${TURN + 200}`],
  });
  await relay.start();
  const range = `${TURN + 100}:${TURN + 200}`;
  // No direct path between the browsers (UDP or TCP): only the relay's
  // port, the TURN port and the TURN server's relay leg get through...
  iptablesInTestNs(['-I', 'OUTPUT', '-p', 'udp', '-m', 'multiport', '!', '--ports', `${TURN},${range}`, '-j', 'DROP']);
  dropped.push(['OUTPUT', '-p', 'udp', '-m', 'multiport', '!', '--ports', `${TURN},${range}`, '-j', 'DROP']);
  iptablesInTestNs(['-I', 'OUTPUT', '-p', 'tcp', '-m', 'multiport', '!', '--ports', `${PORT},${TURN}`, '-j', 'DROP']);
  dropped.push(['OUTPUT', '-p', 'tcp', '-m', 'multiport', '!', '--ports', `${PORT},${TURN}`, '-j', 'DROP']);
  // ...and, for the first attempt, not even the relay leg.
  const leg = ['OUTPUT', '-p', 'udp', '--dport', range, '-j', 'DROP'];
  iptablesInTestNs(['-I', ...leg]);
  dropped.push(leg);

  const url = relay.url(`/?room=${room}&quality=low`);
  const ada = await openParticipant(browser, room, 'Ada', { url });
  const bob = await openParticipant(browser, room, 'Bob', { url });
  // Each side's first inbound connection fails and is replaced by one
  // that gathers relay candidates only.
  const relayOnly = (page: typeof ada.page) =>
    page.evaluate(() => window.__pcs.filter((pc) => pc.getConfiguration().iceTransportPolicy === 'relay' && pc.connectionState !== 'closed').length);
  for (const p of [ada, bob]) {
    await expect.poll(() => relayOnly(p.page), { message: `${p.name} retries relay-only`, timeout: 40_000 }).toBe(1);
  }
  dropped.splice(dropped.indexOf(leg), 1);
  iptablesInTestNs(['-D', ...leg]);
  await expectMediaFlowing(ada, ['Bob']);
  await expectMediaFlowing(bob, ['Ada']);
  for (const [page, other] of [[ada.page, 'Bob'], [bob.page, 'Ada']] as const) {
    await expect(remoteTile(page, other).getByTestId('path')).toHaveText('Relayed (UDP) · retried via TURN', { timeout: 10_000 });
  }
});
