'use strict';
// Memory hubs (`memory://NAME`) configured before first use, and login tokens.

const { koffi, T, library } = require('./native');
const callbacks = require('./callbacks');
const v = require('./validate');
const { InvalidArgumentError } = require('./errors');

/** `BECKON_TOKEN_MAX_LEN`: the longest token, with its NUL. */
const TOKEN_MAX_LEN = 96;

/**
 * Creates the memory hub `name` (reached as `memory://NAME`) with a secret,
 * another invitee limit or retention. Throws InvalidArgumentError if a hub of
 * that name exists already, including one a client made by using the name.
 */
function createMemoryHub(name, options) {
  const hubName = v.text(name, 'name');
  const o = v.options(options, 'options', ['secret', 'maxInvitees', 'retentionMs']);
  const config = {
    struct_size: koffi.sizeof(T.hubConfig),
    secret: v.optionalText(o.secret, 'options.secret'),
    max_invitees: v.optionalUint32(o.maxInvitees, 'options.maxInvitees', { min: 1 }) ?? 0,
    retention_ms: v.optionalUint32(o.retentionMs, 'options.retentionMs', { min: 1 }) ?? 0,
  };
  const fn = library().fn;
  const code = fn.beckon_memory_hub_create(hubName, config);
  if (code !== 0) throw callbacks.lastError(code);
}

/** Seconds since the Unix epoch, from a Date, a number or a BigInt. */
function unixSeconds(value, field) {
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new InvalidArgumentError(`${field}: is an invalid Date`);
    value = Math.floor(ms / 1000);
  }
  if (typeof value === 'bigint') {
    if (value < 0n || value > 0xffffffffffffffffn) {
      throw new InvalidArgumentError(`${field}: ${value} does not fit an unsigned 64-bit integer`);
    }
    return value;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(
      `${field}: expected a Date or a non-negative integer of Unix seconds, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Makes a login token for `userId`, valid until `expiresAt` (a Date, or Unix
 * seconds), signed with `secret`: the recipe of docs/C_API.md, which any
 * backend can reproduce with an HMAC-SHA256 library.
 */
function createToken(secret, userId, expiresAt) {
  const key = v.text(secret, 'secret');
  const user = v.text(userId, 'userId');
  const expiry = unixSeconds(expiresAt, 'expiresAt');
  const fn = library().fn;
  const buffer = Buffer.alloc(TOKEN_MAX_LEN);
  const code = fn.beckon_token_create(key, user, expiry, buffer, buffer.length);
  if (code !== 0) throw callbacks.lastError(code);
  const end = buffer.indexOf(0);
  return buffer.toString('utf8', 0, end === -1 ? buffer.length : end);
}

module.exports = { createMemoryHub, createToken, TOKEN_MAX_LEN };
