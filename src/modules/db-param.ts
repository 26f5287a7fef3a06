/**
 * The `db_url` module parameter every database-backed module shares: the URL is parsed when
 * the modparam is read, so a malformed one is a load-time error with file:line:column
 * (seed 001 Example 4-8's `mysql:ser:heslo@localhost/ser`) rather than a start-up failure.
 */
import { FixupError, type ParamSpec, type ParamValue } from '../core/module.js';
import { DEFAULT_DB_URL, isDbError, parseDbUrl } from '../db/index.js';

/** `def` '' means "no database unless one is given" (permissions, as in SER). */
export function dbUrlParam(def: string = DEFAULT_DB_URL): ParamSpec {
  return {
    type: 'string',
    default: def,
    validate(v: ParamValue) {
      if (def === '' && v === '') return;
      try {
        parseDbUrl(String(v));
      } catch (e) {
        if (isDbError(e)) throw new FixupError(e.message);
        throw e;
      }
    },
  };
}
