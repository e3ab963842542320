// NAT simulation. The test namespace plays the internet: the relay (and its
// TURN/STUN server) listen there. Each site is a router namespace that NATs
// (iptables MASQUERADE) for a client namespace behind it, where a browser
// runs through a wrapper, as in netns.ts:
//
//   client 10.0.N.2 ── 10.0.N.1 router 203.0.113.(4N+2) ── 203.0.113.(4N+1) test namespace
//
// A "cone" router keeps a connection's source port (Linux MASQUERADE maps
// endpoint-independently when it can) and, like every conntrack NAT, lets in
// only replies to what went out: two of them connect through STUN by hole
// punching. A "symmetric" router (`--random-fully`) gives every destination
// a new port, so the address STUN saw is useless to the other side.
// Private addresses are not routed between sites: only srflx or relay
// candidates can work. Every address is TEST-NET-3 or 10/8 and exists only
// in these namespaces.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM_PATH, PARTICIPANT_ARGS } from '../chromium';

export type NatKind = 'cone' | 'symmetric';

/** Where the relay is reached from every site (the test namespace's end of site 0's link). */
export const PUBLIC_ADDR = '203.0.113.1';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function parentNamespace(): string {
  const parent = process.env.MESHCAST_E2E_NS;
  if (!parent) throw new Error('MESHCAST_E2E_NS is not set: run the tests with scripts/e2e.sh');
  const here = run('ip', ['netns', 'identify']).trim();
  if (here !== parent) throw new Error(`refusing to add links: this process is in network namespace "${here}", not "${parent}"`);
  return parent;
}

export class NatSite {
  /** Chromium wrapper that runs the browser in the client namespace. */
  readonly wrapper: string;
  readonly router: string;
  readonly client: string;
  readonly clientAddr: string;
  readonly wanAddr: string;
  private readonly hostIf: string;
  private destroyed = false;

  private constructor(parent: string, readonly index: number, readonly kind: NatKind) {
    this.router = `${parent}-nat${index}r`;
    this.client = `${parent}-nat${index}c`;
    this.hostIf = `mc-nat${index}`;
    this.clientAddr = `10.0.${index + 1}.2`;
    this.wanAddr = `203.0.113.${4 * index + 2}`;
    this.wrapper = path.join(os.tmpdir(), `${this.client}-chromium.sh`);
  }

  /** Site `index` (0 or 1; site 0 carries PUBLIC_ADDR) behind a NAT of `kind`. */
  static create(index: number, kind: NatKind): NatSite {
    const parent = parentNamespace();
    const site = new NatSite(parent, index, kind);
    try {
      site.build();
    } catch (e) {
      site.destroy();
      throw e;
    }
    return site;
  }

  private build(): void {
    const { router, client, hostIf, index } = this;
    const hostAddr = `203.0.113.${4 * index + 1}`;
    const lan = `10.0.${index + 1}`;
    for (const ns of [router, client]) {
      run('ip', ['netns', 'add', ns]);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    fs.mkdirSync(`/etc/netns/${client}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${client}/resolv.conf`, 'nameserver 127.0.0.1\n');
    // The internet's side: the test namespace forwards between the routers.
    run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'wan', 'netns', router]);
    run('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    run('ip', ['link', 'set', hostIf, 'up']);
    // The router: WAN towards the test namespace, LAN towards the client, NAT.
    run('ip', ['-n', router, 'addr', 'add', `${this.wanAddr}/30`, 'dev', 'wan']);
    run('ip', ['-n', router, 'link', 'set', 'wan', 'up']);
    run('ip', ['-n', router, 'route', 'add', 'default', 'via', hostAddr]);
    run('ip', ['link', 'add', 'lan', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    run('ip', ['-n', router, 'addr', 'add', `${lan}.1/24`, 'dev', 'lan']);
    run('ip', ['-n', router, 'link', 'set', 'lan', 'up']);
    run('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const masquerade = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE'];
    if (this.kind === 'symmetric') masquerade.push('--random-fully');
    run('ip', ['netns', 'exec', router, 'iptables', '-w', ...masquerade]);
    // Nothing from the internet reaches the LAN unless it answers something
    // that went out (conntrack). Unsolicited packets to the router itself are
    // dropped silently, as home routers do; dropped before conntrack confirms
    // them, they leave no entry behind. (An entry for the peer's first,
    // unsolicited check would take the port the router needs for its own
    // reply, and hole punching would never succeed.)
    run('ip', ['netns', 'exec', router, 'iptables', '-w', '-A', 'FORWARD', '-i', 'wan', '-m', 'conntrack', '!', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'DROP']);
    run('ip', ['netns', 'exec', router, 'iptables', '-w', '-A', 'INPUT', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP']);
    // The client: one private address, default route through its router.
    run('ip', ['-n', client, 'addr', 'add', `${lan}.2/24`, 'dev', 'eth0']);
    run('ip', ['-n', client, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', client, 'route', 'add', 'default', 'via', `${lan}.1`]);
    fs.writeFileSync(this.wrapper, `#!/bin/sh\nexec ip netns exec '${client}' '${CHROMIUM_PATH}' "$@"\n`, { mode: 0o755 });
  }

  /** Browser flags for pages on http://PUBLIC_ADDR:port, gathering only the client's real address. */
  browserArgs(port: number): string[] {
    return [
      ...PARTICIPANT_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection').map((a) =>
        a.startsWith('--host-resolver-rules=') ? `${a} , EXCLUDE ${PUBLIC_ADDR}` : a,
      ),
      `--unsafely-treat-insecure-origin-as-secure=http://${PUBLIC_ADDR}:${port}`,
    ];
  }

  /** The NAT's translations so far (conntrack), for failure messages. */
  conntrack(): string {
    try {
      return run('ip', ['netns', 'exec', this.router, 'cat', '/proc/net/nf_conntrack']);
    } catch {
      try {
        return run('ip', ['netns', 'exec', this.router, 'iptables', '-w', '-t', 'nat', '-L', '-v', '-n']);
      } catch {
        return '(no conntrack view)';
      }
    }
  }

  /** Deletes both namespaces; whatever still runs in them was started by this test and is killed. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of [this.client, this.router]) {
      try {
        for (const pid of run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number)) {
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
        run('ip', ['netns', 'del', ns]);
      } catch {
        // not made, or already gone
      }
    }
    try {
      run('ip', ['link', 'del', this.hostIf]);
    } catch {
      // gone with the router
    }
    fs.rmSync(`/etc/netns/${this.client}`, { recursive: true, force: true });
    fs.rmSync(this.wrapper, { force: true });
  }
}
