//! Results that callbacks fill in, by index, and a poll with a time limit:
//! for tests that fire many requests at once and check each answered once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Results filled in by callbacks, by index.
pub struct Slots<T> {
    slots: Mutex<Vec<Option<T>>>,
    filled: AtomicUsize,
}

impl<T: Send + 'static> Slots<T> {
    pub fn new(len: usize) -> Arc<Slots<T>> {
        Arc::new(Slots {
            slots: Mutex::new((0..len).map(|_| None).collect()),
            filled: AtomicUsize::new(0),
        })
    }

    /// Adds an empty slot; returns its index.
    pub fn add(&self) -> usize {
        let mut slots = self.slots.lock().unwrap();
        slots.push(None);
        slots.len() - 1
    }

    pub fn len(&self) -> usize {
        self.slots.lock().unwrap().len()
    }

    pub fn filled(&self) -> usize {
        self.filled.load(Ordering::SeqCst)
    }

    /// A callback that fills slot `index`; a second fill is a test failure.
    pub fn setter(self: &Arc<Self>, index: usize) -> impl FnOnce(T) + Send + 'static {
        let slots = self.clone();
        move |value| slots.fill(index, value)
    }

    pub fn fill(&self, index: usize, value: T) {
        let mut slots = self.slots.lock().unwrap();
        assert!(
            slots[index].is_none(),
            "a callback ran twice (slot {index})"
        );
        slots[index] = Some(value);
        self.filled.fetch_add(1, Ordering::SeqCst);
    }

    pub fn wait_all(&self, what: &str, limit: Duration) {
        wait_for(what, limit, || self.filled() == self.len());
    }

    /// Every value, once all are filled.
    pub fn take(&self) -> Vec<T> {
        let mut slots = self.slots.lock().unwrap();
        slots
            .iter_mut()
            .enumerate()
            .map(|(i, s)| s.take().unwrap_or_else(|| panic!("slot {i} is empty")))
            .collect()
    }
}

/// Polls `done` until it holds; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(25));
    }
}
