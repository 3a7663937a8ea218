//! The exactly-once promise, as a type. A `Pending<T>` is made when an operation
//! is accepted; whatever happens next, its callback is queued on the dispatcher
//! exactly once: with the result, with SHUTDOWN when the client is freed first,
//! or with INTERNAL when a panic dropped it on the way.

use std::sync::Arc;

use super::dispatcher::{Dispatcher, Job};
use crate::error::{Error, Result};
use crate::transport::Reply;

pub type Callback<T> = Box<dyn FnOnce(Result<T>) + Send>;

pub(crate) struct Pending<T: Send + 'static> {
    dispatcher: Arc<Dispatcher>,
    callback: Option<Callback<T>>,
}

impl<T: Send + 'static> Pending<T> {
    pub fn new(dispatcher: Arc<Dispatcher>, callback: Callback<T>) -> Pending<T> {
        Pending {
            dispatcher,
            callback: Some(callback),
        }
    }

    pub fn complete(mut self, result: Result<T>) {
        if let Some(callback) = self.callback.take() {
            self.dispatcher
                .enqueue(Job::Call(Box::new(Completion { callback, result })));
        }
    }

    /// As a transport `Reply`.
    pub fn into_reply(self) -> Reply<T> {
        Box::new(move |result| self.complete(result))
    }
}

impl<T: Send + 'static> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            self.dispatcher.enqueue(Job::Call(Box::new(Completion {
                callback,
                result: Err(Error::internal(
                    "the operation was abandoned inside the library (a panic); see the log",
                )),
            })));
        }
    }
}

/// A queued callback with its result.
pub(crate) trait Call: Send {
    /// Runs the callback; with `shutdown` it gets SHUTDOWN instead of the result.
    fn run(self: Box<Self>, shutdown: bool);
}

struct Completion<T> {
    callback: Callback<T>,
    result: Result<T>,
}

impl<T: Send> Call for Completion<T> {
    fn run(self: Box<Self>, shutdown: bool) {
        let result = if shutdown {
            Err(Error::shutdown())
        } else {
            self.result
        };
        (self.callback)(result);
    }
}
