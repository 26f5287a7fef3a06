/**
 * Admission of new transactions under overload. SER's transactions live in a fixed shared
 * memory segment: past it t_relay fails, the script answers an error, and the server keeps
 * running. Here they live on V8's heap, which grows until the process dies (a flood of
 * INVITEs to a destination that never answers keeps each one for fr_timer), so tm refuses
 * new transactions itself, for either of two reasons:
 *  - max_transactions: as many live server transactions as the operator allows;
 *  - max_heap: the live transactions' estimated size past that share of V8's heap limit.
 * The size is an estimate kept per transaction (txCost), not a reading of the heap: garbage
 * left by expired transactions is only collected once something is promoted, and refused
 * requests promote nothing, so a heap reading would keep refusing after the flood.
 * Retransmissions, ACKs, CANCELs and replies of existing transactions are never refused,
 * so the calls already set up finish and free their memory.
 */
import { getHeapStatistics } from 'node:v8';

/**
 * Measured on Node 20 (V8 heap after a full GC, 10,000 INVITEs relayed to a UAS that never
 * answers): 9.0 KB per transaction for a 560-byte INVITE, 16.8 KB for a 4.6 KB one.
 */
const TX_FIXED = 8192;
const TX_PER_BYTE = 2;

/** estimated heap bytes of a transaction whose request has `rawLength` bytes */
export function txCost(rawLength: number): number {
  return TX_FIXED + TX_PER_BYTE * rawLength;
}

export function v8HeapLimit(): number {
  return getHeapStatistics().heap_size_limit;
}

export type Refusal = 'count' | 'memory';

export interface AdmissionOptions {
  /** live server transactions allowed; 0: no count limit */
  maxTransactions: number;
  /** percent of the heap limit the live transactions may take by their estimate; 0: no limit */
  maxHeapPercent: number;
  /** V8's heap limit in bytes (default: this process's) */
  heapLimit?: number;
  /** told when refusing starts and when it stops (why undefined) */
  onChange?: (why: Refusal | undefined, detail: string) => void;
}

export class Admission {
  /** estimated bytes of the live transactions */
  bytes = 0;
  /** transactions refused since start */
  refused = 0;
  readonly budget: number;
  private state: Refusal | undefined;

  constructor(private readonly o: AdmissionOptions) {
    this.budget = o.maxHeapPercent > 0 ? ((o.heapLimit ?? v8HeapLimit()) * o.maxHeapPercent) / 100 : 0;
  }

  /**
   * May a transaction of `cost` bytes start with `live` server transactions alive? When it
   * may, its cost is counted until give(cost).
   */
  take(live: number, cost: number): boolean {
    let why: Refusal | undefined;
    if (this.o.maxTransactions > 0 && live >= this.o.maxTransactions) why = 'count';
    else if (this.budget > 0 && this.bytes + cost > this.budget) why = 'memory';
    if (why !== this.state) {
      this.state = why;
      const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
      const size =
        this.budget > 0 ? `, about ${mb(this.bytes)} of the ${mb(this.budget)} max_heap allows` : '';
      this.o.onChange?.(why, `${live} live transactions${size}`);
    }
    if (why !== undefined) {
      this.refused++;
      return false;
    }
    this.bytes += cost;
    return true;
  }

  /** a transaction counted by take() is gone */
  give(cost: number): void {
    this.bytes -= cost;
  }
}
