// The embedded TURN server over TCP and TLS, for networks that let no UDP
// out: the relay serves HTTPS with a self-signed certificate and TURN on
// UDP, TCP and TLS; the browser trusts the certificate by its SPKI hash
// (--ignore-certificate-errors-spki-list, which Chromium's WebRTC sockets
// honour as its page loads do). With UDP to the TURN port dropped (and, for
// TLS, TCP to it too) a relay-only call connects through what is left, and
// the tiles say so. With --turn-on-https, TURN over TLS shares the HTTPS
// port: with only that port open the page loads and the call is relayed
// through it.
import { chromium } from '@playwright/test';
import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import { CHROMIUM_PATH, PARTICIPANT_ARGS } from '../chromium';
import { expect, expectMediaFlowing, openParticipant, remoteTile, test } from './helpers';
import { iptablesInTestNs } from './netns';
import { RelayProcess, stopAllRelays } from './relay-process';

const PORT = 3444;
const TURN = 3578;

/** base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: what the flag takes. */
function spkiHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

const dropped: string[][] = [];

/** Drops what `rule` matches (an OUTPUT rule) until the test ends. */
function dropOutput(...rule: string[]): void {
  const full = ['OUTPUT', ...rule, '-j', 'DROP'];
  iptablesInTestNs(['-I', ...full]);
  dropped.push(full);
}

/** Drops packets of `proto` to the TURN port until the test ends. */
function drop(proto: 'udp' | 'tcp'): void {
  dropOutput('-p', proto, '--dport', String(TURN));
}

/** A browser that trusts the relay's self-signed certificate in `state`. */
function launchTrusting(state: string) {
  const spki = spkiHash(fs.readFileSync(`${state}/tls-cert.pem`, 'utf8'));
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...PARTICIPANT_ARGS, `--ignore-certificate-errors-spki-list=${spki}`],
  });
}

/** Ada and Bob in a relay-only call on `relay`; both tiles must say `path`. Returns Ada's page. */
async function relayedCall(browser: import('@playwright/test').Browser, relay: RelayProcess, room: string, path: string) {
  const url = relay.url(`/?room=${room}&ice=relay`);
  const ada = await openParticipant(browser, room, 'Ada', { url });
  const bob = await openParticipant(browser, room, 'Bob', { url });
  await expectMediaFlowing(ada, ['Bob']);
  await expectMediaFlowing(bob, ['Ada']);
  for (const [page, other] of [[ada.page, 'Bob'], [bob.page, 'Ada']] as const) {
    await expect(remoteTile(page, other).getByTestId('path')).toHaveText(path, { timeout: 10_000 });
  }
  return ada.page;
}

test.afterEach(async () => {
  for (const rule of dropped.splice(0)) iptablesInTestNs(['-D', ...rule]);
  await stopAllRelays();
});

for (const [transport, blocked] of [
  ['TCP', ['udp']],
  ['TLS', ['udp', 'tcp']],
] as const) {
  test(`no ${blocked.join(' or ').toUpperCase()} to the TURN port: a relay-only call connects through TURN over ${transport}`, async ({ room }, testInfo) => {
    const state = testInfo.outputPath('state');
    const relay = new RelayProcess(PORT, {
      https: true,
      extra: [
        '--tls-self-signed', '--state-dir', state,
        '--turn-listen', `127.0.0.1:${TURN}`, '--turn-tls-listen', `127.0.0.1:${TURN + 1}`,
        '--turn-allow-loopback', '--turn-ports', `${TURN + 100}-${TURN + 200}`,
      ],
    });
    await relay.start();
    for (const proto of blocked) drop(proto);
    const browser = await launchTrusting(state);
    try {
      await relayedCall(browser, relay, room, `Relayed (${transport})`);
    } finally {
      await browser.close();
    }
  });
}

test('--turn-on-https, only TCP 443 open: the page loads from 443 and the call is relayed through it', async ({ room }, testInfo) => {
  const state = testInfo.outputPath('state');
  const relay = new RelayProcess(443, {
    https: true,
    extra: [
      '--tls-self-signed', '--state-dir', state, '--turn-on-https',
      '--turn-listen', `127.0.0.1:${TURN}`, '--turn-allow-loopback', '--turn-ports', `${TURN + 100}-${TURN + 200}`,
    ],
  });
  await relay.start();
  // No UDP but the TURN server's own relay leg (between its relay ports,
  // inside the server machine), and no TCP but to and from port 443.
  dropOutput('-p', 'udp', '!', '--sport', `${TURN + 100}:${TURN + 200}`);
  dropOutput('-p', 'tcp', '-m', 'multiport', '!', '--ports', '443');
  const browser = await launchTrusting(state);
  try {
    const ada = await relayedCall(browser, relay, room, 'Relayed (TLS)');
    const turns = await ada.evaluate(async () => {
      const out: string[] = [];
      for (const pc of window.__pcs) {
        (await pc.getStats()).forEach((s: any) => {
          if (s.type === 'local-candidate' && s.candidateType === 'relay') out.push(`${s.relayProtocol} ${s.url}`);
        });
      }
      return out;
    });
    expect(turns.length, 'relay candidates').toBeGreaterThan(0);
    for (const t of turns) expect(t).toBe('tls turns:127.0.0.1:443?transport=tcp');
  } finally {
    await browser.close();
  }
});
