/**
 * SER's database driver modules. SER scripts `loadmodule "mysql.so"` (or `postgres.so`)
 * before the modules that use a database; here the driver follows from each module's
 * `db_url`, so loading them is accepted and changes nothing. They export no functions.
 */
import { defineModule } from '../../core/module.js';

export const mysql = defineModule({ name: 'mysql' });
export const postgres = defineModule({ name: 'postgres' });
