'use strict';
// How C callbacks reach JavaScript.
//
// Five koffi-registered functions (operation result, send result, cancel
// result, history page, event) serve every client and operation of the
// process. Each call
// into C passes a fresh token as its `void *user_data`; the token keys the
// JavaScript side of that call (a promise's resolve/reject, or a client's
// event sink) in a Map until the library hands the token back. So:
// - an operation's JavaScript callback stays alive exactly until its single
//   call, then its entry is deleted (nothing leaks, and a second call with the
//   same token would be counted as stray rather than settle anything twice);
// - no per-call koffi registration exists, so there is no limit on operations
//   in flight (koffi has 8192 registration slots per process) and no slot is
//   released while a library thread is still returning through it.
//
// Threads: a thread-mode client's callbacks run on its dispatcher thread, a
// pool-mode client's on one of the library's pool threads (shared by every
// pool-mode client). koffi forwards such a call to the JavaScript thread and
// blocks the library thread until the function has run, so the struct
// pointers stay valid while they are decoded here. The JavaScript thread must
// therefore never wait synchronously for a dispatcher or a pool thread
// (client.js frees thread- and pool-mode clients off the JavaScript thread).
// Poll-mode callbacks run on the JavaScript thread itself, inside
// `beckon_client_poll`.

const { koffi, T, library } = require('./native');
const decode = require('./decode');
const { BeckonError, InternalError } = require('./errors');

/** Node's event loop does not wait for koffi's forwarded calls: keep it alive. */
const keepAlive = (() => {
  let holds = 0;
  let timer = null;
  return {
    hold() {
      if (holds++ === 0) {
        if (timer === null) timer = setInterval(() => {}, 0x7fffffff);
        timer.ref();
      }
    },
    release() {
      if (--holds === 0) timer.unref();
    },
    get holds() {
      return holds;
    },
  };
})();

/** Raises an error outside the C call stack, as an uncaught exception. */
function raiseLater(error) {
  process.nextTick(() => {
    throw error;
  });
}

let nextToken = 1n;
const operations = new Map(); // token -> { decode, resolve, reject }
const eventSinks = new Map(); // token -> (event) => void
let strayCallbacks = 0;

function stray(what, token) {
  strayCallbacks += 1;
  process.emitWarning(`libbeckon delivered a ${what} callback for unknown token ${token}`, {
    code: 'BECKON_STRAY_CALLBACK',
  });
}

/** The body of every operation trampoline: settle the one promise the token names. */
function completeOperation(token, address) {
  try {
    const op = operations.get(token);
    if (op === undefined) {
      stray('result', token);
      return;
    }
    operations.delete(token);
    keepAlive.release();
    let outcome;
    try {
      outcome = op.decode(address);
    } catch (cause) {
      op.reject(new InternalError(`cannot read the library's result: ${cause.message}`, { cause }));
      return;
    }
    if (outcome.error === 0) {
      op.resolve(outcome.value);
    } else {
      op.reject(BeckonError.fromCode(outcome.error, outcome.message || describe(outcome.error)));
    }
  } catch (error) {
    raiseLater(error);
  }
}

function deliverEvent(token, address) {
  try {
    const sink = eventSinks.get(token);
    // After beckon_client_free returns no event can come; while it runs, the
    // library drops queued events. A missing sink is therefore a closed client.
    if (sink === undefined) return;
    sink(decode.event(address));
  } catch (error) {
    raiseLater(error);
  }
}

let trampolines = null;

/** The registered C function pointers, made on first use and kept for the process. */
function registered() {
  if (trampolines === null) {
    trampolines = {
      result: koffi.register(completeOperation, T.resultCallback),
      send: koffi.register(completeOperation, T.sendCallback),
      cancel: koffi.register(completeOperation, T.cancelCallback),
      page: koffi.register(completeOperation, T.pageCallback),
      event: koffi.register(deliverEvent, T.eventCallback),
    };
  }
  return trampolines;
}

const decoders = {
  result: decode.result,
  send: decode.sendResult,
  cancel: decode.cancelResult,
  page: decode.pageResult,
};

/** The library's description of a code (static text), for errors without a message. */
function describe(code) {
  return library().fn.beckon_error_description(code);
}

/**
 * The error for a code a C function just returned: its message is read at
 * once, on this thread, as beckon_last_error_message() requires.
 */
function lastError(code) {
  const message = library().fn.beckon_last_error_message();
  return BeckonError.fromCode(code, message || describe(code));
}

/**
 * Starts one asynchronous C operation. `start(callback, token)` makes the C
 * call and returns its code; the promise settles from the callback (exactly
 * once) or, when the call itself fails, at once with that error (the library
 * then never calls back, so the token is dropped here).
 *
 * @param {'result' | 'send' | 'cancel' | 'page'} kind which callback type the C function takes
 */
function operation(kind, start) {
  return new Promise((resolve, reject) => {
    const token = nextToken++;
    operations.set(token, { decode: decoders[kind], resolve, reject });
    keepAlive.hold();
    let code;
    try {
      code = start(registered()[kind], token);
    } catch (error) {
      // koffi refused an argument: C was not called.
      operations.delete(token);
      keepAlive.release();
      reject(error);
      return;
    }
    if (code !== 0) {
      const error = lastError(code);
      if (operations.delete(token)) keepAlive.release();
      reject(error);
    }
  });
}

/** Routes a client's events to `sink` until `removeEventSink(token)`. */
function addEventSink(sink) {
  const token = nextToken++;
  eventSinks.set(token, sink);
  return { token, callback: registered().event };
}

function removeEventSink(token) {
  eventSinks.delete(token);
}

/** Counters for tests and diagnostics. */
function stats() {
  return {
    pendingOperations: operations.size,
    eventSinks: eventSinks.size,
    strayCallbacks,
    keepAliveHolds: keepAlive.holds,
  };
}

module.exports = { operation, lastError, describe, addEventSink, removeEventSink, keepAlive, raiseLater, stats };
