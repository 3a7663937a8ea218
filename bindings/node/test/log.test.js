'use strict';
// setLogHandler: the library's log records on the JavaScript thread (queued
// delivery, forwarded from the library's log thread), replacement without
// blocking the JavaScript thread, handlers that call the binding, exceptions,
// and the process's lifetime. The handler is process-wide: the tests of this
// file run one after the other, each removing it at its end.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { beckon, hubUrl, within, until, clients } = require('./helpers');
const { LogLevel, InvalidArgumentError } = beckon;

/** Removes any handler after the test (bounded). */
function resetAfter(t) {
  t.after(() => within(beckon.setLogHandler(null), 5000, 'removing the log handler'));
}

/** Counts the C calls of beckon_set_log_config (made with `.async`). */
function spyOnSetLogConfig(t) {
  const fn = require('../lib/native').library().fn;
  const original = fn.beckon_set_log_config;
  const configs = [];
  const wrapper = (...args) => original(...args);
  wrapper.async = (config, done) => {
    configs.push(config);
    return original.async(config, done);
  };
  fn.beckon_set_log_config = wrapper;
  t.after(() => {
    fn.beckon_set_log_config = original;
  });
  return configs;
}

test('the handler receives the library records up to maxLevel, as frozen objects', async (t) => {
  resetAfter(t);
  const records = [];
  const configs = spyOnSetLogConfig(t);
  const set = beckon.setLogHandler((record) => records.push(record), { maxLevel: 'DEBUG' });
  assert.ok(set instanceof Promise);
  assert.equal(await within(set, 5000, 'setLogHandler'), undefined);
  assert.equal(configs.length, 1);
  assert.deepEqual(
    [configs[0].max_level, configs[0].delivery, configs[0].reserved],
    [LogLevel.DEBUG, 1 /* BECKON_LOG_QUEUED */, 0],
  );

  const url = hubUrl('log');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  await loggedIn('bob');
  await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30 }), 5000, 'send');
  await assert.rejects(alice.acceptInvitation('not an id'), InvalidArgumentError); // an "api" warning
  await until(
    () => records.some((r) => r.subTag === 'room' && r.message.startsWith('send invitation')),
    5000,
    'the send record',
  );
  await until(() => records.some((r) => r.subTag === 'api' && r.levelName === 'WARN'), 5000, 'the api warning');
  const login = records.find((r) => r.message.includes("login: user 'alice'"));
  assert.ok(login, 'no login record');
  assert.ok(Object.isFrozen(login));
  assert.deepEqual(Object.keys(login), ['level', 'levelName', 'tag', 'subTag', 'message']);
  for (const r of records) {
    assert.equal(r.tag, 'signaling');
    assert.ok(r.level >= LogLevel.ERROR && r.level <= LogLevel.DEBUG, `level ${r.level}: ${r.message}`);
    assert.equal(LogLevel[r.levelName], r.level);
    assert.ok(r.subTag.length > 0 && r.message.length > 0);
  }
  assert.ok(!records.some((r) => r.level === LogLevel.TRACE));
});

test('after the promise of a replacement resolved, the old handler is never called again', async (t) => {
  resetAfter(t);
  const url = hubUrl('replace');
  const { loggedIn } = clients(t, url);
  const users = await Promise.all(['u0', 'u1', 'u2', 'u3'].map((u) => loggedIn(u)));
  const late = [];
  const counts = [];
  const handlers = [];
  const handler = (i) => {
    counts[i] = 0;
    let retired = false;
    handlers[i] = { retire: () => (retired = true) };
    return (record) => {
      counts[i] += 1;
      if (retired) late.push(`${i}: ${record.message}`);
    };
  };
  // Keep the library logging while handlers are replaced one after another.
  let busy = true;
  const load = (async () => {
    let n = 0;
    while (busy) {
      await Promise.all(
        users.map((c, i) =>
          c.sendInvitation([`u${(i + 1) % users.length}`], { timeoutSeconds: 30, extendedData: `${n++}` }),
        ),
      );
    }
  })();
  try {
    await within(beckon.setLogHandler(handler(0), { maxLevel: LogLevel.TRACE }), 5000, 'the first handler');
    for (let i = 1; i <= 20; i++) {
      await within(beckon.setLogHandler(handler(i), { maxLevel: 'TRACE' }), 5000, `handler ${i}`);
      handlers[i - 1].retire();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await until(() => counts[20] > 0, 5000, 'records for the last handler');
    await within(beckon.setLogHandler(null), 5000, 'removing it');
    handlers[20].retire();
    const after = counts[20];
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(counts[20], after, 'called after its removal resolved');
  } finally {
    busy = false;
    await within(load, 10000, 'the load');
  }
  assert.deepEqual(late, [], 'retired handlers were called');
  assert.ok(
    counts.filter((n) => n > 0).length >= 10,
    `most handlers should have seen records: ${counts.join(' ')}`,
  );
});

test('calls made together apply in call order; the last one wins', async (t) => {
  resetAfter(t);
  const seen = { a: 0, b: 0, c: 0 };
  const a = beckon.setLogHandler(() => seen.a++, { maxLevel: 'TRACE' });
  const b = beckon.setLogHandler(() => seen.b++, { maxLevel: 'TRACE' });
  const c = beckon.setLogHandler(() => seen.c++, { maxLevel: 'TRACE' });
  const order = [];
  await within(
    Promise.all([a.then(() => order.push('a')), b.then(() => order.push('b')), c.then(() => order.push('c'))]),
    5000,
    'three calls',
  );
  assert.deepEqual(order, ['a', 'b', 'c']);
  const before = { ...seen };
  const { loggedIn } = clients(t, hubUrl('order'));
  await loggedIn('alice');
  await until(() => seen.c > before.c, 5000, 'records for the last handler');
  assert.deepEqual([seen.a, seen.b], [before.a, before.b]);
});

test('a handler may call the binding, start operations, and replace itself', async (t) => {
  resetAfter(t);
  const url = hubUrl('reentrant');
  const { loggedIn } = clients(t, url);
  const alice = await loggedIn('alice');
  await loggedIn('bob');
  let sent = null;
  let replaced = null;
  const infos = [];
  const second = [];
  await within(
    beckon.setLogHandler(
      (record) => {
        infos.push(alice.info().userId);
        beckon.createToken('secret', 'alice', 4_000_000_000);
        if (sent === null) sent = alice.sendInvitation(['bob'], { timeoutSeconds: 30 });
        // Replacing the handler from inside it: the library does not wait
        // for the call it is made from, and JavaScript never blocks on it.
        if (replaced === null && record.subTag === 'room') {
          replaced = beckon.setLogHandler((r) => second.push(r), { maxLevel: 'INFO' });
        }
      },
      { maxLevel: 'INFO' },
    ),
    5000,
    'setLogHandler',
  );
  await within(alice.sendInvitation(['bob'], { timeoutSeconds: 30, extendedData: 'first' }), 5000, 'send');
  await until(() => sent !== null && replaced !== null, 5000, 'the handler to run');
  assert.ok((await within(sent, 5000, 'the send started by the handler')).invitationId);
  await within(replaced, 5000, 'the replacement made by the handler');
  assert.ok(infos.every((u) => u === 'alice'));
  await within(alice.logout(), 5000, 'logout');
  await until(() => second.some((r) => r.message.includes('logout')), 5000, 'a record for the new handler');
});

test('maxLevel OFF and null stop logging; bad arguments reject before any C call', async (t) => {
  resetAfter(t);
  const configs = spyOnSetLogConfig(t);
  let calls = 0;
  await within(beckon.setLogHandler(() => calls++, { maxLevel: LogLevel.OFF }), 5000, 'OFF');
  assert.deepEqual([configs[0].max_level, configs[0].handler], [0, null]);
  const { loggedIn } = clients(t, hubUrl('off'));
  const alice = await loggedIn('alice');
  await within(alice.logout(), 5000, 'logout');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(calls, 0);

  const bad = [
    [[undefined], 'handler: expected a function or null'],
    [['log'], 'handler: expected a function or null, got a string'],
    [[{}], 'handler'],
    [[() => {}, { maxLevel: 6 }], 'options.maxLevel'],
    [[() => {}, { maxLevel: -1 }], 'options.maxLevel'],
    [[() => {}, { maxLevel: 2.5 }], 'options.maxLevel'],
    [[() => {}, { maxLevel: 'debug' }], 'options.maxLevel: expected a LogLevel'],
    [[() => {}, { maxLevel: 'toString' }], 'options.maxLevel'],
    [[() => {}, { level: 3 }], 'unknown option "level"'],
    [[() => {}, 'DEBUG'], 'options: expected an object'],
  ];
  for (const [args, message] of bad) {
    const error = await within(
      beckon.setLogHandler(...args).then(
        () => assert.fail(`setLogHandler(${args}) resolved`),
        (e) => e,
      ),
      5000,
      'a refusal',
    );
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.ok(error.message.includes(message), `"${error.message}" lacks "${message}"`);
  }
  assert.equal(configs.length, 1, 'a bad call reached C');
  await within(beckon.setLogHandler(null), 5000, 'null');
  assert.deepEqual([configs[1].max_level, configs[1].handler], [0, null]);
});

/** Runs `source` in a child Node process with the same library. */
function runChild(source, timeout = 20000) {
  return spawnSync(process.execPath, ['-e', source], {
    cwd: path.join(__dirname, '..'),
    env: process.env,
    encoding: 'utf8',
    timeout,
  });
}

test("a handler's exception is an uncaught exception in JavaScript, and logging goes on", () => {
  const child = runChild(`
    const beckon = require('.');
    const errors = [];
    process.on('uncaughtException', (e) => errors.push(e.message));
    let calls = 0;
    (async () => {
      await beckon.setLogHandler(() => {
        calls += 1;
        if (calls === 1) throw new Error('handler failed');
      }, { maxLevel: 'INFO' });
      const c = new beckon.Client({ serverUrl: 'memory://node-logthrow-${process.pid}' });
      await c.login('alice');
      await c.logout();
      await c.close();
      while (calls < 3) await new Promise((r) => setTimeout(r, 5));
      await beckon.setLogHandler(null);
      console.log(JSON.stringify({ errors, more: calls > 1 }));
    })();
  `);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { errors: ['handler failed'], more: true });
});

test('an installed handler does not keep the process alive, and the process exits cleanly while the library logs', () => {
  const idle = runChild(
    `
    const beckon = require('.');
    beckon.setLogHandler(() => {}, { maxLevel: 'TRACE' }).then(() => console.log('installed'));
  `,
    5000,
  );
  assert.equal(idle.status, 0, idle.stderr || `signal ${idle.signal}`);
  assert.equal(idle.stdout.trim(), 'installed');

  // Records still flowing while the event loop runs dry: the binding removes
  // the handler before Node tears the process down. (Without that, the log
  // thread calling into JavaScript during the teardown makes koffi abort the
  // process, in about one run of four of the burst below.)
  const burst = `
    const beckon = require('.');
    (async () => {
      let records = 0;
      await beckon.setLogHandler(() => records++, { maxLevel: 'WARN' });
      // Each refused call logs an "api" WARN: 2000 records, most still
      // queued when the script ends.
      for (let i = 0; i < 2000; i++) {
        try { beckon.createToken('s', 'bad id', 1); } catch {}
      }
      console.log('done');
    })();
  `;
  for (let i = 0; i < 12; i++) {
    const child = runChild(burst);
    assert.equal(child.status, 0, `run ${i}: status ${child.status}, signal ${child.signal}: ${child.stderr}`);
    assert.equal(child.stdout.trim(), 'done');
  }
  for (let i = 0; i < 2; i++) {
    const busy = runChild(`
      const beckon = require('.');
      (async () => {
        let records = 0;
        await beckon.setLogHandler(() => records++, { maxLevel: 'TRACE' });
        const url = 'memory://node-logexit-${process.pid}-${i}';
        const cs = Array.from({ length: 12 }, (_, i) =>
          new beckon.Client({ serverUrl: url, dispatch: i % 3 ? 'thread' : 'pool' }));
        await Promise.all(cs.map((c, i) => c.login('u' + i)));
        await Promise.all(cs.map((c, i) => c.sendInvitation(['u' + ((i + 1) % 12)], { timeoutSeconds: 30 })));
        await Promise.all(cs.map((c) => c.close()));
        console.log(records > 0 ? 'logged' : 'silent');
      })();
    `);
    assert.equal(busy.status, 0, `run ${i}: status ${busy.status}, signal ${busy.signal}: ${busy.stderr}`);
    assert.equal(busy.stdout.trim(), 'logged');
  }

  // An open client still keeps it alive, logging or not.
  const held = runChild(
    `
    const beckon = require('.');
    beckon.setLogHandler(() => {}, { maxLevel: 'INFO' }).then(async () => {
      const c = new beckon.Client({ serverUrl: 'memory://node-logheld-${process.pid}' });
      await c.login('alice');
      console.log('logged in');
    });
  `,
    1500,
  );
  assert.equal(held.signal, 'SIGTERM', 'the process exited although a client was open');
  assert.equal(held.stdout.trim(), 'logged in');
});
