/**
 * serctl as an operator runs it: a child process against a running ser (FIFO) and a
 * database (SQLite; MariaDB when one answers on 127.0.0.1:3306).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { parseSerArgs } from '../../src/cli/ser.js';
import { type RunningServer, startServer } from '../../src/core/server.js';
import { MemorySink } from '../../src/core/log.js';
import { defineModule } from '../../src/core/module.js';
import { openDb } from '../../src/db/index.js';
import { modules } from '../../src/modules/index.js';
import { buildReply } from '../../src/sip/reply.js';
import { freePort, type Ser, startSer, testChildren, UdpPeer } from './harness.js';

const SERCTL = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));
const uniq = () => `${process.pid}_${randomBytes(4).toString('hex')}`;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

interface Run {
  code: number;
  out: string;
  err: string;
}

function serctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SERCTL, ...args],
      { env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv, timeout: 15000 },
      (e, out, err) => {
        const code = e ? (typeof e.code === 'number' ? e.code : 99) : 0;
        resolve({ code, out, err });
      },
    );
  });
}

describe('serctl against a running ser', () => {
  const fifo = `/tmp/ser_ctl_fifo_${uniq()}`;
  let ser: Ser;
  const env = () => ({ SER_FIFO: fifo });
  before(async () => {
    ser = await startSer(
      `fifo="${fifo}"\nloadmodule "sl.so"\nroute { sl_send_reply("404", "Not Found"); }\n`,
    );
  });
  after(async () => {
    await ser.stop();
  });

  it('serctl fifo uptime (M1) and fifo which (M2)', async () => {
    const r = await serctl(['fifo', 'uptime'], env());
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Now: .+\nUp Since: .+\nUp time: \d+ \[sec\]\n$/);
    const w = await serctl(['fifo', 'which'], env());
    assert.equal(w.out.split('\n').slice(0, 5).join(' '), 'ps which version uptime print');
    assert.match(w.out, /^sl_stats$/m);
  });

  it("serctl fifo foobar prints SER's 500 line and exits 5", async () => {
    const r = await serctl(['fifo', 'foobar'], env());
    assert.equal(r.out, "500 command 'foobar' not available\n");
    assert.equal(r.code, 5);
  });

  it('serctl ps (M9) and --json', async () => {
    const r = await serctl(['ps'], env());
    assert.equal(r.code, 0);
    assert.match(
      r.out,
      testChildren() > 1
        ? new RegExp(
            `^0 ${ser.proc.pid} attendant\n1 \\d+ receiver child=0 sock=0 @ 127\\.0\\.0\\.1::${ser.port} \\(udp\\)`,
          )
        : new RegExp(
            `^0 ${ser.proc.pid} attendant, receiver sock=0 @ 127\\.0\\.0\\.1::${ser.port} \\(udp\\)`,
          ),
    );
    const j = await serctl(['--json', 'ps'], env());
    const ps = JSON.parse(j.out) as { no: number; pid: number; desc: string }[];
    assert.equal(ps[0].pid, ser.proc.pid);
  });

  it('serctl monitor --count 1 (M10): the three blocks of Example 5-2', async () => {
    const r = await serctl(['monitor', '--count', '1'], env());
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.equal(lines[0], '[cycle #: 1; if constant make sure server lives and fifo is on]');
    assert.match(lines[1], /^Server: Sip EXpress router/);
    assert.match(lines[2], /^Now: /);
    assert.match(lines[4], /^Up time: \d+ \[sec\]$/);
    for (const h of ['Transaction Statistics', 'Stateless Server Statistics', 'UsrLoc Stats'])
      assert.ok(lines.includes(h), h);
    assert.ok(lines.includes('n/a (tm is not loaded)'));
    assert.ok(lines.includes('200: 0 202: 0 2xx: 0'));
    assert.match(
      r.out,
      /^400: \d+ 401: \d+ 403: \d+ 404: \d+ 407: \d+ 408: \d+ 483: \d+ 4xx: \d+ 500: \d+ 5xx: \d+$/m,
    );
    assert.match(r.out, /^failures: 0$/m);
    const m = await serctl(['moni', '--count', '2', '--interval', '0.1', '--json'], env());
    const cycles = m.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      cycles.map((c) => c.cycle),
      [1, 2],
    );
    assert.equal(typeof cycles[0].stats.sl['404'], 'number');
  });

  it('serctl ping sends OPTIONS over UDP and prints the final reply', async () => {
    const r = await serctl(['ping', `sip:someone@127.0.0.1:${ser.port}`], env());
    assert.match(r.out, /^SIP\/2\.0 404 Not Found \(\d+\.\d ms from 127\.0\.0\.1:\d+\)\n$/);
    assert.equal(r.code, 5);
  });

  it("serctl version prints serctl's and the server's version", async () => {
    const r = await serctl(['version'], env());
    assert.match(r.out, /^serctl \S+\nserver: Sip EXpress router/);
  });

  it("ul add without usrloc: SER's troubleshooting hint and exit 5", async () => {
    const r = await serctl(['alias', 'add', '1234', 'sip:john.doe@foo.bar'], env());
    assert.equal(r.code, 5);
    assert.match(r.err, /usrloc is not loaded.*lookup\("aliases"\)/);
  });
});

describe("serctl ping through a server with tm (t_uac_dlg, as SER's serctl)", () => {
  const fifo = `/tmp/ser_ctl_ping_${uniq()}`;
  let ser: Ser;
  let uas: UdpPeer;
  before(async () => {
    uas = await UdpPeer.open('127.0.0.2');
    ser = await startSer(
      `fifo="${fifo}"\nloadmodule "sl.so"\nloadmodule "tm.so"\nmodparam("tm", "fr_timer", 2)\nroute { t_relay(); }\n`,
    );
  });
  after(async () => {
    uas.close();
    await ser.stop();
  });

  it('the OPTIONS leaves from the server and its final reply is printed', async () => {
    const run = serctl(['ping', `sip:probe@127.0.0.2:${uas.port}`], {
      SER_FIFO: fifo,
      SIP_DOMAIN: 'example.net',
    });
    const req = await uas.nextMsg(5000);
    assert.equal(req.method, 'OPTIONS');
    assert.equal(req.vias.length, 1);
    assert.equal(req.vias[0].port, ser.port); // sent by ser, not by serctl
    assert.match(req.header('from') ?? '', /^<sip:daemon@example\.net>;tag=/);
    uas.send(buildReply(req, 200, 'Alive', { toTag: 'u1' }), ser.port);
    const r = await run;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^SIP\/2\.0 200 Alive \(\d+\.\d ms, sent by ser's t_uac_dlg\)\n$/);
  });

  it('a destination that does not answer: the 408 from tm and exit 5', async () => {
    const silent = await UdpPeer.open('127.0.0.3');
    try {
      const r = await serctl(['ping', `sip:probe@127.0.0.3:${silent.port}`, '--timeout', '10000'], {
        SER_FIFO: fifo,
      });
      assert.equal(r.code, 5, r.out + r.err);
      assert.match(r.out, /^SIP\/2\.0 408 /);
    } finally {
      silent.close();
    }
  });
});

describe('serctl without a server', () => {
  it('a missing FIFO: a clear message and exit 2', async () => {
    const fifo = `/tmp/ser_ctl_none_${uniq()}`;
    for (const args of [['fifo', 'uptime'], ['ps'], ['ul', 'show', 'x'], ['monitor', '--count', '1']]) {
      const r = await serctl(args, { SER_FIFO: fifo });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err, new RegExp(`FIFO ${fifo} does not exist \\(is ser running with fifo=`));
    }
  });

  it('a FIFO nobody reads (ser died): exit 2, "ser is not running"', async () => {
    const { mkfifo } = await import('../../src/mgmt/fifo.js');
    const fifo = `/tmp/ser_ctl_dead_${uniq()}`;
    mkfifo(fifo, 0o600);
    const r = await serctl(['fifo', 'uptime'], { SER_FIFO: fifo });
    const { unlinkSync } = await import('node:fs');
    unlinkSync(fifo);
    assert.equal(r.code, 2);
    assert.match(r.err, /ser is not running: nobody reads the FIFO/);
  });

  it('usage: no command → usage text and exit 1; unknown command → exit 1', async () => {
    const r = await serctl([]);
    assert.equal(r.code, 1);
    assert.match(r.out, /^usage:\n\* subscribers \*/);
    assert.equal((await serctl(['frobnicate'])).code, 1);
    assert.equal((await serctl(['add', 'only-one'], { SIP_DOMAIN: 'foo.bar' })).code, 1);
  });
});

/** usrloc stand-in with SER's FIFO replies, registered for an in-process server. */
const fakeUl = defineModule<Map<string, Map<string, string[]>>>({
  name: 'fake_usrloc',
  init: () =>
    new Map([
      ['location', new Map()],
      ['aliases', new Map()],
    ]),
  mgmt: {
    ul_add: {
      help: 'table user contact expires q',
      run(st, a) {
        const t = st.get(a[0]);
        if (!t) return { code: 400, reason: `table '${a[0]}' does not exist` };
        t.set(a[1], [...(t.get(a[1]) ?? []), a[2]]);
        return { code: 200, reason: 'Added to table', body: `('${a[1]}','${a[2]}') to '${a[0]}'` };
      },
    },
    ul_show_contact: {
      help: 'table user',
      run(st, a) {
        const c = st.get(a[0])?.get(a[1]);
        if (!c) return { code: 404, reason: `Username ${a[1]} in table ${a[0]} not found` };
        return { code: 200, reason: 'ok', body: c.map((u) => `<${u}>;q=1.00;expires=1073741812`).join('\n') };
      },
    },
    ul_rm: {
      help: 'table user',
      run(st, a) {
        st.get(a[0])?.delete(a[1]);
        return { code: 200, reason: `user (${a[0]}, ${a[1]}) deleted` };
      },
    },
  },
});

describe('serctl ul / alias through module FIFO commands (M5, M6)', () => {
  const fifo = `/tmp/ser_ctl_ul_${uniq()}`;
  let srv: RunningServer;
  before(async () => {
    modules.fake_usrloc = fakeUl;
    const port = await freePort();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: new MemorySink(),
      configText: `listen=udp:127.0.0.1:${port}\nfork=no\nfifo="${fifo}"\nloadmodule "fake_usrloc.so"\nroute { drop; }\n`,
    });
  });
  after(async () => {
    await srv.stop();
    delete modules.fake_usrloc;
  });

  it("which lists the module's commands", async () => {
    const r = await serctl(['fifo', 'which'], { SER_FIFO: fifo });
    for (const c of ['ul_add', 'ul_show_contact', 'ul_rm']) assert.match(r.out, new RegExp(`^${c}$`, 'm'));
  });

  it('ul add / show / rm / show print what seed 003 shows', async () => {
    const e = { SER_FIFO: fifo };
    const add = await serctl(['ul', 'add', 'newuser', 'sip:666@gateway.foo.bar'], e);
    assert.equal(
      add.out,
      "sip:666@gateway.foo.bar\n200 Added to table\n('newuser','sip:666@gateway.foo.bar') to 'location'\n",
    );
    assert.equal(add.code, 0);
    const show = await serctl(['ul', 'show', 'newuser'], e);
    assert.equal(show.out, '<sip:666@gateway.foo.bar>;q=1.00;expires=1073741812\n');
    const rm = await serctl(['ul', 'rm', 'newuser'], e);
    assert.equal(rm.out, '200 user (location, newuser) deleted\n');
    const gone = await serctl(['ul', 'show', 'newuser'], e);
    assert.equal(gone.out, '404 Username newuser in table location not found\n');
    assert.equal(gone.code, 4);
  });

  it('alias add / show / rm go to the aliases table', async () => {
    const e = { SER_FIFO: fifo };
    const add = await serctl(['alias', 'add', '1234', 'sip:john.doe@foo.bar'], e);
    assert.equal(
      add.out,
      "sip:john.doe@foo.bar\n200 Added to table\n('1234','sip:john.doe@foo.bar') to 'aliases'\n",
    );
    assert.equal(
      (await serctl(['alias', 'show', '1234'], e)).out,
      '<sip:john.doe@foo.bar>;q=1.00;expires=1073741812\n',
    );
    assert.equal((await serctl(['alias', 'rm', '1234'], e)).out, '200 user (aliases, 1234) deleted\n');
    const j = await serctl(['--json', 'alias', 'show', '1234'], e);
    assert.equal(JSON.parse(j.out).status, 404);
  });
});

async function mariadbUp(): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((res) => {
    const c = connect(3306, '127.0.0.1');
    c.setTimeout(500, () => {
      c.destroy();
      res(false);
    });
    c.on('connect', () => {
      c.destroy();
      res(true);
    });
    c.on('error', () => res(false));
  });
}

function dbSuite(
  name: string,
  setup: () => Promise<{ url: string; cleanup: () => Promise<void> } | undefined>,
) {
  describe(`serctl database commands (${name})`, () => {
    let url = '';
    let cleanup: (() => Promise<void>) | undefined;
    let skip = false;
    const env = (extra: Record<string, string> = {}) => ({
      SER_DBURL: url,
      SIP_DOMAIN: 'foo.bar',
      PW: '',
      ...extra,
    });
    before(async () => {
      const s = await setup();
      if (!s) skip = true;
      else ({ url, cleanup } = s);
    });
    after(async () => {
      await cleanup?.();
    });

    it('db create, db show (json and text)', async (t) => {
      if (skip) return t.skip('no database');
      const c = await serctl(['db', 'create'], env());
      assert.equal(c.code, 0, c.err);
      const s = await serctl(['db', 'show'], env());
      assert.equal(s.code, 0, s.err);
      assert.match(s.out, /^\| subscriber +\| yes +\| 5 +\| 5 +\| ok +\|$/m);
      assert.match(s.out, /schema ok/);
      const j = JSON.parse((await serctl(['--json', 'db', 'show'], env())).out);
      assert.equal(j.ok, true);
    });

    it('add / passwd / rm (M7): the rows carry HA1 and HA1b for SIP_DOMAIN', async (t) => {
      if (skip) return t.skip('no database');
      const add = await serctl(['add', 'newuser', 'secret', 'newuser@foo.bar'], env());
      assert.equal(add.out, 'new user added\n', add.err);
      const db = await openDb(url);
      try {
        let row = await db.selectOne<Record<string, string>>('subscriber', {
          where: { username: 'newuser' },
        });
        assert.equal(row?.domain, 'foo.bar');
        assert.equal(row?.ha1, md5('newuser:foo.bar:secret'));
        assert.equal(row?.ha1b, md5('newuser@foo.bar:foo.bar:secret'));
        assert.equal(row?.password, '');
        assert.equal(row?.email_address, 'newuser@foo.bar');
        const dup = await serctl(['add', 'newuser', 'x', 'y@z'], env());
        assert.equal(dup.code, 5);
        assert.match(dup.err, /already exists/);
        const pw = await serctl(['passwd', 'newuser', 'newpassword'], env());
        assert.equal(pw.out, 'password change succeeded\n');
        row = await db.selectOne<Record<string, string>>('subscriber', { where: { username: 'newuser' } });
        assert.equal(row?.ha1, md5('newuser:foo.bar:newpassword'));
        const mail = await serctl(['mail', 'newuser'], env());
        assert.equal(mail.out, 'newuser@foo.bar\n');
        const rm = await serctl(['rm', 'newuser'], env());
        assert.equal(rm.out, 'user removed\n');
        assert.equal(await db.count('subscriber', { username: 'newuser' }), 0);
        const again = await serctl(['rm', 'newuser'], env());
        assert.equal(again.code, 4);
        const stored = await serctl(['--store-password', 'add', 'plain', 'pw1', 'p@foo.bar'], env());
        assert.equal(stored.code, 0);
        row = await db.selectOne<Record<string, string>>('subscriber', { where: { username: 'plain' } });
        assert.equal(row?.password, 'pw1');
      } finally {
        await db.close();
      }
    });

    it('SIP_DOMAIN missing: exit 1 with the reason', async (t) => {
      if (skip) return t.skip('no database');
      const r = await serctl(['add', 'u', 'p', 'e'], { SER_DBURL: url, PW: '' });
      assert.equal(r.code, 1);
      assert.match(r.err, /SIP_DOMAIN is not set/);
    });

    it('acl grant / show / revoke (M8)', async (t) => {
      if (skip) return t.skip('no database');
      await serctl(['add', 'john', 'pw', 'john@foo.bar'], env());
      const g = await serctl(['acl', 'grant', 'john', 'int'], env());
      assert.equal(g.code, 0, g.err);
      const lines = g.out.trim().split('\n');
      assert.match(lines[0], /^\+-+\+-+\+-+\+$/);
      assert.match(lines[1], /^\| user +\| grp +\| last_modified +\|$/);
      assert.match(lines[3], /^\| john +\| int +\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\|$/);
      const db = await openDb(url);
      assert.equal(await db.count('grp', { username: 'john', grp: 'int' }), 1);
      await db.close();
      const j = JSON.parse((await serctl(['--json', 'acl', 'show', 'john'], env())).out);
      assert.deepEqual(
        j.map((r: { grp: string }) => r.grp),
        ['int'],
      );
      assert.equal((await serctl(['acl', 'grant', 'nobody', 'int'], env())).code, 4);
      const rv = await serctl(['acl', 'revoke', 'john', 'int'], env());
      assert.equal(rv.code, 0);
      assert.equal((await serctl(['acl', 'show', 'john'], env())).code, 4);
      assert.equal((await serctl(['acl', 'revoke', 'john'], env())).code, 4);
    });

    it('domain add / show / rm', async (t) => {
      if (skip) return t.skip('no database');
      assert.equal((await serctl(['domain', 'add', 'Foo.Bar'], env())).code, 0);
      assert.equal((await serctl(['domain', 'add', 'foo.bar'], env())).code, 5);
      const s = await serctl(['domain', 'show'], env());
      assert.match(s.out, /^\| foo\.bar +\| \d{4}-/m);
      assert.deepEqual(
        JSON.parse((await serctl(['--json', 'domain', 'show'], env())).out).map(
          (d: { domain: string }) => d.domain,
        ),
        ['foo.bar'],
      );
      assert.equal((await serctl(['domain', 'rm', 'foo.bar'], env())).code, 0);
      assert.equal((await serctl(['domain', 'rm', 'foo.bar'], env())).code, 4);
    });

    it('showdb reads the location table', async (t) => {
      if (skip) return t.skip('no database');
      const db = await openDb(url);
      await db.insert('location', {
        username: 'jiri',
        domain: 'foo.bar',
        contact: 'sip:jiri@1.2.3.4',
        q: 0.5,
      });
      await db.close();
      const r = await serctl(['showdb', 'jiri'], env());
      assert.match(r.out, /\| jiri +\| foo\.bar +\| sip:jiri@1\.2\.3\.4 +\|/);
      assert.equal((await serctl(['showdb', 'nobody'], env())).code, 4);
    });

    it('db drop needs -y; then the tables are gone', async (t) => {
      if (skip) return t.skip('no database');
      assert.equal((await serctl(['db', 'drop'], env())).code, 1);
      assert.equal((await serctl(['db', 'drop', '-y'], env())).code, 0);
      const s = await serctl(['db', 'show'], env());
      assert.equal(s.code, 4);
      assert.match(s.out, /schema incomplete/);
    });

    it('a database that cannot be opened: exit 3', async (t) => {
      if (skip) return t.skip('no database');
      const r = await serctl(['domain', 'show'], { SER_DBURL: 'sqlite:///nonexistent-dir/x/ser.db' });
      assert.equal(r.code, 3);
      assert.match(r.err, /^ERROR: database: /);
    });
  });
}

dbSuite('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'serctl-'));
  return { url: `sqlite://${join(dir, 'ser.db')}`, cleanup: async () => {} };
});

dbSuite('MariaDB', async () => {
  if (!(await mariadbUp())) return undefined;
  const name = `serctl_${uniq()}`;
  const admin = await openDb('mysql://root@127.0.0.1/mysql').catch(() => undefined);
  if (!admin) return undefined;
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
  } catch {
    await admin.close();
    return undefined;
  }
  return {
    url: `mysql://root@127.0.0.1/${name}`,
    cleanup: async () => {
      await admin.exec(`DROP DATABASE IF EXISTS ${name}`);
      await admin.close();
    },
  };
});
