//! Lock striping: state split over independent mutexes so that no operation takes
//! a hub-wide lock (the hot path for 250k invitations/s must scale with cores).

use parking_lot::{Mutex, MutexGuard};

pub(crate) const SHARD_COUNT: usize = 64;

pub struct Shards<T> {
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Shards<T> {
    pub fn new() -> Shards<T> {
        Shards {
            shards: (0..SHARD_COUNT).map(|_| Mutex::new(T::default())).collect(),
        }
    }
}

impl<T> Shards<T> {
    pub fn lock(&self, key: u64) -> MutexGuard<'_, T> {
        // SHARD_COUNT is a power of two; the low bits of a good hash are well spread.
        self.shards[(key as usize) & (SHARD_COUNT - 1)].lock()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mutex<T>> {
        self.shards.iter()
    }
}

/// FNV-1a: a fast, stable hash for choosing a user's shard.
pub fn hash_str(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^ (hash >> 29)
}
