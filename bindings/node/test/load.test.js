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
  assert.equal(beckon.ABI_VERSION, 1);
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

test('a library of another ABI version is refused before any other symbol is bound', (t) => {
  const dir = tempDir(t);
  const source = path.join(dir, 'fake.c');
  fs.writeFileSync(source, 'unsigned int beckon_abi_version(void) { return 2; }\n');
  const fake = path.join(dir, 'libfake.so');
  const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', fake, source], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    t.skip('no C compiler to build a fake library');
    return;
  }
  const result = probeWith({ BECKON_LIBRARY: fake });
  assert.equal(result.ok, false);
  assert.equal(result.name, 'LibraryLoadError');
  assert.match(result.message, /ABI version 2.*ABI version 1/);
});

test('a library that is not libbeckon is refused', () => {
  const result = probeWith({ BECKON_LIBRARY: process.platform === 'linux' ? 'libm.so.6' : 'libSystem.dylib' });
  assert.equal(result.ok, false);
  assert.equal(result.name, 'LibraryLoadError');
  assert.match(result.message, /not libbeckon/);
});

test('without BECKON_LIBRARY: the system loader finds it on its search path', { skip: process.platform !== 'linux' }, () => {
  const result = probeWith({ BECKON_LIBRARY: undefined, LD_LIBRARY_PATH: path.dirname(library) });
  assert.deepEqual(result, { ok: true, source: 'system', version: beckon.version(), abi: 1 });
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
  assert.deepEqual(result, { ok: true, source: 'bundled', version: beckon.version(), abi: 1 });
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
