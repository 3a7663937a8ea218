'use strict';
// Shared test helpers: unique hub names, bounded waits, event recording.

const { randomBytes } = require('node:crypto');
const beckon = require('..');

/** A memory:// URL no other test uses. */
function hubUrl(label) {
  return `memory://node-${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Rejects if `promise` has not settled within `ms` (so no test waits forever). */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The next `name` event of `client` that satisfies `predicate`, within `ms`. */
function nextEvent(client, name, predicate = () => true, ms = 5000) {
  let listener;
  const seen = new Promise((resolve) => {
    listener = (event) => {
      if (predicate(event)) resolve(event);
    };
    client.on(name, listener);
  });
  return within(seen, ms, `event ${name}`).finally(() => client.off(name, listener));
}

/** Records every event of `client`, in order, as they are emitted. */
function record(client) {
  const events = [];
  client.on('event', (event) => events.push(event));
  return events;
}

/** Waits (bounded) until `condition()` holds, checking on every turn of the event loop. */
async function until(condition, ms, what) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Makes clients for one test and closes them all when it ends (even when it
 * fails): `const { client } = clients(t, url)`.
 */
function clients(t, url, defaults = {}) {
  const made = [];
  t.after(async () => {
    await within(Promise.all(made.map((c) => c.close())), 10000, 'closing the test clients');
  });
  const client = (options = {}) => {
    const c = new beckon.Client({ serverUrl: url, ...defaults, ...options });
    made.push(c);
    return c;
  };
  const loggedIn = async (userId, options = {}) => {
    const c = client(options);
    await within(c.login(userId), 5000, `${userId}'s login`);
    return c;
  };
  return { client, loggedIn };
}

/**
 * Replaces the C function `name` with a counting wrapper for the rest of the
 * test: `calls()` says how many times C was called, `args()` with what (the
 * arguments as the binding passed them to koffi, one array per call).
 */
function spyOnC(t, name) {
  const fn = require('../lib/native').library().fn;
  const original = fn[name];
  const seen = [];
  const wrapper = (...args) => {
    seen.push(args);
    return original(...args);
  };
  wrapper.async = original.async;
  fn[name] = wrapper;
  t.after(() => {
    fn[name] = original;
  });
  return { calls: () => seen.length, args: () => seen };
}

module.exports = { beckon, hubUrl, within, nextEvent, record, until, clients, spyOnC };
