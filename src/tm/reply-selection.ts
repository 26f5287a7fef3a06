/**
 * Choosing the reply a forking proxy sends upstream, RFC 3261 §16.7 step 6:
 * a 6xx wins; otherwise the lowest class; within 4xx, 401/407/415/420/484 are preferred;
 * a 503 is sent as 500. Between equals the lowest code, then the earliest branch (SER's
 * t_pick_branch picks the lowest code as well).
 */

const PREFERRED_4XX = new Set([401, 407, 415, 420, 484]);

function rank(code: number): number {
  const cls = Math.floor(code / 100);
  if (cls === 6) return 0;
  // lower class first, preferred 4xx before the other 4xx
  return cls * 2 + (cls === 4 && !PREFERRED_4XX.has(code) ? 1 : 0);
}

/** Index of the winning final code among `codes` (each ≥ 300), or -1 for an empty list. */
export function pickBranch(codes: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c < 300) continue;
    if (best < 0) {
      best = i;
      continue;
    }
    const b = codes[best];
    const rc = rank(c);
    const rb = rank(b);
    if (rc < rb || (rc === rb && c < b)) best = i;
  }
  return best;
}

/** "If the selected response is a 503 (Service Unavailable), the proxy MUST generate a 500" */
export function upstreamCode(code: number): number {
  return code === 503 ? 500 : code;
}
