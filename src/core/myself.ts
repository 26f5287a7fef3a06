/**
 * `myself`: the names and addresses this server answers to — every listen address,
 * the names found for them, and every `alias=` (with or without port).
 * Host comparison is case-insensitive; IPv6 forms are normalised.
 */
import { ipFamily, normalizeIp } from '../net/ip.js';

export interface MyselfEntry {
  host: string;
  /** 0 = any port */
  port: number;
}

/** lower-case, strip IPv6 brackets, compress IPv6 so that equal addresses compare equal */
export function normHost(host: string): string {
  if (ipFamily(host) !== 0) return normalizeIp(host);
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

export class Myself {
  /** host → set of ports (0 = any port) */
  private readonly hosts = new Map<string, Set<number>>();
  /** addresses of our sockets, for src_ip==myself / dst_ip==myself */
  private readonly ips = new Set<string>();

  addAddress(ip: string, port: number): void {
    this.ips.add(normHost(ip));
    this.add(ip, port);
  }

  add(host: string, port = 0): void {
    const h = normHost(host);
    let ports = this.hosts.get(h);
    if (!ports) this.hosts.set(h, (ports = new Set()));
    ports.add(port);
  }

  /**
   * Is host[:port] us? A URI without port means 5060 (5061 for sips) per RFC 3261,
   * so the caller passes the effective port; aliases given without port match any port.
   */
  matches(host: string, port: number): boolean {
    // the stored keys are normHost's output and normHost(key) is key: a host written as
    // stored (the usual case) skips the IP test and normalisation
    const ports = this.hosts.get(host) ?? this.hosts.get(normHost(host));
    if (!ports) return false;
    return ports.has(0) || ports.has(port);
  }

  hasIp(ip: string): boolean {
    return this.ips.has(normHost(ip));
  }

  entries(): MyselfEntry[] {
    const out: MyselfEntry[] = [];
    for (const [host, ports] of this.hosts) for (const port of ports) out.push({ host, port });
    return out;
  }
}
