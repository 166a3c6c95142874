//! Login throttling: a token bucket per account and one per client address (governor's keyed
//! GCRA limiters), checked before the database and argon2 are touched, so that a throttled
//! attempt costs neither and a right password is refused like a wrong one until the wait is
//! over.
//!
//! - The account is the canonical e-mail whether or not such a user exists, so that probing
//!   for accounts is throttled as much as guessing passwords. It is kept as a 64-bit keyed hash
//!   (random per process), not as text: a 1 MiB "e-mail" costs the table 8 bytes.
//! - The address is the TCP peer, or with `auth.trust_forwarded_for` the entry of `Forwarded`
//!   or `X-Forwarded-For` that the nearest proxy added (the last one; the ones before it are
//!   whatever the client sent). IPv6 addresses count per /64, the block one host usually has.
//! - The address bucket is checked first: an address over its limit cannot drain the buckets
//!   of the accounts it names, which keeps the lock-out an attacker can cause to their share.
//! - Memory: idle keys (a bucket that has refilled is the same as no bucket) are dropped once a
//!   minute and whenever a table reaches `auth.login_tracked_keys`; a table that is still full
//!   after that refuses new attempts with 429 instead of growing.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::common::error::ApiError;
use crate::common::text::canonical_email;
use crate::web::settings::AuthSettings;

/// How often idle keys are dropped even when the tables are far from full.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often a full table is pruned at most: each pass walks the whole table.
const PRUNE_FULL_EVERY: Duration = Duration::from_secs(1);

/// The per-account and per-address login buckets.
pub struct LoginThrottle {
    accounts: DefaultKeyedRateLimiter<u64>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    account_refill: Duration,
    address_refill: Duration,
    max_keys: usize,
    trust_forwarded_for: bool,
    hasher: std::hash::RandomState,
    clock: DefaultClock,
    last_prune: Mutex<Instant>,
}

fn quota(burst: u32, refill_secs: u64) -> Quota {
    let period = Duration::from_secs(refill_secs.max(1));
    // `with_period` is `None` only for a zero period, excluded above.
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl LoginThrottle {
    /// Buckets as the settings say.
    pub fn new(auth: &AuthSettings) -> Self {
        LoginThrottle {
            accounts: DefaultKeyedRateLimiter::keyed(quota(
                auth.login_account_burst,
                auth.login_account_refill_secs,
            )),
            addresses: DefaultKeyedRateLimiter::keyed(quota(
                auth.login_address_burst,
                auth.login_address_refill_secs,
            )),
            account_refill: Duration::from_secs(auth.login_account_refill_secs),
            address_refill: Duration::from_secs(auth.login_address_refill_secs),
            max_keys: auth.login_tracked_keys,
            trust_forwarded_for: auth.trust_forwarded_for,
            hasher: std::hash::RandomState::new(),
            clock: DefaultClock::default(),
            last_prune: Mutex::new(Instant::now()),
        }
    }

    /// Takes one attempt from the address's bucket and then from the account's; a 429 with the
    /// seconds to wait when either is empty.
    pub fn admit(&self, email: &str, address: IpAddr) -> Result<(), ApiError> {
        self.prune_when_due();
        if self.addresses.len() >= self.max_keys {
            return Err(too_many(self.address_refill));
        }
        if let Err(not_until) = self.addresses.check_key(&address) {
            return Err(too_many(not_until.wait_time_from(self.clock.now())));
        }
        if self.accounts.len() >= self.max_keys {
            return Err(too_many(self.account_refill));
        }
        let account = self.hasher.hash_one(canonical_email(email));
        if let Err(not_until) = self.accounts.check_key(&account) {
            return Err(too_many(not_until.wait_time_from(self.clock.now())));
        }
        Ok(())
    }

    /// The address `req` is throttled under, as the settings say (see [`client_address`]).
    pub fn client_address(&self, req: &HttpRequest) -> IpAddr {
        client_address(req, self.trust_forwarded_for)
    }

    /// Accounts and addresses tracked now.
    pub fn tracked(&self) -> (usize, usize) {
        (self.accounts.len(), self.addresses.len())
    }

    /// Drops the keys whose buckets are full again, once a minute, or once a second while a
    /// table is full; one request does it while the others go on.
    fn prune_when_due(&self) {
        let Ok(mut last) = self.last_prune.try_lock() else {
            return;
        };
        let since = last.elapsed();
        let full = || self.accounts.len() >= self.max_keys || self.addresses.len() >= self.max_keys;
        if since < PRUNE_FULL_EVERY || (since < PRUNE_EVERY && !full()) {
            return;
        }
        for limiter in [&self.accounts as &dyn Prune, &self.addresses] {
            limiter.prune();
        }
        *last = Instant::now();
    }
}

/// Dropping idle keys, the same for both tables.
trait Prune {
    fn prune(&self);
}

impl<K: std::hash::Hash + Eq + Clone> Prune for DefaultKeyedRateLimiter<K> {
    fn prune(&self) {
        self.retain_recent();
        self.shrink_to_fit();
    }
}

fn too_many(wait: Duration) -> ApiError {
    // Rounded up: a client that waits the whole seconds it was told is let through.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    ApiError::TooManyRequests {
        detail: format!(
            "Too many login attempts for this account or from this address; try again in \
             {secs} s."
        ),
        retry_after_secs: secs,
    }
}

/// The address a login is throttled under: the peer, or with `trust_forwarded` the address
/// the nearest proxy put into `Forwarded` (preferred) or `X-Forwarded-For`. A header that does
/// not parse falls back to the peer.
pub fn client_address(req: &HttpRequest, trust_forwarded: bool) -> IpAddr {
    let forwarded = trust_forwarded
        .then(|| forwarded_address(req.headers()))
        .flatten();
    let address = forwarded
        .or_else(|| req.peer_addr().map(|peer| peer.ip()))
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    bucket_of(address)
}

/// The last `for=` of `Forwarded`, or else the last entry of `X-Forwarded-For`.
fn forwarded_address(headers: &HeaderMap) -> Option<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::to_string)
            .collect()
    };
    let from_forwarded = values("forwarded").last().and_then(|element| {
        element.split(';').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(value))
                .flatten()
        })
    });
    from_forwarded.or_else(|| values("x-forwarded-for").last().and_then(|v| parse_node(v)))
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.parse().ok().or_else(|| {
        let (host, port) = text.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse().ok()
    })
}

/// IPv4 as it is (also when written as an IPv4-mapped IPv6 address); IPv6 by its /64.
fn bucket_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::net::Ipv4Addr;

    fn settings() -> AuthSettings {
        AuthSettings {
            jwt_secret: String::new(),
            jwt_issuer: "opsboard".into(),
            jwt_audience: "opsboard-api".into(),
            token_ttl_minutes: 60,
            admin_email: String::new(),
            admin_password: String::new(),
            login_account_burst: 3,
            login_account_refill_secs: 60,
            login_address_burst: 1000,
            login_address_refill_secs: 1,
            login_tracked_keys: 100_000,
            trust_forwarded_for: false,
            password_hash_concurrency: 2,
            password_hash_wait_secs: 5,
            principal_cache_ms: 0,
        }
    }

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn an_account_gets_its_burst_then_a_wait_whatever_the_case_of_the_email() {
        let throttle = LoginThrottle::new(&settings());
        for email in ["anna@example.org", "ANNA@example.org", " anna@Example.org "] {
            assert!(throttle.admit(email, HOME).is_ok());
        }
        match throttle.admit("anna@example.org", HOME) {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!((59..=60).contains(&retry_after_secs), "{retry_after_secs}"),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(throttle.admit("bert@example.org", HOME).is_ok());
    }

    #[test]
    fn a_flood_of_distinct_emails_stays_within_the_tracked_limit() {
        let mut auth = settings();
        auth.login_tracked_keys = 500;
        // A key is idle two refill periods after its one attempt.
        auth.login_account_refill_secs = 1;
        auth.login_account_burst = 1;
        let throttle = LoginThrottle::new(&auth);
        let flood = |from: u32| {
            let mut refused = 0;
            for n in from..from + 10_000 {
                let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
                if throttle
                    .admit(&format!("probe{n}@example.org"), address)
                    .is_err()
                {
                    refused += 1;
                }
                let (accounts, addresses) = throttle.tracked();
                assert!(
                    accounts <= 500 && addresses <= 500,
                    "{accounts} {addresses}"
                );
            }
            refused
        };
        assert_eq!(flood(0), 9_500, "a full table refuses rather than grows");
        std::thread::sleep(Duration::from_millis(2_100));
        assert_eq!(flood(10_000), 9_500, "pruning made room for new keys");
    }

    #[test]
    fn forwarded_headers_count_only_when_trusted_and_the_last_entry_wins() {
        let peer = "127.0.0.1:5000".parse().expect("peer");
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "203.0.113.9, 198.51.100.7"))
            .to_http_request();
        assert_eq!(client_address(&req, false), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(client_address(&req, true), IpAddr::from([198, 51, 100, 7]));
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .insert_header((
                "Forwarded",
                r#"for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711""#,
            ))
            .to_http_request();
        assert_eq!(
            client_address(&req, true),
            "2001:db8:cafe::".parse::<IpAddr>().expect("v6"),
            "Forwarded wins, IPv6 counts per /64"
        );
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "not an address"))
            .to_http_request();
        assert_eq!(client_address(&req, true), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(parse_node("192.0.2.1:4711"), Some(HOME));
        assert_eq!(bucket_of("::ffff:192.0.2.1".parse().expect("mapped")), HOME);
    }
}
