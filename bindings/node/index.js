'use strict';
// beckon: call-invitation signaling for Node.js, over libbeckon's C ABI.
// See README.md for usage and index.d.ts for the typed API.

const native = require('./lib/native');
const { Client } = require('./lib/client');
const { createMemoryHub, createToken } = require('./lib/hub');
const { setLogHandler } = require('./lib/log');
const { ABI_VERSION, ABI_VERSION_MAJOR, ABI_VERSION_MINOR, LibraryLoadError } = native;
const {
  InviteeState,
  EventKind,
  ConnectionState,
  ConnectionReason,
  ErrorCode,
  LogLevel,
  PushProvider,
  ApnsEnvironment,
  PushOutcome,
  HistoryRole,
} = require('./lib/constants');

const callbacks = require('./lib/callbacks');

/** The library's version, e.g. "0.1.0" (loads the library). */
function version() {
  return native.library().version;
}

/**
 * The ABI version of the loaded library, `(major << 16) | minor`: the major of
 * ABI_VERSION and a minor at least its own (loading fails otherwise).
 */
function abiVersion() {
  return native.library().abiVersion;
}

/** The path the library was loaded from, and how it was found. */
function libraryInfo() {
  const lib = native.library();
  return { path: lib.path, source: lib.source };
}

/** Counters of the binding's callback routing, for diagnostics and tests. */
function diagnostics() {
  return callbacks.stats();
}

// Shorthand properties only: Node's ES-module loader reads the names from
// this literal, so `import { Client } from 'beckon'` works.
module.exports = {
  Client,
  createMemoryHub,
  createToken,
  setLogHandler,
  version,
  abiVersion,
  libraryInfo,
  diagnostics,
  ABI_VERSION,
  ABI_VERSION_MAJOR,
  ABI_VERSION_MINOR,
  LibraryLoadError,
  InviteeState,
  EventKind,
  ConnectionState,
  ConnectionReason,
  ErrorCode,
  LogLevel,
  PushProvider,
  ApnsEnvironment,
  PushOutcome,
  HistoryRole,
  // BeckonError and one subclass per error code (lib/errors.js).
  ...require('./lib/errors'),
};
