/**
 * IP literal helpers: detection, normalisation (RFC 5952 IPv6 compression,
 * `[…]` stripping, IPv4-mapped IPv6 → IPv4) and formatting for URIs / Via.
 */
import { isIP } from 'node:net';

/** `[::1]` → `::1`; anything else unchanged. */
export function stripBrackets(host: string): string {
  return host.length > 1 && host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d
    ? host.slice(1, -1)
    : host;
}

/** 4 or 6 for an IP literal (brackets allowed around IPv6), 0 otherwise. */
export function ipFamily(host: string): 0 | 4 | 6 {
  // every send and several script tests ask this of an IPv4 address: a loop over its
  // characters costs a fraction of node:net's regular expression (1.2 % of an OPTIONS)
  const c0 = host.charCodeAt(0);
  if (c0 >= 48 && c0 <= 57 && isIPv4Text(host)) return 4;
  return isIP(stripBrackets(host)) as 0 | 4 | 6;
}

/** A dotted quad exactly as node:net's isIPv4 accepts it: 0-255, no leading zeros. */
export function isIPv4Text(s: string): boolean {
  const n = s.length;
  if (n < 7 || n > 15) return false;
  let parts = 0;
  let i = 0;
  for (;;) {
    const st = i;
    let v = 0;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + c - 48;
      i++;
    }
    const len = i - st;
    if (len === 0 || len > 3 || v > 255 || (len > 1 && s.charCodeAt(st) === 48)) return false;
    parts++;
    if (i === n) return parts === 4;
    if (parts === 4 || s.charCodeAt(i) !== 46) return false;
    i++;
  }
}

/** True when `host` is an IPv4 or IPv6 literal (IPv6 optionally in brackets). */
export function isIpLiteral(host: string): boolean {
  return ipFamily(host) !== 0;
}

const MAPPED_DOTTED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/** Expands an IPv6 literal to 8 numeric groups; undefined if not IPv6. Zone ids are dropped. */
export function ipv6Groups(addr: string): number[] | undefined {
  let s = stripBrackets(addr);
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (isIP(s) !== 6) return undefined;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const o = last.split('.').map(Number);
    s =
      s.slice(0, lastColon + 1) + ((o[0] << 8) | o[1]).toString(16) + ':' + ((o[2] << 8) | o[3]).toString(16);
  }
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16));
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = parse(s.slice(0, dbl));
    const rest = parse(s.slice(dbl + 2));
    const fill = 8 - head.length - rest.length;
    groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest];
  } else {
    groups = parse(s);
  }
  return groups.length === 8 ? groups : undefined;
}

/** RFC 5952 canonical text for 8 groups: lower case, no leading zeros, longest zero run (≥ 2) as `::`. */
export function compressIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/**
 * Canonical form of an IP literal, for comparing and as map keys: brackets removed,
 * IPv6 compressed per RFC 5952, IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into the
 * plain IPv4 address unless `unmap` is false. Non-IP strings are returned lower-cased.
 */
export function normalizeIp(addr: string, unmap = true): string {
  if (isIPv4Text(addr)) return addr;
  const s = stripBrackets(addr);
  const fam = isIP(s);
  if (fam === 4) return s;
  if (fam !== 6) return s.toLowerCase();
  if (unmap) {
    const m = MAPPED_DOTTED.exec(s);
    if (m) return m[1];
  }
  const g = ipv6Groups(s);
  if (!g) return s.toLowerCase();
  if (unmap && g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  return compressIpv6(g);
}

/** True when the IPv6 literal is an IPv4-mapped address (`::ffff:a.b.c.d`). */
export function isIpv4Mapped(addr: string): boolean {
  const g = ipv6Groups(addr);
  return !!g && g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** Same address, whatever the spelling. */
export function sameIp(a: string, b: string): boolean {
  return normalizeIp(a) === normalizeIp(b);
}

/** `0.0.0.0` or `::` (the wildcard bind addresses). */
export function isAnyAddress(ip: string): boolean {
  const n = normalizeIp(ip, false);
  return n === '0.0.0.0' || n === '::';
}

/** Host as written in a URI or Via: IPv6 literals in brackets. */
export function formatHost(host: string): string {
  const s = stripBrackets(host);
  return isIP(s) === 6 ? `[${s}]` : s;
}

/** `host:port` with IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${formatHost(host)}:${port}`;
}
