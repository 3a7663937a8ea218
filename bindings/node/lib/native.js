'use strict';
// The C ABI as koffi sees it: the library's location, the ABI check, the C
// types of include/beckon.h and one binding per function. Nothing else in the
// package calls koffi's `load` or names a C symbol.
//
// Every type here is anonymous (koffi keeps named types in one process-wide
// table, and a second copy of this package in the same process would collide
// with the first).

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

/** The `BECKON_ABI_VERSION_MAJOR` of the header this binding was written against. */
const ABI_VERSION_MAJOR = 2;
/** The `BECKON_ABI_VERSION_MINOR` of the header this binding was written against. */
const ABI_VERSION_MINOR = 3;
/** The `BECKON_ABI_VERSION` of that header: `(major << 16) | minor`. */
const ABI_VERSION = ((ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR) >>> 0;

/** `BECKON_ID_CAPACITY`: bytes of `beckon_client_info.user_id` and `.device_id`. */
const ID_CAPACITY = 68;

/** An ABI version as "major.minor", e.g. "2.1". */
function abiVersionText(version) {
  return `${version >>> 16}.${version & 0xffff}`;
}

/**
 * Whether a library of ABI version `found` serves a binding written for
 * `expected` (this one's by default): the same major version, and a minor
 * version at least the binding's (`BECKON_ABI_COMPATIBLE` in C).
 */
function abiCompatible(found, expected = ABI_VERSION) {
  return found >>> 16 === expected >>> 16 && (found & 0xffff) >= (expected & 0xffff);
}

/** The library's file name on this platform, as the system loader knows it. */
function libraryFileName(platform = process.platform) {
  if (platform === 'win32') return 'beckon.dll';
  if (platform === 'darwin') return 'libbeckon.dylib';
  return 'libbeckon.so';
}

/**
 * Where to load libbeckon from, in order: the `BECKON_LIBRARY` environment
 * variable (a path to the file; a bare file name is left to the system
 * loader), the copy bundled in this package under
 * `prebuilds/<platform>-<arch>/`, then the system loader's search path.
 */
function locateLibrary(env = process.env) {
  const fromEnv = env.BECKON_LIBRARY;
  if (fromEnv !== undefined && fromEnv !== '') {
    const isPath = fromEnv.includes('/') || fromEnv.includes(path.sep);
    return { path: isPath ? path.resolve(fromEnv) : fromEnv, source: 'BECKON_LIBRARY' };
  }
  const bundled = path.join(
    __dirname,
    '..',
    'prebuilds',
    `${process.platform}-${process.arch}`,
    libraryFileName(),
  );
  if (fs.existsSync(bundled)) return { path: bundled, source: 'bundled' };
  return { path: libraryFileName(), source: 'system' };
}

// C types (include/beckon.h). Field order and types are the ABI.
const str = 'const char *';
const T = {};
T.client = koffi.opaque();
T.clientPtr = koffi.pointer(T.client);
T.clientConfig = koffi.struct({
  struct_size: 'uint32_t',
  server_url: str,
  device_id: str,
  dispatch_mode: 'int32_t',
  request_timeout_ms: 'uint32_t',
});
T.inviteeState = koffi.struct({ user_id: str, state: 'int32_t' });
T.notificationConfig = koffi.struct({
  struct_size: 'uint32_t',
  title: str,
  message: str,
  resource_id: str,
  payload: str,
});
T.invitationConfig = koffi.struct({
  struct_size: 'uint32_t',
  timeout_seconds: 'uint32_t',
  extended_data: str,
  notification: koffi.pointer(T.notificationConfig),
  flags: 'uint32_t',
  request_timeout_ms: 'uint32_t', // 0: the client's (ABI 2.0's `reserved`)
});
T.answerConfig = koffi.struct({
  struct_size: 'uint32_t',
  request_timeout_ms: 'uint32_t',
  extended_data: str,
});
T.cancelConfig = koffi.struct({
  struct_size: 'uint32_t',
  request_timeout_ms: 'uint32_t',
  invitees: koffi.pointer(str), // NULL with a count of 0: every invitee
  invitee_count: 'size_t',
  extended_data: str,
});
// Filled by beckon_client_get_info; the char arrays come back as strings.
T.clientInfo = koffi.struct({
  struct_size: 'uint32_t',
  connection_state: 'int32_t',
  user_id: koffi.array('char', ID_CAPACITY, 'String'),
  device_id: koffi.array('char', ID_CAPACITY, 'String'),
});
T.hubConfig = koffi.struct({
  struct_size: 'uint32_t',
  secret: str,
  max_invitees: 'uint32_t',
  retention_ms: 'uint32_t',
});
// Pointers inside the structs that callbacks receive are read as addresses
// (`void *`) and decoded explicitly, with their counts, while the callback runs.
// `beckon_event.notification` points to one of these (the layout of
// beckon_notification_config; its struct_size is set by the library).
T.eventNotification = koffi.struct({
  struct_size: 'uint32_t',
  title: str,
  message: str,
  resource_id: str,
  payload: str,
});
T.event = koffi.struct({
  kind: 'int32_t',
  invitation_id: str,
  inviter: str,
  user_id: str,
  state: 'int32_t',
  extended_data: str,
  invitees: 'void *',
  invitee_count: 'size_t',
  notification: 'void *', // const beckon_event_notification *
  seconds_left: 'uint32_t',
  connection_state: 'int32_t',
  connection_reason: 'int32_t',
  // ABI 2.2: INVITATION_PUSH_RESULT's fields.
  push_provider: 'int32_t',
  push_outcome: 'int32_t',
  device_id: str,
  push_reason: str,
});
// ABI 2.2.
T.pushTarget = koffi.struct({
  struct_size: 'uint32_t',
  provider: 'int32_t',
  token: str,
  topic: str,
  environment: 'int32_t',
  alert_token: str,
});
// ABI 2.3: history. `since_ms` and `until_ms` take a Number or a BigInt.
T.invitationQuery = koffi.struct({
  struct_size: 'uint32_t',
  role: 'int32_t',
  since_ms: 'uint64_t',
  until_ms: 'uint64_t',
  limit: 'uint32_t',
  cursor: str, // NULL or "": the first page
});
// One entry of `beckon_invitation_page_result.invitations`.
T.invitationSummary = koffi.struct({
  invitation_id: str,
  inviter: str,
  invitees: 'void *', // const beckon_invitee *
  invitee_count: 'size_t',
  created_ms: 'uint64_t',
  ended_ms: 'uint64_t',
  sent_by_server: 'int32_t',
});
T.result = koffi.struct({ error: 'int32_t', error_message: str });
T.sendResult = koffi.struct({
  error: 'int32_t',
  error_message: str,
  invitation_id: str,
  error_invitees: 'void *',
  error_invitee_count: 'size_t',
});
T.cancelResult = koffi.struct({
  error: 'int32_t',
  error_message: str,
  error_invitees: 'void *',
  error_invitee_count: 'size_t',
});
// ABI 2.3.
T.invitationPageResult = koffi.struct({
  error: 'int32_t',
  error_message: str,
  invitations: 'void *', // const beckon_invitation_summary *
  invitation_count: 'size_t',
  next_cursor: str, // "" on the last page
});
// Callback prototypes. `user_data` is a token (a BigInt), never dereferenced;
// the struct pointer arrives as an address, decoded with the types above.
T.eventCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'void *']));
T.resultCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'void *']));
T.sendCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'void *']));
T.cancelCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'void *']));
T.pageCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'void *']));
T.stringArray = koffi.pointer(str);
// beckon_log_callback(user_data, level, tag, sub_tag, message): the strings
// are copied into JavaScript while it runs.
T.logCallback = koffi.pointer(koffi.proto(null, 'void', ['void *', 'int32_t', str, str, str]));
T.logConfig = koffi.struct({
  struct_size: 'uint32_t',
  max_level: 'int32_t',
  delivery: 'uint32_t',
  reserved: 'uint32_t', // must be 0
  handler: T.logCallback,
  user_data: 'void *',
});

/** Declares every function of the C API this binding uses. */
function bind(lib) {
  const f = (name, ret, args) => lib.func(name, ret, args);
  const err = 'int32_t';
  return {
    beckon_version: f('beckon_version', str, []),
    beckon_abi_version: f('beckon_abi_version', 'uint32_t', []),
    beckon_error_name: f('beckon_error_name', str, ['int32_t']),
    beckon_error_description: f('beckon_error_description', str, ['int32_t']),
    beckon_last_error_message: f('beckon_last_error_message', str, []),
    beckon_client_new: f('beckon_client_new', err, [
      koffi.pointer(T.clientConfig),
      koffi.out(koffi.pointer(T.clientPtr)),
    ]),
    beckon_client_set_event_handler: f('beckon_client_set_event_handler', err, [
      T.clientPtr,
      T.eventCallback,
      'void *',
    ]),
    beckon_client_login: f('beckon_client_login', err, [
      T.clientPtr,
      str,
      str,
      T.resultCallback,
      'void *',
    ]),
    beckon_client_logout: f('beckon_client_logout', err, [T.clientPtr, T.resultCallback, 'void *']),
    beckon_client_renew_token: f('beckon_client_renew_token', err, [
      T.clientPtr,
      str,
      T.resultCallback,
      'void *',
    ]),
    beckon_client_poll: f('beckon_client_poll', err, [
      T.clientPtr,
      'int32_t',
      koffi.out(koffi.pointer('uint32_t')),
    ]),
    beckon_client_free: f('beckon_client_free', err, [T.clientPtr]),
    beckon_client_get_info: f('beckon_client_get_info', err, [
      T.clientPtr,
      koffi.inout(koffi.pointer(T.clientInfo)),
    ]),
    beckon_memory_hub_create: f('beckon_memory_hub_create', err, [str, koffi.pointer(T.hubConfig)]),
    beckon_token_create: f('beckon_token_create', err, [
      str,
      str,
      'uint64_t',
      'void *', // a Buffer the library writes the NUL-terminated token into
      'size_t',
    ]),
    beckon_send_invitation: f('beckon_send_invitation', err, [
      T.clientPtr,
      T.stringArray,
      'size_t',
      koffi.pointer(T.invitationConfig),
      T.sendCallback,
      'void *',
    ]),
    beckon_cancel_invitation_ex: f('beckon_cancel_invitation_ex', err, [
      T.clientPtr,
      str,
      koffi.pointer(T.cancelConfig),
      T.cancelCallback,
      'void *',
    ]),
    beckon_accept_invitation_ex: f('beckon_accept_invitation_ex', err, [
      T.clientPtr,
      str,
      koffi.pointer(T.answerConfig),
      T.resultCallback,
      'void *',
    ]),
    beckon_refuse_invitation_ex: f('beckon_refuse_invitation_ex', err, [
      T.clientPtr,
      str,
      koffi.pointer(T.answerConfig),
      T.resultCallback,
      'void *',
    ]),
    beckon_set_log_config: f('beckon_set_log_config', err, [koffi.pointer(T.logConfig)]),
    beckon_client_set_push_target: f('beckon_client_set_push_target', err, [
      T.clientPtr,
      koffi.pointer(T.pushTarget),
      T.resultCallback,
      'void *',
    ]),
    beckon_client_clear_push_target: f('beckon_client_clear_push_target', err, [
      T.clientPtr,
      T.resultCallback,
      'void *',
    ]),
    // ABI 2.3.
    beckon_query_invitations: f('beckon_query_invitations', err, [
      T.clientPtr,
      koffi.pointer(T.invitationQuery),
      T.pageCallback,
      'void *',
    ]),
    beckon_push_provider_name: f('beckon_push_provider_name', str, ['int32_t']),
    beckon_push_outcome_name: f('beckon_push_outcome_name', str, ['int32_t']),
    // The test hooks of a library built with the `test-hooks` feature (never
    // a release): null when absent.
    testHooks: testHooks(lib),
  };
}

/** The push test hooks, if the library has them (see `bind`). */
function testHooks(lib) {
  try {
    return {
      beckon_test_memory_hub_create_with_push: lib.func('beckon_test_memory_hub_create_with_push', 'int32_t', [
        'const char *',
      ]),
      beckon_test_offline_push_target: lib.func('beckon_test_offline_push_target', 'int32_t', [
        'const char *',
        'const char *',
        'const char *',
        koffi.pointer(T.pushTarget),
      ]),
    };
  } catch {
    return null;
  }
}

/**
 * Raised when libbeckon cannot be loaded or does not serve the ABI this
 * binding speaks (another major version, or an older minor version).
 */
class LibraryLoadError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'LibraryLoadError';
  }
}

let loaded = null;

/**
 * Loads libbeckon once per process and checks its ABI version. Returns
 * `{ fn, path, source, version, abiVersion }`; `fn` holds the C functions.
 * Throws LibraryLoadError when the library is missing, does not serve this
 * binding's ABI, or lacks a function.
 */
function library() {
  if (loaded !== null) return loaded;
  const where = locateLibrary();
  let lib;
  try {
    lib = koffi.load(where.path);
  } catch (cause) {
    const hint =
      where.source === 'system'
        ? ` (no BECKON_LIBRARY and no bundled copy under prebuilds/${process.platform}-${process.arch}/;` +
          ' set BECKON_LIBRARY to the path of the built library)'
        : '';
    throw new LibraryLoadError(`cannot load libbeckon from ${where.path}${hint}: ${cause.message}`, {
      cause,
    });
  }
  // The ABI version first, alone: a library of another ABI may lack (or
  // change) the other functions, and must be reported as what it is.
  let abiVersion;
  try {
    abiVersion = lib.func('beckon_abi_version', 'uint32_t', [])();
  } catch (cause) {
    throw new LibraryLoadError(`${where.path} is not libbeckon: ${cause.message}`, { cause });
  }
  if (!abiCompatible(abiVersion, ABI_VERSION)) {
    throw new LibraryLoadError(
      `${where.path} has ABI version ${abiVersionText(abiVersion)}, but this binding needs ABI` +
        ` ${abiVersionText(ABI_VERSION)} (the same major, an equal or newer minor):` +
        ' use a library of a matching release',
    );
  }
  let fn;
  try {
    fn = bind(lib);
  } catch (cause) {
    throw new LibraryLoadError(`${where.path} is not a usable libbeckon: ${cause.message}`, { cause });
  }
  loaded = {
    fn,
    path: where.path,
    source: where.source,
    version: fn.beckon_version(),
    abiVersion,
  };
  return loaded;
}

module.exports = {
  ABI_VERSION,
  ABI_VERSION_MAJOR,
  ABI_VERSION_MINOR,
  ID_CAPACITY,
  LibraryLoadError,
  T,
  abiCompatible,
  abiVersionText,
  koffi,
  library,
  locateLibrary,
  libraryFileName,
};
