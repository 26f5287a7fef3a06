/** Name and version as SER prints them (`ser -V`, Server header, `serctl version`). */
import { arch, platform } from 'node:os';

export const NAME = 'ser';
export const VERSION = '0.9.0-ts';
export const FULL_VERSION = `${NAME} ${VERSION} (${arch()}/${platform()})`;

/** SER's server signature: `Server: Sip EXpress router (0.9.0 (i386/linux))` */
export const SERVER_HDR = `Sip EXpress router (${VERSION} (${arch()}/${platform()}))`;
