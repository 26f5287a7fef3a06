/**
 * SER's `struct cell`: one server transaction (the UAS side of a proxied request) and the
 * client transactions of its branches (the UAC side), with what the script armed for it.
 */
import type { Origin } from '../core/api.js';
import type { MsgContext } from '../core/context.js';
import type { TimerHandle } from '../core/timer.js';
import type { SendTarget } from '../net/transports.js';
import type { SipMessage } from '../sip/message.js';
import type { ClientTransaction } from './client-transaction.js';
import type { ServerTransaction } from './server-transaction.js';

/** One branch of a forked request (SER's `struct ua_client`). */
export interface CellBranch {
  readonly index: number;
  readonly target: SendTarget;
  /** our Via branch toward this hop */
  readonly branch: string;
  readonly tx: ClientTransaction;
  /** final status of this branch (0: pending); a local one (408, 503 …) has no reply */
  code: number;
  reason: string;
  /** the final non-2xx reply received, kept for reply selection */
  reply: SipMessage | undefined;
  /** a CANCEL is owed once a provisional reply arrives (§9.1: never before one) */
  cancelWanted: boolean;
  cancelSent: boolean;
  /** t_replicate(): replies stop here */
  readonly replicate: boolean;
}

export class Cell {
  readonly branches: CellBranch[] = [];
  /**
   * The request's context: the request as the script left it, its AVPs, its source. Undefined
   * once the cell is shed (see shed()); code that may run after the final reply must not need it.
   */
  ctx: MsgContext | undefined;
  /** the request's method, and whether it is an INVITE: kept when the cell is shed */
  readonly method: string;
  readonly isInvite: boolean;
  /** the key of tm's index of INVITEs whose 2xx went upstream (e2eKey), once known */
  acceptedKey: string | undefined;
  /** script flags: as the request route left them, then as failure_route changed them */
  flags: number;
  /** the Request-URI the request route left */
  ruri: string;
  onFailure: string | undefined;
  onReply: string | undefined;
  /** the request as it goes downstream (script edits applied, Max-Forwards decremented) */
  outBase: SipMessage | undefined;
  /** a final reply went upstream */
  finalSent = false;
  finalCode = 0;
  /** the winning code failure_route sees through t_check_status */
  pickedCode = 0;
  /** the upstream CANCEL arrived */
  cancelled = false;
  /** a 6xx arrived: no new branches (§16.7 step 4 / 6) */
  got6xx = false;
  inFailure = false;
  /** replies of t_replicate()'s copy go nowhere; the request itself was answered elsewhere */
  replicateOnly = false;
  /** a 2xx was relayed upstream (the cell is in the ACK index) */
  relayed2xx = false;
  completedAt = 0;
  /** To-tag of our local replies (stable across retransmissions) */
  localTag: string | undefined;
  guard: TimerHandle | undefined;
  /** estimated bytes counted by tm's admission (overload.ts) until the cell is released */
  cost = 0;

  constructor(
    readonly id: number,
    readonly key: string,
    ctx: MsgContext,
    readonly origin: Origin,
    readonly uas: ServerTransaction,
    readonly createdAt: number,
  ) {
    this.ctx = ctx;
    this.method = ctx.msg.method;
    this.isInvite = this.method === 'INVITE';
    this.flags = ctx.flags;
    this.ruri = ctx.ruri;
  }

  /** the request (undefined once shed) */
  get request(): SipMessage | undefined {
    return this.ctx?.msg;
  }

  /**
   * The final reply went upstream: drop the request, its parsed headers and context, and the
   * branches' replies. What stays is what the wait state needs (wt_timer, 5 s by default):
   * the keys, the last reply's bytes, the way back, the branches' transactions. Done at once,
   * the parsed request dies young; kept, every one was copied twice by the scavenger and
   * promoted to the old generation with its cell.
   */
  shed(): void {
    this.ctx = undefined;
    this.outBase = undefined;
    // a slice of the request text would keep all of it alive
    this.ruri = '';
    for (const b of this.branches) b.reply = undefined;
  }

  /** branches still waiting for a final reply (replicas do not hold the reply back) */
  get pending(): number {
    let n = 0;
    for (const b of this.branches) if (b.code === 0 && !b.replicate) n++;
    return n;
  }
}
