/**
 * Timer values of the transaction layer, in milliseconds. RFC 3261 §17 names T1, T2 and T4;
 * SER replaces Timer B/F with fr_timer, Timer C with fr_inv_timer, and the RFC's "absorb
 * retransmissions" waits (Timer D, J, L, M) with wt_timer.
 */
export interface TmTimers {
  /** RTT estimate, first retransmission interval (SER retr_timer1) */
  t1: number;
  /** cap of non-INVITE and reply retransmission intervals (SER retr_timer2) */
  t2: number;
  /** how long the network may hold a message (Timer I and K) */
  t4: number;
  /** no final reply: non-INVITE, and INVITE before any provisional (SER fr_timer) */
  fr: number;
  /** INVITE after a provisional reply: Timer C (SER fr_inv_timer) */
  frInv: number;
  /** a completed transaction stays this long to absorb late retransmissions (SER wt_timer) */
  wait: number;
}

/** SER 0.9's defaults: fr_timer 30 s, fr_inv_timer 120 s, wt_timer 5 s, retr_timer1 500 ms, retr_timer2 4 s */
export const DEFAULT_TIMERS: Readonly<TmTimers> = {
  t1: 500,
  t2: 4000,
  t4: 5000,
  fr: 30_000,
  frInv: 120_000,
  wait: 5_000,
};
