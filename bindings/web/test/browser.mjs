// For the browser tests: a tiny HTTP server on 127.0.0.1 serving the test page
// and dist/beckon.js, and headless Chromium (the Debian package) driven by
// playwright-core.
import { createServer } from 'node:http';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { here, webDir, tempDir, until } from './helpers.mjs';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const FILES = {
  '/': ['text/html', () => readFileSync(join(here, 'browser/index.html'))],
  '/beckon.js': ['text/javascript', () => readFileSync(join(webDir, 'dist/beckon.js'))],
};

export async function startPageServer() {
  const server = createServer((req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((r) => server.close(r)),
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}

/** A fresh page with the test page loaded; its console errors are collected. */
export async function openPage(browser, pageServer) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(String(error)));
  page.setDefaultTimeout(20_000);
  await page.goto(pageServer.url);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/** Waits (bounded) for an event of client `name` in `page` whose fields match `match`. */
export async function pageEvent(page, name, match, ms = 15_000) {
  return until(
    () =>
      page.evaluate(
        ([name, match]) =>
          window.clients[name].events.find((e) => Object.entries(match).every(([k, v]) => e[k] === v)) ?? null,
        [name, match],
      ),
    `${name}: ${JSON.stringify(match)}`,
    ms,
  );
}

export async function pageEvents(page, name, match) {
  return page.evaluate(
    ([name, match]) => window.clients[name].events.filter((e) => Object.entries(match).every(([k, v]) => e[k] === v)),
    [name, match],
  );
}

export { tempDir, rmSync };
