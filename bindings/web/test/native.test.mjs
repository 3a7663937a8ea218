// A browser client (headless Chromium) and a native C client (libbeckon,
// test/native_peer.c) on the same beckon-server invite each other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Server, root, here, tempDir, until, withTimeout, WAIT_MS } from './helpers.mjs';
import { startPageServer, launchBrowser, openPage, pageEvent } from './browser.mjs';

const libDir = process.env.BECKON_LIB_DIR ?? join(root, 'target/debug');
let browser;
let pages;
let server;
let peerBin;

before(async () => {
  peerBin = join(tempDir('peer'), 'native_peer');
  execFileSync('cc', [
    '-std=c11', '-D_POSIX_C_SOURCE=200809L', '-Wall', '-Werror',
    '-I', join(root, 'include'),
    join(here, 'native_peer.c'),
    '-L', libDir, `-Wl,-rpath,${libDir}`, '-lbeckon', '-lpthread',
    '-o', peerBin,
  ]);
  server = await Server.start();
  pages = await startPageServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await pages?.close();
  await server?.stop();
});

test('a browser and a native C client invite each other', async () => {
  const page = await openPage(browser, pages);
  await page.evaluate(async (url) => {
    await makeClient('web', { serverUrl: url }).login('web-user', 'dev');
  }, server.url);

  const peer = spawn(peerBin, [server.url, 'c-user', 'web-user'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  peer.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: peer.stdout }).on('line', (l) => lines.push(l));
  const exited = new Promise((r) => peer.once('exit', (code, signal) => r({ code, signal })));
  const line = (prefix) =>
    until(() => {
      const error = lines.find((l) => l.startsWith('error'));
      if (error) throw new Error(`native peer: ${error}`);
      return lines.find((l) => l.startsWith(prefix));
    }, `the native peer to print "${prefix}" (so far: ${lines.join(' | ')} ${stderr})`);
  try {
    await line('ready');
    // (a) the browser invites the C client, which accepts.
    const id = await page.evaluate(
      async () => (await clients.web.sendInvitation(['c-user'], { timeoutSeconds: 30, extendedData: 'from-web' })).invitationId,
    );
    assert.equal(await line('received '), `received ${id} web-user from-web`);
    assert.equal(await line('accepted '), `accepted ${id}`);
    const accepted = await pageEvent(page, 'web', { kind: 'INVITATION_ACCEPTED', invitationId: id });
    assert.equal(accepted.invitee, 'c-user');
    assert.equal(accepted.extendedData, 'from-c');

    // (b) the C client invites the browser user, who accepts.
    const sent = (await line('sent ')).split(' ')[1];
    const received = await pageEvent(page, 'web', { kind: 'INVITATION_RECEIVED', invitationId: sent });
    assert.equal(received.inviter, 'c-user');
    assert.equal(received.extendedData, '{"from":"c"}');
    await page.evaluate((id) => clients.web.acceptInvitation(id, { extendedData: 'hello C' }), sent);
    assert.equal(await line('peer-accepted '), `peer-accepted ${sent} web-user hello C`);
    await line('done');
    const { code } = await withTimeout(exited, WAIT_MS, 'the native peer to exit');
    assert.equal(code, 0, stderr);
    await page.evaluate(() => clients.web.close());
    await page.close();
  } finally {
    if (peer.exitCode === null && peer.signalCode === null) process.kill(peer.pid, 'SIGKILL');
  }
});
