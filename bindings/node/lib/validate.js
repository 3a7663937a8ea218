'use strict';
// Checks of what JavaScript can get wrong before anything reaches C: types,
// missing or empty values, text that C cannot carry (NUL characters, lone
// UTF-16 surrogates), numbers that do not fit the C field, option names that
// do not exist. The library's own rules (user id syntax, size and count
// limits, timeout range) stay in the library, whose errors map to the same
// classes; a binding that copied them would drift from it.

const { InvalidArgumentError } = require('./errors');

const UINT32_MAX = 0xffffffff;
const UINT64_MAX = 0xffffffffffffffffn;

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

function fail(field, what) {
  throw new InvalidArgumentError(`${field}: ${what}`);
}

/** A string C can carry: no NUL, well-formed UTF-16 (so it has a UTF-8 form). */
function text(value, field, { required = true } = {}) {
  if (value === undefined || value === null) {
    if (required) fail(field, 'is required');
    return null;
  }
  if (typeof value !== 'string') fail(field, `expected a string, got ${describe(value)}`);
  if (required && value.length === 0) fail(field, 'is empty');
  const nul = value.indexOf('\0');
  if (nul !== -1) fail(field, `contains a NUL character at index ${nul}`);
  if (!value.isWellFormed()) fail(field, 'contains a lone UTF-16 surrogate (not valid Unicode)');
  return value;
}

/** An optional string: undefined or null become NULL (read as "" by the library). */
function optionalText(value, field) {
  return text(value, field, { required: false });
}

/** A non-empty array of strings. */
function textArray(value, field) {
  if (!Array.isArray(value)) fail(field, `expected an array of strings, got ${describe(value)}`);
  if (value.length === 0) fail(field, 'is empty');
  return value.map((item, i) => text(item, `${field}[${i}]`));
}

/** An integer that fits a uint32_t, within [min, max]. */
function uint32(value, field, { min = 0, max = UINT32_MAX } = {}) {
  if (value === undefined || value === null) fail(field, 'is required');
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail(field, `expected an integer, got ${describe(value)}${typeof value === 'number' ? ` (${value})` : ''}`);
  }
  if (value < min || value > max) fail(field, `${value} is outside ${min}..${max}`);
  return value;
}

/**
 * An integer that fits a uint64_t: a non-negative safe-integer Number, or a
 * BigInt up to 2^64 - 1 (as `createToken`'s `expiresAt`); koffi takes either.
 */
function uint64(value, field) {
  if (value === undefined || value === null) fail(field, 'is required');
  if (typeof value === 'bigint') {
    if (value < 0n || value > UINT64_MAX) fail(field, `${value} does not fit an unsigned 64-bit integer`);
    return value;
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    const shown = typeof value === 'number' ? ` (${value})` : '';
    fail(field, `expected a non-negative integer or a BigInt, got ${describe(value)}${shown}`);
  }
  if (value < 0) fail(field, `${value} is negative`);
  if (!Number.isSafeInteger(value)) fail(field, `${value} is not a safe integer (pass a BigInt)`);
  return value;
}

function optionalUint64(value, field) {
  return value === undefined || value === null ? undefined : uint64(value, field);
}

function optionalUint32(value, field, range) {
  return value === undefined || value === null ? undefined : uint32(value, field, range);
}

function boolean(value, field) {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') fail(field, `expected a boolean, got ${describe(value)}`);
  return value;
}

/**
 * An options object (or undefined) whose keys are all in `known`: a misspelt
 * option is an error rather than a silently ignored setting.
 */
function options(value, field, known) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    fail(field, `expected an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) fail(field, `unknown option "${key}" (known: ${known.join(', ')})`);
  }
  return value;
}

module.exports = {
  text,
  optionalText,
  textArray,
  uint32,
  optionalUint32,
  uint64,
  optionalUint64,
  boolean,
  options,
  UINT32_MAX,
  UINT64_MAX,
};
