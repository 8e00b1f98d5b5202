//! The state cache: the state of recently commanded aggregates, so that a
//! command on a hot aggregate skips the load.
//!
//! A cached state is trusted at its version: the append's exact expected
//! version catches any write made elsewhere (a conflict drops the entry and
//! the retry reloads). An entry is taken out while a command uses it, so
//! concurrent commands on one aggregate in one process never share a state.
//! States may hold opened personal data, so an entry is valid only under the
//! `Crypto` forget epoch it was loaded in, and only for a bounded time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{StreamId, StreamVersion};

struct Entry<A> {
    state: A,
    version: StreamVersion,
    epoch: u64,
    cached_at: Instant,
}

struct Inner<A> {
    entries: HashMap<StreamId, Entry<A>>,
    /// Insertion order, for eviction (may name streams no longer cached).
    order: VecDeque<StreamId>,
}

/// Up to `capacity` states, first in first out, each valid for `ttl`.
pub(crate) struct StateCache<A> {
    inner: Mutex<Inner<A>>,
    capacity: usize,
    ttl: Duration,
}

impl<A> StateCache<A> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
            capacity,
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<A>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `stream`'s state out, if cached under `epoch` and fresh.
    pub(crate) fn take(&self, stream: &StreamId, epoch: u64) -> Option<(A, StreamVersion)> {
        let entry = self.lock().entries.remove(stream)?;
        (entry.epoch == epoch && entry.cached_at.elapsed() < self.ttl)
            .then_some((entry.state, entry.version))
    }

    /// Caches `stream`'s state at `version`, loaded under `epoch`.
    pub(crate) fn put(&self, stream: StreamId, state: A, version: StreamVersion, epoch: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        while inner.entries.len() >= self.capacity {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        if inner.order.len() > self.capacity.saturating_mul(4) {
            // Drop the names of streams taken out since, so the queue stays bounded.
            let Inner { entries, order } = &mut *inner;
            order.retain(|s| entries.contains_key(s));
        }
        inner.order.push_back(stream.clone());
        inner.entries.insert(
            stream,
            Entry {
                state,
                version,
                epoch,
                cached_at: Instant::now(),
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: u32) -> StreamId {
        StreamId::new(format!("s-{n}")).unwrap()
    }

    #[test]
    fn a_state_is_taken_once() {
        let cache = StateCache::new(10, Duration::from_secs(60));
        cache.put(stream(1), 7, StreamVersion::new(3), 0);
        assert_eq!(cache.take(&stream(1), 0), Some((7, StreamVersion::new(3))));
        assert_eq!(cache.take(&stream(1), 0), None);
    }

    #[test]
    fn another_epoch_or_an_old_entry_is_dropped() {
        let cache = StateCache::new(10, Duration::from_secs(60));
        cache.put(stream(1), 7, StreamVersion::new(3), 0);
        assert_eq!(cache.take(&stream(1), 1), None);
        assert_eq!(cache.len(), 0);
        let expired = StateCache::new(10, Duration::ZERO);
        expired.put(stream(1), 7, StreamVersion::new(3), 0);
        assert_eq!(expired.take(&stream(1), 0), None);
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let cache = StateCache::new(2, Duration::from_secs(60));
        for n in 0..5 {
            cache.put(stream(n), n, StreamVersion::new(1), 0);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.take(&stream(4), 0), Some((4, StreamVersion::new(1))));
        assert_eq!(cache.take(&stream(0), 0), None);
        let none = StateCache::new(0, Duration::from_secs(60));
        none.put(stream(1), 1, StreamVersion::new(1), 0);
        assert_eq!(none.take(&stream(1), 0), None);
    }
}
