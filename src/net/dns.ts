/**
 * RFC 3263 (Locating SIP Servers), client side, with a TTL cache.
 *
 * `SipResolver.resolve({ host, port?, transport?, maddr?, secure? })` returns the ordered
 * list of next hops `{ proto, ip, port, af }` to try in turn (failover order):
 *
 * - the target host is `maddr` when given, else `host`;
 * - numeric host: that address; transport from the parameter, else UDP (TLS for sips);
 *   port as given, else 5060 (5061 for TLS);
 * - port given: A/AAAA of the host only, transport as above;
 * - transport given, no port: SRV for that transport (`_sip._udp`, `_sip._tcp`, `_sips._tcp`),
 *   falling back to A/AAAA on the default port;
 * - neither: NAPTR (services SIP+D2U, SIP+D2T, SIPS+D2T; flag "s"; by order, then
 *   preference), each replacement resolved by SRV; without usable NAPTR records, SRV for
 *   each supported transport (`_sip._udp`, `_sip._tcp` — or `_sips._tcp` for sips); without
 *   SRV records, A/AAAA on the default port with UDP (TLS for sips).
 *
 * SRV records are ordered by priority, and within a priority by the RFC 2782 weighted
 * random selection. A/AAAA results come in the order of `families` (IPv4 first by default).
 *
 * Cache: A/AAAA use the TTLs from the answers (clamped to [minTtlSec, maxTtlSec]); NAPTR,
 * SRV and PTR use `defaultTtlSec` (Node does not report their TTLs). NXDOMAIN/NODATA are
 * cached for `negativeTtlSec`; timeouts and server failures for `errorTtlSec`. Concurrent
 * lookups of one name share a single query. The clock (`now`) and the random source are
 * injectable for tests.
 */
import { BoundedMap } from '../core/bounded-map.js';
import { promises as dnsp } from 'node:dns';
import { ipFamily, normalizeIp, stripBrackets } from './ip.js';

export type DnsProto = 'udp' | 'tcp' | 'tls';

export interface DnsTarget {
  proto: DnsProto;
  ip: string;
  port: number;
  af: 4 | 6;
}

/** The parts of a SIP/SIPS URI that RFC 3263 looks at (parsed by the caller). */
export interface SipUriTarget {
  host: string;
  port?: number;
  /** the `transport` URI parameter (udp, tcp, tls, …), any case */
  transport?: string;
  /** the `maddr` URI parameter */
  maddr?: string;
  /** true for a sips: URI */
  secure?: boolean;
}

export interface SipResolverOptions {
  /** DNS servers, e.g. ['127.0.0.1:5353']; default: the system's */
  servers?: string[];
  /** per-try timeout (default 2000 ms) */
  timeoutMs?: number;
  /** tries per query (default 2) */
  tries?: number;
  /** TTL for NAPTR, SRV and PTR answers (default 300 s) */
  defaultTtlSec?: number;
  /** TTL for NXDOMAIN / NODATA (default 30 s) */
  negativeTtlSec?: number;
  /** TTL for timeouts and server failures (default 5 s) */
  errorTtlSec?: number;
  /** clamp for TTLs taken from answers (defaults 0 and 86 400 s) */
  minTtlSec?: number;
  maxTtlSec?: number;
  /** cache entries kept at most (default 10 000; the oldest goes first) */
  maxEntries?: number;
  /** address families to look up, in order (default [4, 6]) */
  families?: (4 | 6)[];
  /** transports we can use; others are skipped (default udp, tcp, tls) */
  transports?: DnsProto[];
  /** do NAPTR lookups (default true) */
  naptr?: boolean;
  /** do SRV lookups (default true) */
  srv?: boolean;
  /** clock in milliseconds (default Date.now) */
  now?: () => number;
  /** random source in [0, 1) for SRV weights (default Math.random) */
  random?: () => number;
}

export interface DnsStats {
  /** queries sent to the DNS */
  queries: number;
  /** answers served from the cache (positive or negative) */
  cacheHits: number;
  /** of those, negative entries */
  negativeHits: number;
  /** NXDOMAIN / NODATA answers */
  notFound: number;
  /** timeouts, server failures, refused */
  errors: number;
  /** entries in the cache now */
  entries: number;
}

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

interface NaptrRecord {
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
  order: number;
  preference: number;
}

interface CacheEntry {
  exp: number;
  value: unknown[];
  negative: boolean;
}

const SERVICE_PROTO: Record<string, DnsProto> = { 'SIP+D2U': 'udp', 'SIP+D2T': 'tcp', 'SIPS+D2T': 'tls' };

const SRV_PREFIX: Record<DnsProto, string> = { udp: '_sip._udp.', tcp: '_sip._tcp.', tls: '_sips._tcp.' };

const NOT_FOUND = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND', 'NODATA']);

/** Default port for a transport: 5061 for TLS, else 5060. */
export function defaultPort(proto: DnsProto): number {
  return proto === 'tls' ? 5061 : 5060;
}

/**
 * Orders SRV records per RFC 2782: by priority ascending; within one priority, repeatedly
 * picks a record with probability proportional to its weight (zero weights placed first,
 * picked only when the random number is 0).
 */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const sorted = [...records].sort((a, b) => a.priority - b.priority);
  const out: SrvRecord[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j].priority === sorted[i].priority) j++;
    const group = sorted.slice(i, j);
    // zero-weight records first (stable), as RFC 2782 asks
    group.sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (group.length > 0) {
      let total = 0;
      for (const r of group) total += r.weight;
      const pick = Math.floor(random() * (total + 1));
      let run = 0;
      let k = 0;
      for (; k < group.length; k++) {
        run += group[k].weight;
        if (run >= pick) break;
      }
      if (k >= group.length) k = group.length - 1;
      out.push(group[k]);
      group.splice(k, 1);
    }
    i = j;
  }
  return out;
}

function normName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

export class SipResolver {
  private readonly resolver: dnsp.Resolver;
  private readonly cache: BoundedMap<string, CacheEntry>;
  private readonly inflight = new Map<string, Promise<unknown[]>>();
  private readonly o: Required<Omit<SipResolverOptions, 'servers'>>;
  private readonly st: Omit<DnsStats, 'entries'> = {
    queries: 0,
    cacheHits: 0,
    negativeHits: 0,
    notFound: 0,
    errors: 0,
  };

  constructor(opts: SipResolverOptions = {}) {
    this.o = {
      timeoutMs: opts.timeoutMs ?? 2000,
      tries: opts.tries ?? 2,
      defaultTtlSec: opts.defaultTtlSec ?? 300,
      negativeTtlSec: opts.negativeTtlSec ?? 30,
      errorTtlSec: opts.errorTtlSec ?? 5,
      minTtlSec: opts.minTtlSec ?? 0,
      maxTtlSec: opts.maxTtlSec ?? 86_400,
      maxEntries: Math.max(1, opts.maxEntries ?? 10_000),
      families: opts.families ?? [4, 6],
      transports: opts.transports ?? ['udp', 'tcp', 'tls'],
      naptr: opts.naptr ?? true,
      srv: opts.srv ?? true,
      now: opts.now ?? Date.now,
      random: opts.random ?? Math.random,
    };
    this.cache = new BoundedMap(this.o.maxEntries);
    this.resolver = new dnsp.Resolver({ timeout: this.o.timeoutMs, tries: this.o.tries });
    if (opts.servers) this.resolver.setServers(opts.servers);
  }

  /** Counters and the cache size. */
  getStats(): DnsStats {
    return { ...this.st, entries: this.cache.size };
  }

  /** Empties the cache. */
  flush(): void {
    this.cache.clear();
  }

  /** Cancels queries in flight (they resolve as errors, i.e. empty results). */
  close(): void {
    this.resolver.cancel();
  }

  /** The ordered next hops for a SIP/SIPS URI (RFC 3263 §4). Empty when nothing resolves. */
  /**
   * The part of `resolve` that needs no DNS: a numeric host (or maddr), or a transport we
   * do not serve. Undefined when a name has to be looked up.
   */
  resolveNow(u: SipUriTarget): DnsTarget[] | undefined {
    const p = this.plan(u);
    if (Array.isArray(p)) return p;
    return undefined;
  }

  /** RFC 3263 §4: the transport, port and host of a URI; a list when no lookup is needed */
  private plan(
    u: SipUriTarget,
  ): DnsTarget[] | { host: string; proto: DnsProto | undefined; fallbackProto: DnsProto; port?: number } {
    const secure = !!u.secure;
    const host = stripBrackets(u.maddr || u.host);
    let proto: DnsProto | undefined;
    if (u.transport) {
      const t = u.transport.toLowerCase();
      if (t === 'udp') proto = secure ? undefined : 'udp';
      else if (t === 'tcp') proto = secure ? 'tls' : 'tcp';
      else if (t === 'tls') proto = 'tls';
      if (!proto) return []; // sctp, ws, or udp with sips: not for us
    }
    const fallbackProto: DnsProto = proto ?? (secure ? 'tls' : 'udp');
    if (proto && !this.o.transports.includes(proto)) return [];
    const port = u.port && u.port > 0 ? u.port : undefined;
    const af = ipFamily(host);
    if (af !== 0) {
      return [{ proto: fallbackProto, ip: normalizeIp(host), port: port ?? defaultPort(fallbackProto), af }];
    }
    return { host, proto, fallbackProto, port };
  }

  async resolve(u: SipUriTarget): Promise<DnsTarget[]> {
    const p = this.plan(u);
    if (Array.isArray(p)) return p;
    const { host, proto, fallbackProto, port } = p;
    const secure = !!u.secure;
    if (port !== undefined) return this.addresses(host, port, fallbackProto);

    if (proto) {
      if (this.o.srv) {
        const viaSrv = await this.srvTargets(SRV_PREFIX[proto] + host, proto);
        if (viaSrv.length) return viaSrv;
      }
      return this.addresses(host, defaultPort(proto), proto);
    }

    if (this.o.naptr) {
      const viaNaptr = await this.naptrTargets(host, secure);
      if (viaNaptr.length) return viaNaptr;
    }
    if (this.o.srv) {
      const protos: DnsProto[] = (secure ? ['tls'] : ['udp', 'tcp']).filter((p) =>
        this.o.transports.includes(p as DnsProto),
      ) as DnsProto[];
      const lists = await Promise.all(protos.map((p) => this.srvTargets(SRV_PREFIX[p] + host, p)));
      const all = dedupe(lists.flat());
      if (all.length) return all;
    }
    if (!this.o.transports.includes(fallbackProto)) return [];
    return this.addresses(host, defaultPort(fallbackProto), fallbackProto);
  }

  /** A/AAAA of a name (or the literal itself), in `families` order. */
  async addresses(name: string, port: number, proto: DnsProto): Promise<DnsTarget[]> {
    const host = stripBrackets(name);
    const af = ipFamily(host);
    if (af !== 0) return [{ proto, ip: normalizeIp(host), port, af }];
    const lists = await Promise.all(
      this.o.families.map(async (fam) => {
        const ips = (await this.lookup(fam === 4 ? 'A' : 'AAAA', host)) as string[];
        return ips.map((ip): DnsTarget => ({ proto, ip, port, af: fam }));
      }),
    );
    return lists.flat();
  }

  /** SRV records of a name, ordered (priority, then weighted random). */
  async srv(name: string): Promise<SrvRecord[]> {
    const recs = (await this.lookup('SRV', name)) as SrvRecord[];
    return orderSrv(recs, this.o.random);
  }

  /** Reverse lookup (PTR) of an IP address, for SER's rev_dns; empty when none. */
  async reverse(ip: string): Promise<string[]> {
    const addr = normalizeIp(ip);
    if (ipFamily(addr) === 0) return [];
    return (await this.lookup('PTR', addr)) as string[];
  }

  private async srvTargets(name: string, proto: DnsProto): Promise<DnsTarget[]> {
    const recs = await this.srv(name);
    const usable = recs.filter((r) => r.name !== '' && r.name !== '.');
    const lists = await Promise.all(usable.map((r) => this.addresses(r.name, r.port, proto)));
    return dedupe(lists.flat());
  }

  private async naptrTargets(host: string, secure: boolean): Promise<DnsTarget[]> {
    const recs = (await this.lookup('NAPTR', host)) as NaptrRecord[];
    const usable = recs
      .filter((r) => {
        if (r.flags.toLowerCase() !== 's' || !r.replacement) return false;
        const p = SERVICE_PROTO[r.service.toUpperCase()];
        if (!p || !this.o.transports.includes(p)) return false;
        return !secure || p === 'tls';
      })
      .sort((a, b) => a.order - b.order || a.preference - b.preference);
    if (!this.o.srv) return [];
    const lists = await Promise.all(
      usable.map((r) => this.srvTargets(r.replacement, SERVICE_PROTO[r.service.toUpperCase()])),
    );
    return dedupe(lists.flat());
  }

  /** Cached query; resolves to [] on NXDOMAIN, NODATA and errors (never rejects). */
  private lookup(type: 'A' | 'AAAA' | 'SRV' | 'NAPTR' | 'PTR', rawName: string): Promise<unknown[]> {
    const name = type === 'PTR' ? rawName : normName(rawName);
    const key = `${type} ${name}`;
    const now = this.o.now();
    const hit = this.cache.get(key);
    if (hit) {
      if (hit.exp > now) {
        this.st.cacheHits++;
        if (hit.negative) this.st.negativeHits++;
        return Promise.resolve(hit.value);
      }
      this.cache.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.query(type, name).then(
      ({ value, ttlSec, negative }) => {
        this.inflight.delete(key);
        this.store(key, value, ttlSec, negative);
        return value;
      },
      (e: unknown) => {
        this.inflight.delete(key);
        const code = (e as { code?: string } | null)?.code ?? '';
        if (NOT_FOUND.has(code)) {
          this.st.notFound++;
          this.store(key, [], this.o.negativeTtlSec, true);
        } else {
          this.st.errors++;
          this.store(key, [], this.o.errorTtlSec, true);
        }
        return [] as unknown[];
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  private store(key: string, value: unknown[], ttlSec: number, negative: boolean): void {
    if (ttlSec <= 0) return;
    // past maxEntries the oldest entry goes
    this.cache.set(key, { exp: this.o.now() + ttlSec * 1000, value, negative });
  }

  private async query(
    type: 'A' | 'AAAA' | 'SRV' | 'NAPTR' | 'PTR',
    name: string,
  ): Promise<{ value: unknown[]; ttlSec: number; negative: boolean }> {
    this.st.queries++;
    const r = this.resolver;
    const clamp = (t: number) => Math.min(this.o.maxTtlSec, Math.max(this.o.minTtlSec, t));
    switch (type) {
      case 'A':
      case 'AAAA': {
        const recs =
          type === 'A' ? await r.resolve4(name, { ttl: true }) : await r.resolve6(name, { ttl: true });
        if (recs.length === 0) return { value: [], ttlSec: this.o.negativeTtlSec, negative: true };
        let ttl = Number.POSITIVE_INFINITY;
        for (const x of recs) ttl = Math.min(ttl, x.ttl);
        return { value: recs.map((x) => normalizeIp(x.address)), ttlSec: clamp(ttl), negative: false };
      }
      case 'SRV': {
        const recs = await r.resolveSrv(name);
        const value: SrvRecord[] = recs.map((x) => ({
          name: normName(x.name),
          port: x.port,
          priority: x.priority,
          weight: x.weight,
        }));
        return { value, ttlSec: this.o.defaultTtlSec, negative: value.length === 0 };
      }
      case 'NAPTR': {
        const recs = await r.resolveNaptr(name);
        return { value: recs, ttlSec: this.o.defaultTtlSec, negative: recs.length === 0 };
      }
      case 'PTR': {
        const names = await r.reverse(name);
        return { value: names.map(normName), ttlSec: this.o.defaultTtlSec, negative: names.length === 0 };
      }
    }
  }
}

function dedupe(list: DnsTarget[]): DnsTarget[] {
  const seen = new Set<string>();
  const out: DnsTarget[] = [];
  for (const t of list) {
    const k = `${t.proto}|${t.ip}|${t.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(t);
  }
  return out;
}
