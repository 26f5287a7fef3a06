/** Messages about a script: where, what, and the text that was written there. */
import type { Pos } from './ast.js';

export type DiagnosticCode =
  | 'syntax'
  | 'unknown-option'
  | 'bad-option-value'
  | 'module-not-available'
  | 'module-not-loaded'
  | 'module-dependency'
  | 'unknown-param'
  | 'bad-param-value'
  | 'unknown-function'
  | 'function-not-loaded'
  | 'wrong-arity'
  | 'bad-argument'
  | 'wrong-route-kind'
  | 'unknown-route'
  | 'duplicate-block'
  | 'bad-regex'
  | 'bad-operand'
  | 'dns';

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly pos: Pos;
  readonly message: string;
  /** the offending text as written */
  readonly text: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.pos.file}:${d.pos.line}:${d.pos.col}`;
  return d.text ? `${where}: ${d.message}\n    ${d.text}` : `${where}: ${d.message}`;
}

/** A syntax error: the parser stops at the first one, as SER's does. */
export class ScriptSyntaxError extends Error {
  override name = 'ScriptSyntaxError';
  constructor(
    readonly pos: Pos,
    readonly detail: string,
    readonly text: string,
  ) {
    super(`${pos.file}:${pos.line}:${pos.col}: ${detail}`);
  }
  toDiagnostic(): Diagnostic {
    return { code: 'syntax', pos: this.pos, message: this.detail, text: this.text };
  }
}

/** Damerau-free edit distance, small strings only. */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[n]!;
}

/** The nearest candidate when it is close enough to be a plausible typo. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(word.length / 3));
  if (bestD <= limit) return best;
  // a prefix/substring relation also counts ("fifo_db" → "fifo_db_url")
  if (word.length >= 4 && (best.includes(w) || w.includes(best))) return best;
  return undefined;
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = nearest(word, candidates);
  return s ? `; did you mean '${s}'?` : '';
}
