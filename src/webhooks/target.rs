//! Where a delivery may go: not to loopback, private, link-local, shared (carrier-grade NAT),
//! multicast or unspecified addresses, nor to the cloud metadata services, unless
//! `webhooks.allow_private_targets` is on. Checked when a subscription is made or changed
//! (the name as it resolves then) and again at every attempt, by the resolver the worker
//! connects through, so that a name re-pointed to an internal address is refused too.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;

use crate::common::error::ApiError;

/// Whether a receiver at `ip` would reach something internal.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 (AWS's metadata fd00:ec2::254 among them).
                || (first & 0xfe00) == 0xfc00
                // Link-local fe80::/10.
                || (first & 0xffc0) == 0xfe80
                // IPv4-compatible and NAT64 forms of internal IPv4 addresses.
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, the metadata address 169.254.169.254 among them
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space 100.64.0.0/10 (Alibaba's metadata 100.100.100.200 among them).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24 (IETF protocol assignments) and 198.18.0.0/15 (benchmarking).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

/// The host and port of a receiver URL.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some((host, parsed.port_or_known_default()?))
}

/// Resolves `host` and refuses it when any address is forbidden (all of them, so that a
/// name with one public and one internal address cannot be used to reach the internal one).
pub async fn resolve_allowed(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("the host {host} cannot be resolved: {e}"))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("the host {host} resolves to no address"));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| is_forbidden(a.ip())) {
        return Err(format!(
            "the host {host} resolves to {}, a loopback, private, link-local or metadata \
             address, which webhooks may not reach",
            bad.ip()
        ));
    }
    Ok(addresses)
}

/// The check of a subscription's URL: 422 naming `url` when its host cannot be resolved or
/// resolves to an address that is not allowed.
pub async fn check(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let Some((host, port)) = host_and_port(url.trim()) else {
        return Err(ApiError::invalid(
            "url",
            "must be an http:// or https:// address with a host",
        ));
    };
    resolve_allowed(&host, port, allow_private)
        .await
        .map(|_| ())
        .map_err(|reason| ApiError::invalid("url", reason))
}

/// Checks a literal IP address in `url` before a delivery (a resolver is not asked about
/// those); names are checked by [`GuardedResolver`] as the connection is made.
pub fn check_literal(url: &str, allow_private: bool) -> Result<(), String> {
    let (host, _) = host_and_port(url).ok_or_else(|| format!("{url} has no host"))?;
    match host.parse::<IpAddr>() {
        Ok(ip) if !allow_private && is_forbidden(ip) => Err(format!(
            "{ip} is a loopback, private, link-local or metadata address, which webhooks may \
             not reach"
        )),
        _ => Ok(()),
    }
}

/// The resolver of the delivery client: resolves as usual, then refuses forbidden addresses,
/// so that the address checked is the one connected to (no second lookup in between).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `webhooks.allow_private_targets`.
    pub allow_private: bool,
}

impl actix_tls::connect::Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<SocketAddr>, Box<dyn StdError>>> + 'a>> {
        Box::pin(async move {
            resolve_allowed(host, port, self.allow_private)
                .await
                .map_err(Box::<dyn StdError>::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(is_forbidden(ip), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(!is_forbidden(ip), "{ip}");
        }
    }
}
