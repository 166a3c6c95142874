//! Answers kept in memory for as long as no process has committed a change since they were
//! read (see [`crate::common::db::watch`]), and no longer than a time to live: the callers a
//! request checked, the items it answered. A hit spares a request its database reads; any
//! commit, of this process or another, makes every entry a miss, so what is served is what
//! the database said after the last commit.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::db::watch::Freshness;

struct Entry<V> {
    read_at: Instant,
    generation: u64,
    value: V,
    weight: usize,
}

/// A cache of `V` by `K`, each entry good while the commits' generation it was read in lasts.
pub struct FreshCache<K, V> {
    ttl: Duration,
    capacity: usize,
    freshness: Freshness,
    entries: Mutex<Entries<K, V>>,
}

/// The entries and the sum of their weights.
struct Entries<K, V> {
    by_key: HashMap<K, Entry<V>>,
    weight: usize,
}

impl<K: Eq + Hash, V: Clone> FreshCache<K, V> {
    /// A cache of entries weighing `capacity` at most together (a full cache is emptied
    /// rather than managed: it refills in one request per key), each living `ttl` at most. A
    /// zero `ttl` or `capacity` keeps nothing.
    pub fn new(ttl: Duration, capacity: usize, freshness: Freshness) -> FreshCache<K, V> {
        FreshCache {
            ttl,
            capacity,
            freshness,
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                weight: 0,
            }),
        }
    }

    fn keeps(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The generation now, or `None` when nothing may be kept: read it before reading the
    /// database, and [`FreshCache::put`] the result under it, so that a commit meanwhile
    /// outdates the entry.
    pub fn generation(&self) -> Option<u64> {
        if !self.keeps() {
            return None;
        }
        self.freshness.generation()
    }

    /// The value kept for `key`, if it is still fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let generation = self.generation()?;
        let entries = self.entries.lock().ok()?;
        let entry = entries.by_key.get(key)?;
        (entry.generation == generation && entry.read_at.elapsed() < self.ttl)
            .then(|| entry.value.clone())
    }

    /// Keeps `value`, of `weight` (in the unit of the capacity), for `key`, read in
    /// `generation` (from [`FreshCache::generation`]; `None` keeps nothing). A value heavier
    /// than the whole capacity is not kept.
    pub fn put(&self, key: K, generation: Option<u64>, value: V, weight: usize) {
        let Some(generation) = generation else {
            return;
        };
        if weight > self.capacity {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.weight + weight > self.capacity {
            entries.by_key.clear();
            entries.weight = 0;
        }
        let entry = Entry {
            read_at: Instant::now(),
            generation,
            value,
            weight,
        };
        if let Some(replaced) = entries.by_key.insert(key, entry) {
            entries.weight -= replaced.weight;
        }
        entries.weight += weight;
    }
}
