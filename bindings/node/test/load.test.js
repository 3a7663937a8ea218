'use strict';
// Finding and loading libbeckon, and the ABI version check.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { beckon } = require('./helpers');

const packageDir = path.join(__dirname, '..');
const library = beckon.libraryInfo().path;

/** Runs `source` in a fresh Node process with `env` overrides (undefined deletes). */
function node(source, env = {}, { cwd = packageDir, module = false } = {}) {
  const childEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const args = module ? ['--input-type=module', '-e', source] : ['-e', source];
  return spawnSync(process.execPath, args, { cwd, env: childEnv, encoding: 'utf8', timeout: 20000 });
}

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beckon-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const probe = `
  const beckon = require(process.env.PACKAGE_DIR || '.');
  try {
    const info = beckon.libraryInfo();
    console.log(JSON.stringify({ ok: true, source: info.source, version: beckon.version(), abi: beckon.abiVersion() }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, name: e.name, message: e.message }));
  }
`;

function probeWith(env, options) {
  const child = node(probe, env, options);
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout);
}

test('the loaded library has the ABI version this binding speaks', () => {
  assert.equal(beckon.ABI_VERSION_MAJOR, 2);
  assert.equal(beckon.ABI_VERSION_MINOR, 3);
  assert.equal(beckon.ABI_VERSION, (2 << 16) | 3);
  assert.equal(beckon.abiVersion(), beckon.ABI_VERSION);
  assert.match(beckon.version(), /^\d+\.\d+\.\d+/);
  assert.equal(beckon.libraryInfo().source, 'BECKON_LIBRARY');
});

test('a missing library is a LibraryLoadError naming the path, at first use rather than at require', () => {
  const result = probeWith({ BECKON_LIBRARY: '/nonexistent/libbeckon.so' });
  assert.equal(result.ok, false);
  assert.equal(result.name, 'LibraryLoadError');
  assert.match(result.message, /\/nonexistent\/libbeckon\.so/);
});

test('the ABI rule: the same major, and an equal or newer minor', () => {
  const { abiCompatible, abiVersionText } = require('../lib/native');
  const v = (major, minor) => ((major << 16) | minor) >>> 0;
  assert.equal(abiVersionText(v(2, 1)), '2.1');
  assert.equal(abiVersionText(v(3, 17)), '3.17');
  assert.equal(abiCompatible(beckon.ABI_VERSION), true);
  assert.equal(abiCompatible(v(2, 0), v(2, 0)), true);
  assert.equal(abiCompatible(v(2, 3)), true, 'the same minor');
  assert.equal(abiCompatible(v(2, 4)), true, 'a newer minor library');
  assert.equal(abiCompatible(v(2, 2)), false, 'an older minor library (2.2 lacks beckon_query_invitations, 2.3)');
  assert.equal(abiCompatible(v(2, 1)), false, 'an older minor library (2.1 lacks the 2.2 functions)');
  assert.equal(abiCompatible(v(2, 0)), false, 'an older minor library');
  assert.equal(abiCompatible(v(2, 3), v(2, 1)), true, 'a newer minor library');
  assert.equal(abiCompatible(v(2, 1), v(2, 3)), false, 'an older minor library');
  assert.equal(abiCompatible(v(2, 0), v(2, 1)), false, 'an older minor library');
  assert.equal(abiCompatible(v(3, 0)), false, 'another major');
  assert.equal(abiCompatible(v(1, 0xffff)), false, 'an older major');
  assert.equal(abiCompatible(1), false, 'the unversioned ABI 1');
});

const is64 = process.arch === 'x64' || process.arch === 'arm64';
test('the structs of ABI 2.3 have the sizes and offsets of the header (64-bit)', { skip: !is64 }, () => {
  const { T, koffi, ID_CAPACITY } = require('../lib/native');
  assert.equal(ID_CAPACITY, 68);
  assert.equal(koffi.sizeof(T.clientInfo), 144);
  assert.deepEqual(
    ['struct_size', 'connection_state', 'user_id', 'device_id'].map((f) => koffi.offsetof(T.clientInfo, f)),
    [0, 4, 8, 76],
  );
  assert.equal(koffi.sizeof(T.invitationConfig), 32);
  assert.equal(koffi.offsetof(T.invitationConfig, 'request_timeout_ms'), 28);
  assert.equal(koffi.sizeof(T.answerConfig), 16);
  assert.deepEqual(
    ['struct_size', 'request_timeout_ms', 'extended_data'].map((f) => koffi.offsetof(T.answerConfig, f)),
    [0, 4, 8],
  );
  assert.equal(koffi.sizeof(T.cancelConfig), 32);
  assert.deepEqual(
    ['struct_size', 'request_timeout_ms', 'invitees', 'invitee_count', 'extended_data'].map((f) =>
      koffi.offsetof(T.cancelConfig, f),
    ),
    [0, 4, 8, 16, 24],
  );
  assert.equal(koffi.sizeof(T.logConfig), 32);
  assert.deepEqual(
    ['struct_size', 'max_level', 'delivery', 'reserved', 'handler', 'user_data'].map((f) =>
      koffi.offsetof(T.logConfig, f),
    ),
    [0, 4, 8, 12, 16, 24],
  );
  assert.equal(koffi.sizeof(T.eventNotification), 40);
  assert.equal(koffi.sizeof(T.eventNotification), koffi.sizeof(T.notificationConfig));
  // 2.2
  assert.equal(koffi.sizeof(T.pushTarget), 40);
  assert.deepEqual(
    ['struct_size', 'provider', 'token', 'topic', 'environment', 'alert_token'].map((f) =>
      koffi.offsetof(T.pushTarget, f),
    ),
    [0, 4, 8, 16, 24, 32],
  );
  assert.equal(koffi.sizeof(T.event), 112);
  assert.deepEqual(
    ['connection_reason', 'push_provider', 'push_outcome', 'device_id', 'push_reason'].map((f) =>
      koffi.offsetof(T.event, f),
    ),
    [80, 84, 88, 96, 104],
  );
  // 2.3
  assert.equal(koffi.sizeof(T.invitationQuery), 40);
  assert.deepEqual(
    ['struct_size', 'role', 'since_ms', 'until_ms', 'limit', 'cursor'].map((f) => koffi.offsetof(T.invitationQuery, f)),
    [0, 4, 8, 16, 24, 32],
  );
  assert.equal(koffi.sizeof(T.invitationSummary), 56);
  assert.deepEqual(
    ['invitation_id', 'inviter', 'invitees', 'invitee_count', 'created_ms', 'ended_ms', 'sent_by_server'].map((f) =>
      koffi.offsetof(T.invitationSummary, f),
    ),
    [0, 8, 16, 24, 32, 40, 48],
  );
  assert.equal(koffi.sizeof(T.invitationPageResult), 40);
  assert.deepEqual(
    ['error', 'error_message', 'invitations', 'invitation_count', 'next_cursor'].map((f) =>
      koffi.offsetof(T.invitationPageResult, f),
    ),
    [0, 8, 16, 24, 32],
  );
});

/** A library exporting only `beckon_abi_version`, returning `abi`; null without a C compiler. */
function fakeLibrary(t, abi) {
  const dir = tempDir(t);
  const source = path.join(dir, 'fake.c');
  fs.writeFileSync(source, `unsigned int beckon_abi_version(void) { return ${abi}u; }\n`);
  const fake = path.join(dir, 'libfake.so');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', fake, source], { encoding: 'utf8' });
  return cc.error || cc.status !== 0 ? null : fake;
}

for (const [label, abi, shown] of [
  ['the next major', (3 << 16) >>> 0, '3.0'],
  ['an older major', ((1 << 16) | 0xffff) >>> 0, '1.65535'],
  ['an older minor', ((2 << 16) | 2) >>> 0, '2.2'],
  ['an older minor', ((2 << 16) | 1) >>> 0, '2.1'],
  ['the unversioned ABI 1', 1, '0.1'],
]) {
  test(`a library of ${label} (${shown}) is refused before any other symbol is bound`, (t) => {
    const fake = fakeLibrary(t, abi);
    if (fake === null) {
      t.skip('no C compiler to build a fake library');
      return;
    }
    const result = probeWith({ BECKON_LIBRARY: fake });
    assert.equal(result.ok, false);
    assert.equal(result.name, 'LibraryLoadError');
    assert.ok(
      result.message.includes(
        `has ABI version ${shown}, but this binding needs ABI 2.3 (the same major, an equal or newer minor)`,
      ),
      result.message,
    );
  });
}

test('a library of a newer minor (2.4) passes the version check, then fails only for a missing function', (t) => {
  const fake = fakeLibrary(t, ((2 << 16) | 4) >>> 0);
  if (fake === null) {
    t.skip('no C compiler to build a fake library');
    return;
  }
  const result = probeWith({ BECKON_LIBRARY: fake });
  assert.equal(result.ok, false);
  assert.equal(result.name, 'LibraryLoadError');
  assert.doesNotMatch(result.message, /ABI/);
  assert.match(result.message, /is not a usable libbeckon: .*beckon_/);
});

test('a library that is not libbeckon is refused', () => {
  const result = probeWith({ BECKON_LIBRARY: process.platform === 'linux' ? 'libm.so.6' : 'libSystem.dylib' });
  assert.equal(result.ok, false);
  assert.equal(result.name, 'LibraryLoadError');
  assert.match(result.message, /not libbeckon/);
});

test('without BECKON_LIBRARY: the system loader finds it on its search path', { skip: process.platform !== 'linux' }, () => {
  const result = probeWith({ BECKON_LIBRARY: undefined, LD_LIBRARY_PATH: path.dirname(library) });
  assert.deepEqual(result, { ok: true, source: 'system', version: beckon.version(), abi: beckon.ABI_VERSION });
  const missing = probeWith({ BECKON_LIBRARY: undefined, LD_LIBRARY_PATH: undefined });
  if (!missing.ok) {
    assert.equal(missing.name, 'LibraryLoadError');
    assert.match(missing.message, /BECKON_LIBRARY/);
  }
});

test('bundle-library copies the library into prebuilds/, which is used without BECKON_LIBRARY', (t) => {
  const dir = tempDir(t);
  for (const entry of ['index.js', 'index.d.ts', 'package.json', 'lib', 'scripts']) {
    fs.cpSync(path.join(packageDir, entry), path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(packageDir, 'node_modules'), path.join(dir, 'node_modules'));
  const bundle = spawnSync(process.execPath, [path.join(dir, 'scripts', 'bundle-library.js'), path.dirname(library)], {
    encoding: 'utf8',
  });
  assert.equal(bundle.status, 0, bundle.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`, path.basename(library))));
  const result = probeWith({ BECKON_LIBRARY: undefined, LD_LIBRARY_PATH: undefined, PACKAGE_DIR: dir });
  assert.deepEqual(result, { ok: true, source: 'bundled', version: beckon.version(), abi: beckon.ABI_VERSION });
  // BECKON_LIBRARY still wins over the bundled copy.
  const env = probeWith({ BECKON_LIBRARY: library, PACKAGE_DIR: dir });
  assert.equal(env.source, 'BECKON_LIBRARY');
});

test('ES modules import the same API by name', () => {
  const child = node(
    `
    import { Client, version, InvalidArgumentError, InviteeState } from ${JSON.stringify(path.join(packageDir, 'index.js'))};
    const c = new Client({ serverUrl: 'memory://node-esm-${process.pid}' });
    await c.login('alice');
    await c.close();
    console.log(version(), typeof InvalidArgumentError, InviteeState.ACCEPTED);
    `,
    {},
    { module: true },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), `${beckon.version()} function 1`);
});
