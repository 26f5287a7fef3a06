/**
 * A Map that holds at most `max` entries and drops the oldest (by last set) past that.
 *
 * Why not `map.delete(map.keys().next().value)`: V8 leaves a deleted entry as a hole at its
 * place until the table is rehashed, and a new iterator starts at the front, crossing every
 * hole. A cache whose oldest entries keep being deleted has its holes exactly there: with
 * 10,000 entries each eviction cost about 5 µs instead of 0.1. Here the order of arrival is
 * kept in an array beside the map, and entries that were deleted or set again since are
 * skipped there, each once.
 */
interface Slot<V> {
  v: V;
  /** which arrival in `order` is this entry's current one */
  seq: number;
}

export class BoundedMap<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  /** arrivals, oldest first from `head`; one is stale when its key was deleted or set again */
  private order: K[] = [];
  private orderSeq: number[] = [];
  private head = 0;
  private seq = 0;

  constructor(readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(k: K): V | undefined {
    return this.map.get(k)?.v;
  }

  has(k: K): boolean {
    return this.map.has(k);
  }

  /** stores (as the newest entry) and drops the oldest while more than `max` are held */
  set(k: K, v: V): void {
    const seq = ++this.seq;
    // delete first: set() alone would keep the key at its old place in the map's order
    this.map.delete(k);
    this.map.set(k, { v, seq });
    this.order.push(k);
    this.orderSeq.push(seq);
    while (this.map.size > this.max) this.dropOldest();
    this.compact();
  }

  delete(k: K): boolean {
    return this.map.delete(k);
  }

  clear(): void {
    this.map.clear();
    this.order = [];
    this.orderSeq = [];
    this.head = 0;
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  private dropOldest(): void {
    while (this.head < this.order.length) {
      const k = this.order[this.head];
      const seq = this.orderSeq[this.head];
      this.head++;
      if (this.map.get(k)?.seq === seq) {
        this.map.delete(k);
        return;
      }
    }
  }

  /** keeps the arrival list within twice the live entries (plus slack), whatever the pattern */
  private compact(): void {
    // the consumed front
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.orderSeq = this.orderSeq.slice(this.head);
      this.head = 0;
    }
    // stale arrivals (keys deleted or set again)
    const held = this.order.length - this.head;
    if (held <= 2 * this.map.size + 1024) return;
    // the map iterates in insertion order, which set() keeps equal to arrival order
    const order: K[] = [];
    const orderSeq: number[] = [];
    for (const [k, s] of this.map) {
      order.push(k);
      orderSeq.push(s.seq);
    }
    this.order = order;
    this.orderSeq = orderSeq;
    this.head = 0;
  }
}
