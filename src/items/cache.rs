//! The items recently answered by `GET /items/{key}`, kept so that a client polling an item
//! (a frontend's detail view, a sync script checking a version) costs no database read while
//! nothing has changed.
//!
//! An entry is served only while no process has committed a change since it was read (see
//! [`crate::common::fresh_cache`]): one through this server is seen before its answer goes
//! out, one by another process within `database.watch_ms`. Entries are kept per caller's
//! visibility, as a requester sees other items than the team.
//!
//! A task or demand is kept as the JSON sent. An incident's SLA clocks run with the time, not
//! with commits: it is kept as the item together with what its clocks are computed from (see
//! [`ClockBasis`]), and each answer computes them at its own moment, in the app's calendar, as
//! a read would.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;

use crate::common::actor::Visibility;
use crate::common::calendar::{Calendar, with_calendar};
use crate::common::db::watch::Freshness;
use crate::common::fresh_cache::FreshCache;
use crate::items::types::Item;
use crate::sla::clock::ClockBasis;

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

/// What is kept of an item.
#[derive(Clone)]
enum Kept {
    /// A task or demand: the answer itself.
    Answer(KeptItem),
    /// An incident: the item, and what its clocks are computed from at each answer.
    Clocked(Arc<(Item, ClockBasis)>),
}

/// The cache; one per app, shared by its workers.
pub struct ItemCache {
    kept: FreshCache<(String, Visibility), Kept>,
    calendar: Arc<Calendar>,
}

/// The cache's key for an item asked for as `key` (a key in any case, or an id).
fn key_of(key: &str, visibility: Visibility) -> (String, Visibility) {
    (key.to_ascii_uppercase(), visibility)
}

impl ItemCache {
    /// A cache of `megabytes` (`database.item_cache_mb`; 0 keeps nothing) over `freshness`,
    /// computing kept incidents' clocks in `calendar` (the app's).
    pub fn new(megabytes: usize, freshness: Freshness, calendar: Arc<Calendar>) -> ItemCache {
        ItemCache {
            kept: FreshCache::new(TTL, megabytes.saturating_mul(1 << 20), freshness),
            calendar,
        }
    }

    /// The generation to read an item in (see [`FreshCache::generation`]).
    pub fn generation(&self) -> Option<u64> {
        self.kept.generation()
    }

    /// The answer for the item asked for as `key` by a caller of `visibility`, if it is kept
    /// and fresh; a kept incident's clocks are computed now.
    pub fn get(&self, key: &str, visibility: Visibility) -> Option<KeptItem> {
        match self.kept.get(&key_of(key, visibility))? {
            Kept::Answer(kept) => Some(kept),
            // Written out as on a read; should that ever fail, the read says why.
            Kept::Clocked(clocked) => self.answer(&clocked.0, &clocked.1).ok(),
        }
    }

    /// The answer for `item`, asked for as `key` and read in `generation` with its clocks
    /// computed from `clocks`; kept for the next ask.
    pub fn keep(
        &self,
        key: &str,
        visibility: Visibility,
        generation: Option<u64>,
        item: Item,
        clocks: &ClockBasis,
    ) -> Result<KeptItem, serde_json::Error> {
        let kept = KeptItem {
            body: Bytes::from(serde_json::to_vec(&item)?),
            version: item.version,
        };
        // The item in memory weighs about what its JSON does.
        let weight = 2 * kept.body.len() + key.len() + 64;
        if item.incident.is_none() && item.sla.is_none() {
            self.kept.put(
                key_of(key, visibility),
                generation,
                Kept::Answer(kept.clone()),
                weight,
            );
        } else {
            let clocks = clocks.of(item.id);
            let weight = weight + clocks.weight();
            self.kept.put(
                key_of(key, visibility),
                generation,
                Kept::Clocked(Arc::new((item, clocks))),
                weight,
            );
        }
        Ok(kept)
    }

    /// The answer for an incident kept with its clocks' basis, the clocks computed now.
    fn answer(&self, item: &Item, clocks: &ClockBasis) -> Result<KeptItem, serde_json::Error> {
        let mut states = with_calendar(&self.calendar, || clocks.states(chrono::Utc::now()));
        let mut item = item.clone();
        item.sla = states.remove(&item.id);
        Ok(KeptItem {
            body: Bytes::from(serde_json::to_vec(&item)?),
            version: item.version,
        })
    }
}
