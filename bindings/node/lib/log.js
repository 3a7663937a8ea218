'use strict';
// The library's log records, handed to a JavaScript function.
//
// The handler is installed with beckon_set_log_config and QUEUED delivery: the
// library queues its records and calls the handler on its own log thread
// ("beckon-log"), one record at a time, outside every lock of the library.
// koffi forwards each call to the JavaScript thread and holds the log thread
// until the function has run. (Direct delivery would call the handler on any
// library thread, possibly under the library's locks, and a JavaScript thread
// meanwhile in a library call needing such a lock would wait forever.)
//
// Replacing the handler: beckon_set_log_config returns once the old handler is
// not running and will never be called again. While it waits, the log thread
// may be inside the old handler, waiting for the JavaScript thread; so the
// call runs on a koffi worker thread (`.async`), never on the JavaScript
// thread, and setLogHandler returns a promise that resolves after it
// returned. Only then is the old handler's koffi registration released.
//
// Process lifetime: an installed handler does not keep the event loop alive
// (open clients and pending operations do, as everywhere in this binding); a
// setLogHandler call in progress does. But the library's log thread must not
// call into JavaScript while Node tears the process down (koffi then aborts
// the process), so when the event loop runs out of work ('beforeExit') with a
// handler installed, the binding removes it, as setLogHandler(null) would;
// once that is done the loop is empty again and the process exits. Records
// still queued then are not delivered. (process.exit() skips 'beforeExit':
// await setLogHandler(null) before calling it.)

const { koffi, T, library } = require('./native');
const callbacks = require('./callbacks');
const v = require('./validate');
const { LogLevel, LOG_QUEUED, logLevelName } = require('./constants');
const { BeckonError, InvalidArgumentError } = require('./errors');

const LOG_OPTIONS = ['maxLevel'];
const DEFAULT_MAX_LEVEL = LogLevel.INFO;

/** The koffi registration of the handler installed now (null: none). */
let installed = null;
/** Calls are applied one after the other, in call order: the last one wins. */
let queue = Promise.resolve();
/** setLogHandler calls not applied yet. */
let pending = 0;
let exitHook = false;

/** With the event loop out of work, removes the handler so that the process can exit safely. */
function onBeforeExit() {
  if (installed !== null && pending === 0) setLogHandler(null).catch(callbacks.raiseLater);
}

/** `options.maxLevel`: a LogLevel value or name; INFO when omitted. */
function maxLevelOf(value) {
  if (value === undefined || value === null) return DEFAULT_MAX_LEVEL;
  if (typeof value === 'string' && Object.hasOwn(LogLevel, value)) return LogLevel[value];
  if (Number.isInteger(value) && value >= LogLevel.OFF && value <= LogLevel.TRACE) return value;
  throw new InvalidArgumentError(
    `options.maxLevel: expected a LogLevel (0 to 5, or "OFF", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"),` +
      ` got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
  );
}

/** The C-callable function for `handler`: builds the record, keeps exceptions out of C. */
function trampoline(handler) {
  return (_userData, level, tag, subTag, message) => {
    try {
      handler(
        Object.freeze({
          level,
          levelName: logLevelName(level),
          tag: tag ?? '',
          subTag: subTag ?? '',
          message: message ?? '',
        }),
      );
    } catch (error) {
      callbacks.raiseLater(error);
    }
  };
}

/** Installs `handler` (or none) off the JavaScript thread; resolves once the old one is retired. */
function apply(handler, maxLevel) {
  const fn = library().fn;
  const on = handler !== null && maxLevel !== LogLevel.OFF;
  const registered = on ? koffi.register(trampoline(handler), T.logCallback) : null;
  const config = {
    struct_size: koffi.sizeof(T.logConfig),
    max_level: on ? maxLevel : LogLevel.OFF,
    delivery: LOG_QUEUED,
    reserved: 0,
    handler: registered,
    user_data: null,
  };
  return new Promise((resolve, reject) => {
    callbacks.keepAlive.hold();
    const done = (error, code) => {
      callbacks.keepAlive.release();
      if (error || code !== 0) {
        // Nothing was installed: the old handler stays.
        if (registered !== null) koffi.unregister(registered);
        // A message set on the worker thread cannot be read here.
        reject(error ?? BeckonError.fromCode(code, `config: ${callbacks.describe(code)}`));
        return;
      }
      // The library will never call the old handler again.
      const old = installed;
      installed = registered;
      if (old !== null) koffi.unregister(old);
      if (installed !== null && !exitHook) {
        exitHook = true;
        process.on('beforeExit', onBeforeExit);
      }
      resolve();
    };
    try {
      fn.beckon_set_log_config.async(config, done);
    } catch (error) {
      done(error);
    }
  });
}

/**
 * Sends the library's log records up to `options.maxLevel` to `handler`, on
 * the JavaScript thread; `null` (or maxLevel OFF) stops logging. Resolves once
 * the handler it replaces will never be called again.
 */
function setLogHandler(handler, options) {
  let maxLevel;
  try {
    if (handler !== null && typeof handler !== 'function') {
      throw new InvalidArgumentError(`handler: expected a function or null, got ${describe(handler)}`);
    }
    const o = v.options(options, 'options', LOG_OPTIONS);
    maxLevel = maxLevelOf(o.maxLevel);
    library(); // a LibraryLoadError rejects this call, not the queue
  } catch (error) {
    return Promise.reject(error);
  }
  pending += 1;
  const result = queue.then(() => apply(handler, maxLevel)).finally(() => {
    pending -= 1;
  });
  queue = result.catch(() => {});
  return result;
}

function describe(value) {
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

module.exports = { setLogHandler };
