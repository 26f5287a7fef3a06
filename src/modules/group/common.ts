/**
 * What group, domain and permissions share: parameter checks (a db_url must parse and a
 * table or column name must be a plain identifier, both at modparam time, so a typo is
 * a load-time error with file:line:column rather than a failed query per message) and
 * opening the database at start-up.
 */
import type { CoreApi } from '../../core/api.js';
import { FixupError, type ParamSpec, type ParamValue } from '../../core/module.js';
import { checkTableVersion, type Db, isDbError, openDb, tableDef } from '../../db/index.js';

export { dbUrlParam } from '../db-param.js';

/** a table or column name (schema-qualified `a.b` allowed) */
export function identParam(def: string): ParamSpec {
  return {
    type: 'string',
    default: def,
    validate(v: ParamValue) {
      if (!/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/.test(String(v)) || String(v).length > 64)
        throw new FixupError(`"${v}" is not a valid table or column name`);
    },
  };
}

export function flagParam(def: 0 | 1): ParamSpec {
  return {
    type: 'int',
    default: def,
    validate(v: ParamValue) {
      if (Number(v) !== 0 && Number(v) !== 1) throw new FixupError('must be 0 or 1');
    },
  };
}

/**
 * Opens a module's database and checks its table's version row, as SER modules did in
 * mod_init. A malformed URL, an SQLite file that cannot be opened, or a table that is
 * missing or has another version stop start-up; a database server that does not answer
 * does not (the functions answer false until it is back), matching usrloc.
 */
export async function openModuleDb(
  core: CoreApi,
  module: string,
  url: string,
  tables: readonly { name: string; layout: string }[],
): Promise<Db> {
  const db = await openDb(url, {
    connectTimeoutMs: 3000,
    queryTimeoutMs: 5000,
    onWarning: (m) => core.log.warn(`${module}: ${m}`),
  });
  for (const t of tables) {
    try {
      await checkTableVersion(db, t.name, tableDef(t.layout)?.version);
    } catch (e) {
      if (isDbError(e) && (e.code === 'connect' || e.code === 'timeout')) {
        core.log.warn(`${module}: database ${db.url} not reachable at start-up (${e.message})`);
        continue;
      }
      await db.close().catch(() => {});
      throw new Error(`${module}: ${(e as Error).message} (db_url ${db.url})`);
    }
  }
  return db;
}
