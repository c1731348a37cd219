//! Receiver addresses: `https` only, never loopback, private, link-local or otherwise internal
//! targets, checked at registration and again at delivery after DNS resolution, unless the
//! operator allows them (`MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether a receiver may not be reached at `ip` (internal or special-purpose ranges).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => is_forbidden_v4(mapped),
            None => is_forbidden_v6(ip),
        },
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 may reach IPv4 internals
}

/// Checks a receiver URL at registration: form, scheme and (when not allowed) every address it
/// resolves to. The error is a sentence for the client.
pub async fn check_receiver_url(text: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|_| "must be an absolute URL".to_owned())?;
    // The normalized form is what is stored and shown, and it can be longer than the input.
    if text.chars().count() > 2048 || url.as_str().chars().count() > 2048 {
        return Err("must be at most 2048 characters".to_owned());
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must use https".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".to_owned());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "must name a host".to_owned())?;
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| "must resolve to an address".to_owned())?
        .collect();
    if addresses.is_empty() {
        return Err("must resolve to an address".to_owned());
    }
    if addresses.iter().any(|address| is_forbidden(address.ip())) {
        return Err("must not point to a loopback, private or link-local address".to_owned());
    }
    Ok(url)
}

/// Whether a URL whose host is an IP literal is one the delivery may not reach.
pub fn literal_is_forbidden(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
        _ => false,
    }
}

/// The delivery client's resolver: names resolving to a forbidden address are not reached, so a
/// DNS answer that changed since registration cannot turn a receiver into an internal target.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addresses.iter().any(|address| is_forbidden(address.ip())) {
                return Err("the receiver resolves to a forbidden address".into());
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "172.32.0.1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn registration_refuses_plain_http_and_internal_targets() {
        for (url, why) in [
            ("http://example.com/hook", "http"),
            ("https://127.0.0.1/hook", "loopback literal"),
            ("https://[::1]/hook", "loopback v6"),
            ("https://10.0.0.8/hook", "private"),
            ("https://169.254.169.254/latest", "metadata service"),
            ("https://localhost/hook", "name resolving to loopback"),
            ("https://user:pw@8.8.8.8/hook", "credentials"),
            ("not a url", "garbage"),
            ("ftp://8.8.8.8/x", "scheme"),
        ] {
            assert!(
                check_receiver_url(url, false).await.is_err(),
                "{why}: {url}"
            );
        }
        assert!(check_receiver_url("https://8.8.8.8/hook", false)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_operator_may_allow_local_receivers() {
        assert!(check_receiver_url("http://127.0.0.1:9000/hook", true)
            .await
            .is_ok());
        assert!(check_receiver_url("ftp://127.0.0.1/x", true).await.is_err());
    }
}
