/** Small IP helpers for src_ip/dst_ip comparisons: parsing, equality, networks. */
import { isIPv4, isIPv6 } from 'node:net';

/** 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; undefined when not an address. */
export function ipBytes(s: string): Uint8Array | undefined {
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (isIPv4(s)) return Uint8Array.from(s.split('.').map(Number));
  if (!isIPv6(s)) return undefined;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = s
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const words = [...h, ...Array(fill).fill('0'), ...r].map((w) => Number.parseInt(w, 16));
  const out = new Uint8Array(16);
  words.forEach((w, k) => {
    out[2 * k] = w >> 8;
    out[2 * k + 1] = w & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  // IPv4-mapped ::ffff:a.b.c.d compares as IPv4
  if (out.slice(0, 10).every((b) => b === 0) && out[10] === 0xff && out[11] === 0xff) return out.slice(12);
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Canonical text of an address (IPv6 compressed, IPv4-mapped as IPv4). */
export function normalizeIp(s: string): string | undefined {
  const b = ipBytes(s);
  if (!b) return undefined;
  if (b.length === 4) return b.join('.');
  const words: string[] = [];
  for (let k = 0; k < 16; k += 2) words.push(((b[k]! << 8) | b[k + 1]!).toString(16));
  // compress the longest run of zeros
  let best = -1;
  let bestLen = 0;
  for (let k = 0; k < 8; ) {
    if (words[k] !== '0') {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && words[e] === '0') e++;
    if (e - k > bestLen && e - k > 1) {
      best = k;
      bestLen = e - k;
    }
    k = e;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** Mask bytes from a prefix length or a netmask; throws a message when invalid. */
export function maskBytes(len: number, mask: number | string): Uint8Array {
  const out = new Uint8Array(len);
  let bits: number;
  if (typeof mask === 'number') {
    bits = mask;
    if (!Number.isInteger(bits) || bits < 0 || bits > len * 8) {
      throw new Error(`mask length ${mask} out of range (0–${len * 8})`);
    }
  } else {
    const m = ipBytes(mask);
    if (!m || m.length !== len) throw new Error(`netmask '${mask}' does not match the address family`);
    // must be contiguous ones
    let seenZero = false;
    bits = 0;
    for (const byte of m) {
      for (let b = 7; b >= 0; b--) {
        const one = (byte >> b) & 1;
        if (one && seenZero) throw new Error(`netmask '${mask}' is not contiguous`);
        if (one) bits++;
        else seenZero = true;
      }
    }
  }
  for (let k = 0; k < len; k++) {
    const take = Math.max(0, Math.min(8, bits - 8 * k));
    out[k] = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
  }
  return out;
}

/** A predicate "is this address inside ip/mask"; the network is checked when built. */
export function netMatcher(ip: string, mask: number | string): (addr: string) => boolean {
  const net = ipBytes(ip);
  if (!net) throw new Error(`'${ip}' is not an IP address`);
  const m = maskBytes(net.length, mask);
  const want = net.map((b, k) => b & m[k]!);
  return (addr) => {
    const a = ipBytes(addr);
    if (!a || a.length !== want.length) return false;
    for (let k = 0; k < a.length; k++) if ((a[k]! & m[k]!) !== want[k]) return false;
    return true;
  };
}
