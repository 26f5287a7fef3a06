/** FIFO framing, JSON-RPC handling, metrics and monitor rendering, without a server. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FifoFramer, type FramerEvent, formatReply } from '../../src/mgmt/fifo.js';
import { parseReply } from '../../src/mgmt/fifo-client.js';
import { ctime, mysqlTable, parseStatLines, renderMonitor, usrlocTables } from '../../src/mgmt/format.js';
import { parseHostPort } from '../../src/mgmt/index.js';
import { metricName, renderMetrics } from '../../src/mgmt/metrics.js';
import { handleRpc } from '../../src/mgmt/rpc.js';

const reqs = (evs: FramerEvent[]) =>
  evs.map((e) => (e.kind === 'request' ? [e.req.command, e.req.replyTo, ...e.req.params] : ['!', e.reason]));

describe('FIFO framing', () => {
  it('a request ends with an empty line; several in one chunk; split across chunks', () => {
    const f = new FifoFramer();
    assert.deepEqual(reqs(f.push(':uptime:r1\n\n:print:r2\na\nb\n\n:wh')), [
      ['uptime', 'r1'],
      ['print', 'r2', 'a', 'b'],
    ]);
    assert.deepEqual(reqs(f.push('ich:r3\n')), []);
    assert.deepEqual(reqs(f.push('\r\n')), [['which', 'r3']]);
  });

  it('serweb ul_add with its extra separator line', () => {
    const f = new FifoFramer();
    const evs = f.push(':ul_add:ser_reply\nlocation\njiri\nsip:jiri@1.2.3.4\n3600\n1.00\n\n\n');
    assert.deepEqual(reqs(evs), [
      ['ul_add', 'ser_reply', 'location', 'jiri', 'sip:jiri@1.2.3.4', '3600', '1.00'],
    ]);
  });

  it('EOF ends a request without its empty line', () => {
    const f = new FifoFramer();
    assert.deepEqual(reqs(f.push(':print:r\nx')), []);
    assert.deepEqual(reqs(f.end()), [['print', 'r', 'x']]);
  });

  it("t_uac_dlg of seed 003 Ex 4-10 (with its blank line) stays one request up to the body's '.'", () => {
    const f = new FifoFramer();
    const text =
      ':t_uac_dlg:hh\nNOTIFY\nsip:receiver@127.0.0.1\n.\nFrom: sip:originator@foo.bar\nTo: sip:receiver@127.0.0.1\n' +
      'foo: bar_special_header\nx: y\np_header: p_value\nContact: <sip:devnull@192.168.0.100:9>\n\n' +
      'Content-Type: text/plain; charset=UTF-8\n.\nHello world!!!! $@\n.\n';
    const evs = f.push(text);
    assert.equal(evs.length, 1);
    const r = reqs(evs)[0];
    assert.deepEqual(r.slice(0, 5), ['t_uac_dlg', 'hh', 'NOTIFY', 'sip:receiver@127.0.0.1', '.']);
    assert.ok(r.includes(''), 'the blank line is kept as content');
    assert.deepEqual(r.slice(-3), ['.', 'Hello world!!!! $@', '.']);
    assert.deepEqual(reqs(f.end()), []);
    // no body: an empty line right after the headers' '.'
    const g = new FifoFramer();
    assert.equal(g.push(':t_uac_dlg:r\nOPTIONS\nsip:a@b\n.\nFrom: a\nTo: b\n.\n\n').length, 1);
  });

  it('malformed requests: a 400 for a bad command name, garbage skipped to the next empty line', () => {
    const f = new FifoFramer();
    const evs = f.push(':bad name:r\nparam\n\nnot a request\nmore\n\n:uptime\n\n:uptime:ok\n\n');
    assert.equal(evs.length, 4);
    assert.deepEqual(evs[0], {
      kind: 'malformed',
      replyTo: 'r',
      reason: "malformed command name 'bad name'",
    });
    assert.equal(evs[1].kind === 'malformed' && evs[1].replyTo, undefined);
    assert.equal(evs[2].kind === 'malformed' && evs[2].replyTo, undefined);
    assert.deepEqual(reqs([evs[3]]), [['uptime', 'ok']]);
  });

  it('reply text and its parsing', () => {
    assert.equal(formatReply({ code: 200, reason: 'ok', body: 'a\nb' }), '200 ok\na\nb\n');
    assert.equal(
      formatReply({ code: 500, reason: "command 'x' not available" }),
      "500 command 'x' not available\n",
    );
    assert.deepEqual(parseReply('404 Not found\nl1\n'), { code: 404, reason: 'Not found', body: ['l1'] });
  });
});

describe('JSON-RPC handling', () => {
  const run = async (c: string, a: string[]) =>
    c === 'echo' ? { code: 200, reason: 'ok', body: a.join('\n'), data: a } : { code: 404, reason: 'nope' };
  const exists = (c: string) => c === 'echo' || c === 'fails';

  it('result, error statuses, unknown methods, bad params, notifications, batches', async () => {
    assert.deepEqual(
      await handleRpc({ jsonrpc: '2.0', id: 1, method: 'echo', params: ['a', 2] }, run, exists),
      {
        jsonrpc: '2.0',
        id: 1,
        result: { status: 200, reason: 'ok', body: ['a', '2'], data: ['a', '2'] },
      },
    );
    const e = (await handleRpc({ jsonrpc: '2.0', id: 2, method: 'fails' }, run, exists)) as {
      error: { code: number; message: string };
    };
    assert.deepEqual([e.error.code, e.error.message], [-32000, '404 nope']);
    const u = (await handleRpc({ jsonrpc: '2.0', id: 3, method: 'x' }, run, exists)) as {
      error: { code: number };
    };
    assert.equal(u.error.code, -32601);
    const p = (await handleRpc({ jsonrpc: '2.0', id: 4, method: 'echo', params: { a: 1 } }, run, exists)) as {
      error: { code: number };
    };
    assert.equal(p.error.code, -32602);
    assert.equal(await handleRpc({ jsonrpc: '2.0', method: 'echo' }, run, exists), undefined);
    const b = (await handleRpc(
      [
        { jsonrpc: '2.0', id: 5, method: 'echo' },
        { jsonrpc: '2.0', method: 'echo' },
      ],
      run,
      exists,
    )) as unknown[];
    assert.equal(b.length, 1);
    const inv = (await handleRpc({ id: 6, method: 'echo' }, run, exists)) as { error: { code: number } };
    assert.equal(inv.error.code, -32600);
  });

  it('SER_HTTP values', () => {
    assert.deepEqual(parseHostPort('8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseHostPort('0.0.0.0:9'), { host: '0.0.0.0', port: 9 });
    assert.deepEqual(parseHostPort('[::1]:9'), { host: '::1', port: 9 });
    assert.equal(parseHostPort('x:99999'), undefined);
  });
});

describe('formats', () => {
  it('ctime as the seeds print it', () => {
    assert.equal(ctime(new Date(2002, 11, 6, 17, 56, 10)), 'Fri Dec 6 17:56:10 2002');
  });

  it('mysql-style table', () => {
    assert.equal(
      mysqlTable(['user', 'grp'], [['john', 'int']]),
      '+------+-----+\n| user | grp |\n+------+-----+\n| john | int |\n+------+-----+',
    );
  });

  it('metrics: every group, sanitised names, process metrics', () => {
    const t = renderMetrics(
      { core: { rcv_requests: 3 }, sl: { '404': 2 }, usrloc: { 'location:registered': 5 } },
      { startedAt: new Date(Date.now() - 5000) },
    );
    assert.match(t, /^ser_core_rcv_requests 3$/m);
    assert.match(t, /^ser_sl_404 2$/m);
    assert.match(t, /^ser_usrloc_location_registered 5$/m);
    assert.match(t, /^ser_uptime_seconds [45]$/m);
    assert.match(t, /^process_resident_memory_bytes \d+$/m);
    assert.equal(metricName('a-b', 'c.d'), 'ser_a_b_c_d');
  });

  it('monitor: Example 5-2 layout with tm and usrloc groups', () => {
    const text = renderMonitor(2, {
      server: 'Sip EXpress router (0.9.0 (x64/linux))',
      uptime: ['Now: a', 'Up Since: b', 'Up time: 38481 [sec]'],
      stats: {
        tm: {
          current: 0,
          waiting: 0,
          total: 606,
          local: 0,
          replied_localy: 34,
          completed_6xx: 0,
          completed_5xx: 1,
          completed_4xx: 86,
          completed_3xx: 0,
          completed_2xx: 519,
        },
        sl: { '200': 6218, '401': 7412, '404': 1258, failures: 0 },
        usrloc: {
          'location:registered': 29,
          'location:expired': 17,
          'aliases:registered': 9,
          'aliases:expired': 0,
        },
      },
    });
    const want = [
      '[cycle #: 2; if constant make sure server lives and fifo is on]',
      'Server: Sip EXpress router (0.9.0 (x64/linux))',
      'Now: a',
      'Up Since: b',
      'Up time: 38481 [sec]',
      '',
      'Transaction Statistics',
      'Current: 0 (0 waiting) Total: 606 (0 local)',
      'Replied localy: 34',
      'Completion status 6xx: 0, 5xx: 1, 4xx: 86, 3xx: 0,2xx: 519',
      '',
      'Stateless Server Statistics',
      '200: 6218 202: 0 2xx: 0',
      '300: 0 301: 0 302: 0 3xx: 0',
      '400: 0 401: 7412 403: 0 404: 1258 407: 0 408: 0 483: 0 4xx: 0 500: 0 5xx: 0',
      '6xx: 0',
      'xxx: 0',
      'failures: 0',
      '',
      'UsrLoc Stats',
      'Domain Registered Expired',
      "'aliases' 9 0",
      "'location' 29 17",
      '',
    ];
    assert.equal(text, want.join('\n'));
    assert.deepEqual(usrlocTables({ 'a.registered': 1 }), [{ table: 'a', registered: 1, expired: 0 }]);
    // the usrloc module's own group: <table>_registered, and table names may hold '_'
    assert.deepEqual(
      usrlocTables({ location_registered: 3, location_expired: 1, my_dom_registered: 2, db_errors: 0 }),
      [
        { table: 'location', registered: 3, expired: 1 },
        { table: 'my_dom', registered: 2, expired: 0 },
      ],
    );
    assert.match(renderMonitor(1, {}), /Server: \(no answer from the FIFO server\)/);
  });

  it('get_statistics lines parse back', () => {
    assert.deepEqual(parseStatLines(['sl:404 = 3', 'core:bad_msgs = 0', 'junk']), {
      sl: { '404': 3 },
      core: { bad_msgs: 0 },
    });
  });
});
