// dist/ is committed (beckon-server embeds dist/beckon.js): it must be what
// `npm run build` makes from src/ now. Also: the module is self-contained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { webDir, tempDir } from './helpers.mjs';

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test('dist/ is up to date with src/ (else run `npm run build` in bindings/web)', () => {
  const out = tempDir('dist');
  try {
    execFileSync(process.execPath, [join(webDir, 'scripts/build.mjs'), out], { cwd: webDir, stdio: 'pipe' });
    const want = files(out).map((f) => relative(out, f)).sort();
    const have = files(join(webDir, 'dist')).map((f) => relative(join(webDir, 'dist'), f)).sort();
    assert.deepEqual(have, want, 'the files of dist/');
    for (const name of want) {
      assert.ok(
        readFileSync(join(out, name)).equals(readFileSync(join(webDir, 'dist', name))),
        `dist/${name} is stale: run \`npm run build\` in bindings/web`,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('dist/beckon.js is one ES module with no imports', () => {
  const text = readFileSync(join(webDir, 'dist/beckon.js'), 'utf8');
  assert.doesNotMatch(text, /^\s*import\s/m);
  assert.doesNotMatch(text, /\brequire\(/);
  assert.match(text, /^export \{/m);
});

test('the module loads without a global WebSocket and says so when a Client needs one', async () => {
  const beckon = await import('../dist/beckon.js');
  const saved = globalThis.WebSocket;
  try {
    delete globalThis.WebSocket;
    assert.throws(() => new beckon.Client({ serverUrl: 'ws://127.0.0.1:1' }), beckon.InvalidArgumentError);
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
  assert.equal(beckon.ErrorCode.SHUTDOWN, 14);
  assert.equal(beckon.InviteeStateCode.RECEIVED, 5);
});
