// A network of its own for one browser: a namespace inside the test
// namespace, joined to it by a veth pair with TEST-NET-2 addresses that exist
// nowhere else (test namespace 198.51.100.1, the isolated one 198.51.100.2).
// Its browser is launched through a wrapper that runs Chromium inside it, so
// its network can be cut (UDP dropped, or the link taken down) and restored
// while the other browsers carry on.
//
// Only inside scripts/e2e.sh's namespace (MESHCAST_E2E_NS): the namespace is
// named "$MESHCAST_E2E_NS-<label>", and scripts/e2e.sh deletes any such
// namespace a failed run leaves behind.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM_PATH, PARTICIPANT_ARGS } from '../chromium';

export const HOST_ADDR = '198.51.100.1';
export const ISOLATED_ADDR = '198.51.100.2';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs iptables in the test namespace itself; refuses anywhere else. */
export function iptablesInTestNs(args: string[]): void {
  const ns = process.env.MESHCAST_E2E_NS;
  const here = execFileSync('ip', ['netns', 'identify'], { encoding: 'utf8' }).trim();
  if (!ns || here !== ns) throw new Error(`refusing to touch iptables outside the test namespace (in "${here}")`);
  run('iptables', ['-w', ...args]);
}

export class IsolatedNet {
  /** Chromium wrapper that runs the browser inside the namespace. */
  readonly wrapper: string;
  private hostIf = 'mc-iso0';
  private destroyed = false;

  private constructor(readonly name: string) {
    this.wrapper = path.join(os.tmpdir(), `${name}-chromium.sh`);
  }

  static create(label: string): IsolatedNet {
    const parent = process.env.MESHCAST_E2E_NS;
    if (!parent) throw new Error('MESHCAST_E2E_NS is not set: run the tests with scripts/e2e.sh');
    // Make sure this process really is in that namespace before adding links to it.
    const here = run('ip', ['netns', 'identify']).trim();
    if (here !== parent) throw new Error(`refusing to add a veth: this process is in network namespace "${here}", not "${parent}"`);
    const outside = Object.values(os.networkInterfaces())
      .flatMap((a) => a ?? [])
      .filter((a) => !a.internal);
    if (outside.length > 0) throw new Error(`refusing: the test namespace already has non-loopback addresses (${outside.map((a) => a.address)})`);

    const net = new IsolatedNet(`${parent}-${label}`);
    try {
      run('ip', ['netns', 'add', net.name]);
      fs.mkdirSync(`/etc/netns/${net.name}`, { recursive: true });
      fs.writeFileSync(`/etc/netns/${net.name}/resolv.conf`, 'nameserver 127.0.0.1\n');
      run('ip', ['-n', net.name, 'link', 'set', 'lo', 'up']);
      run('ip', ['link', 'add', net.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', net.name]);
      run('ip', ['addr', 'add', `${HOST_ADDR}/24`, 'dev', net.hostIf]);
      run('ip', ['link', 'set', net.hostIf, 'up']);
      run('ip', ['-n', net.name, 'addr', 'add', `${ISOLATED_ADDR}/24`, 'dev', 'eth0']);
      run('ip', ['-n', net.name, 'link', 'set', 'eth0', 'up']);
      fs.writeFileSync(net.wrapper, `#!/bin/sh\nexec ip netns exec '${net.name}' '${CHROMIUM_PATH}' "$@"\n`, { mode: 0o755 });
    } catch (e) {
      net.destroy();
      throw e;
    }
    return net;
  }

  /** Flags for a browser in the namespace that opens pages on http://HOST_ADDR:port. */
  browserArgs(port: number): string[] {
    return [
      ...PARTICIPANT_ARGS.map((a) => (a.startsWith('--host-resolver-rules=') ? `${a} , EXCLUDE ${HOST_ADDR}` : a)),
      // getUserMedia needs a secure origin; this one is plain http on a TEST-NET address.
      `--unsafely-treat-insecure-origin-as-secure=http://${HOST_ADDR}:${port}`,
    ];
  }

  private iptables(args: string[]): void {
    run('ip', ['netns', 'exec', this.name, 'iptables', '-w', ...args]);
  }

  /** Drops every UDP packet in and out of the namespace (media and ICE); TCP (signaling) still works. */
  cutUdp(): void {
    this.iptables(['-I', 'INPUT', '-p', 'udp', '-j', 'DROP']);
    this.iptables(['-I', 'OUTPUT', '-p', 'udp', '-j', 'DROP']);
  }

  restoreUdp(): void {
    this.iptables(['-D', 'INPUT', '-p', 'udp', '-j', 'DROP']);
    this.iptables(['-D', 'OUTPUT', '-p', 'udp', '-j', 'DROP']);
  }

  /**
   * Resets the namespace's TCP connections to `port` (`ss -K`): both ends
   * see the connection end without a WebSocket close frame, as when a NAT
   * or a proxy drops it.
   */
  resetTcp(port: number): void {
    run('ip', ['netns', 'exec', this.name, 'ss', '-K', 'dport', '=', `:${port}`]);
  }

  /** Takes the namespace's only link down (nothing in or out, no FIN/RST either) or up again. */
  setLink(up: boolean): void {
    run('ip', ['-n', this.name, 'link', 'set', 'eth0', up ? 'up' : 'down']);
  }

  /**
   * Deletes the namespace (and with it the veth pair). Close its browser
   * first; whatever still runs inside was started by this test and is killed.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      const pids = run('ip', ['netns', 'pids', this.name])
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    } catch {
      // no such namespace
    }
    try {
      run('ip', ['netns', 'del', this.name]);
    } catch {
      // not made, or already gone
    }
    // The host end goes with its peer; make sure.
    try {
      run('ip', ['link', 'del', this.hostIf]);
    } catch {
      // gone with the namespace
    }
    fs.rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
    fs.rmSync(this.wrapper, { force: true });
  }
}
