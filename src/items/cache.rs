//! The tasks and demands recently answered by `GET /items/{key}`, kept as the JSON sent, so
//! that a client polling an item (a frontend's detail view, a sync script checking a
//! version) costs no database read while nothing has changed.
//!
//! An entry is served only while no process has committed a change since it was read (see
//! [`crate::common::fresh_cache`]): one through this server is seen before its answer goes
//! out, one by another process within `database.watch_ms`. Entries are kept per caller's
//! visibility, as a requester sees other items than the team. Incidents are never kept: their
//! SLA clocks run with the time, not with commits.

use std::time::Duration;

use actix_web::web::Bytes;

use crate::common::actor::Visibility;
use crate::common::db::watch::Freshness;
use crate::common::fresh_cache::FreshCache;
use crate::items::types::Item;

/// How long an entry lives at most, even when nothing commits.
const TTL: Duration = Duration::from_secs(60);

/// An item as answered: its JSON and its version (the `ETag`).
#[derive(Clone)]
pub struct KeptItem {
    /// The JSON of the item.
    pub body: Bytes,
    /// Its version.
    pub version: i64,
}

/// The cache; one per app, shared by its workers.
pub struct ItemCache {
    kept: FreshCache<(String, Visibility), KeptItem>,
}

/// The cache's key for an item asked for as `key` (a key in any case, or an id).
fn key_of(key: &str, visibility: Visibility) -> (String, Visibility) {
    (key.to_ascii_uppercase(), visibility)
}

impl ItemCache {
    /// A cache of `megabytes` (`database.item_cache_mb`; 0 keeps nothing) over `freshness`.
    pub fn new(megabytes: usize, freshness: Freshness) -> ItemCache {
        ItemCache {
            kept: FreshCache::new(TTL, megabytes.saturating_mul(1 << 20), freshness),
        }
    }

    /// The generation to read an item in (see [`FreshCache::generation`]).
    pub fn generation(&self) -> Option<u64> {
        self.kept.generation()
    }

    /// The item asked for as `key` by a caller of `visibility`, if it is kept and fresh.
    pub fn get(&self, key: &str, visibility: Visibility) -> Option<KeptItem> {
        self.kept.get(&key_of(key, visibility))
    }

    /// The answer for `item`, asked for as `key` and read in `generation`; kept unless it is
    /// an incident.
    pub fn keep(
        &self,
        key: &str,
        visibility: Visibility,
        generation: Option<u64>,
        item: &Item,
    ) -> Result<KeptItem, serde_json::Error> {
        let kept = KeptItem {
            body: Bytes::from(serde_json::to_vec(item)?),
            version: item.version,
        };
        if item.incident.is_none() && item.sla.is_none() {
            let weight = kept.body.len() + key.len() + 64;
            self.kept
                .put(key_of(key, visibility), generation, kept.clone(), weight);
        }
        Ok(kept)
    }
}
