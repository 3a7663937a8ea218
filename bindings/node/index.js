'use strict';
// beckon: call-invitation signaling for Node.js, over libbeckon's C ABI.
// See README.md for usage and index.d.ts for the typed API.

const native = require('./lib/native');
const { Client } = require('./lib/client');
const { createMemoryHub, createToken } = require('./lib/hub');
const constants = require('./lib/constants');
const errors = require('./lib/errors');
const callbacks = require('./lib/callbacks');

/** The library's version, e.g. "0.1.0" (loads the library). */
function version() {
  return native.library().version;
}

/** The ABI version of the loaded library (equal to ABI_VERSION, or loading failed). */
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

module.exports = {
  Client,
  createMemoryHub,
  createToken,
  version,
  abiVersion,
  libraryInfo,
  diagnostics,
  ABI_VERSION: native.ABI_VERSION,
  LibraryLoadError: native.LibraryLoadError,
  InviteeState: constants.InviteeState,
  EventKind: constants.EventKind,
  ConnectionState: constants.ConnectionState,
  ConnectionReason: constants.ConnectionReason,
  ErrorCode: constants.ErrorCode,
  BeckonError: errors.BeckonError,
  InvalidArgumentError: errors.InvalidArgumentError,
  TooManyInviteesError: errors.TooManyInviteesError,
  PayloadTooLargeError: errors.PayloadTooLargeError,
  NotLoggedInError: errors.NotLoggedInError,
  AuthFailedError: errors.AuthFailedError,
  TokenExpiredError: errors.TokenExpiredError,
  InvitationNotFoundError: errors.InvitationNotFoundError,
  NotPermittedError: errors.NotPermittedError,
  AlreadyAnsweredError: errors.AlreadyAnsweredError,
  InvitationClosedError: errors.InvitationClosedError,
  NetworkError: errors.NetworkError,
  RequestTimeoutError: errors.RequestTimeoutError,
  RateLimitedError: errors.RateLimitedError,
  ShutdownError: errors.ShutdownError,
  ServerError: errors.ServerError,
  InternalError: errors.InternalError,
};
