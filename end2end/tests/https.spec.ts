// The relay serves HTTPS and WSS itself: with a self-signed certificate
// (--tls-self-signed), a participant and a viewer load the app over https
// and call over wss (an https page may not open ws://), and the relay
// prints the certificate's SHA-256 to check against the browser's.
import fs from 'node:fs';
import { expect, expectMediaFlowing, openParticipant, openViewer, test } from './helpers';
import { RelayProcess, stopAllRelays } from './relay-process';

const PORT = 3443;

test.afterEach(async () => {
  await stopAllRelays();
});

test('the app over HTTPS with a self-signed certificate: a call works over WSS', async ({ browser, room }, testInfo) => {
  const state = testInfo.outputPath('state');
  const relay = new RelayProcess(PORT, { https: true, extra: ['--tls-self-signed', '--state-dir', state] });
  await relay.start();
  const log = fs.readFileSync(relay.logFile, 'utf8');
  const fingerprint = /certificate SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/.exec(log)?.[1];
  expect(fingerprint, 'the relay prints the certificate fingerprint').toBeTruthy();
  expect(fs.existsSync(`${state}/tls-cert.pem`), 'the certificate is kept in the state directory').toBe(true);

  // A test browser trusts the certificate by ignoring certificate errors.
  const contextOptions = { ignoreHTTPSErrors: true };
  const ada = await openParticipant(browser, room, 'Ada', { url: relay.url(`/?room=${room}`), contextOptions });
  const vic = await openViewer(browser, room, 'Vic', { url: relay.url(`/watch?room=${room}`), contextOptions });
  await expectMediaFlowing(vic, ['Ada']);
  expect(await vic.page.evaluate(() => location.protocol)).toBe('https:');
  expect(await ada.page.evaluate(() => window.isSecureContext), 'a secure context').toBe(true);
});
