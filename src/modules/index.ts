/** Every module this build has, by the name `loadmodule "…/name.so"` selects. */
import core from '../core/actions.js';
import acc from './acc/index.js';
import type { ModuleDef } from '../core/module.js';
import auth from './auth/index.js';
import authDb from './auth_db/index.js';
import { mysql, postgres } from './dbdrivers/index.js';
import domain from './domain/index.js';
import exec from './exec/index.js';
import group from './group/index.js';
import maxfwd from './maxfwd/index.js';
import permissions from './permissions/index.js';
import registrar from './registrar/index.js';
import rr from './rr/index.js';
import sl from './sl/index.js';
import textops from './textops/index.js';
import tm from './tm/index.js';
import { uri, uriDb } from './uri/index.js';
import usrloc from './usrloc/index.js';
import xlog from './xlog/index.js';

// biome-ignore lint/suspicious/noExplicitAny: the registry holds modules of every state type
export const modules: Record<string, ModuleDef<any>> = {
  core,
  sl,
  maxfwd,
  textops,
  exec,
  xlog,
  mysql,
  postgres,
  usrloc,
  registrar,
  rr,
  tm,
  acc,
  auth,
  auth_db: authDb,
  uri,
  uri_db: uriDb,
  group,
  domain,
  permissions,
};
