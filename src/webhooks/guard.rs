//! Receiver addresses: `https` only, never loopback, private, link-local or otherwise internal
//! targets, whether written as IPv4 or as an IPv6 form that carries one, checked at registration
//! and again at delivery after DNS resolution, unless the operator allows them
//! (`MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether a receiver may not be reached at `ip` (internal or special-purpose ranges).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
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

/// The IPv4 address whose upper half is `high` and lower half `low`.
fn ipv4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    // A form that carries an IPv4 address can reach it (through the dual-stack socket, a
    // translator or a tunnel relay), so it is judged by that address: the IPv4 rules are the
    // only ones to keep right, and a public IPv4 stays reachable in any of its forms.
    match ip.segments() {
        // IPv4-compatible ::a.b.c.d (deprecated; `::` and `::1` fall here as 0.0.0.0 and
        // 0.0.0.1, both forbidden), IPv4-mapped ::ffff:a.b.c.d, and SIIT's IPv4-translated
        // ::ffff:0:a.b.c.d (RFC 2765).
        [0, 0, 0, 0, 0, 0, high, low]
        | [0, 0, 0, 0, 0, 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
        | [0x64, 0xff9b, 0, 0, 0, 0, high, low]
        // 6to4 2002::/16: the relay forwards to the IPv4 in segments 1-2 (RFC 3056).
        | [0x2002, high, low, ..] => is_forbidden_v4(ipv4(high, low)),
        // Teredo 2001::/32: the server's IPv4 in segments 2-3, the client's as the bitwise NOT
        // of the last 32 bits (RFC 4380); either one may be the internal target.
        [0x2001, 0, server_high, server_low, _, _, client_high, client_low] => {
            is_forbidden_v4(ipv4(server_high, server_low))
                || is_forbidden_v4(!ipv4(client_high, client_low))
        }
        [first, second, third, ..] => {
            // Only 2000::/3 is allocated as global unicast; everything else (loopback, the
            // rest of ::/8, 100::/64 discard-only, the rest of 64:ff9b::/32 with the local-use
            // NAT64 64:ff9b:1::/48, 5f00::/16 SRv6, unique local, link-local, site-local,
            // multicast) is never a receiver on the internet.
            (first & 0xe000) != 0x2000
                || (first == 0x2001 && second == 0x0db8) // documentation 2001:db8::/32
                || (first == 0x3fff && second < 0x1000) // documentation 3fff::/20
                || (first == 0x2001 && second == 0x0002 && third == 0) // benchmarking
                || (first == 0x2001 && matches!(second & 0xfff0, 0x0010 | 0x0020)) // ORCHID
        }
    }
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

    use proptest::prelude::*;

    fn forbidden(ip: &str) -> bool {
        is_forbidden(ip.parse().unwrap())
    }

    #[test]
    fn internal_and_special_ranges_are_forbidden() {
        for (ip, why) in [
            ("127.0.0.1", "IPv4 loopback"),
            ("10.1.2.3", "private 10/8"),
            ("172.16.0.1", "private 172.16/12"),
            ("192.168.1.1", "private 192.168/16"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("0.0.0.0", "IPv4 unspecified"),
            ("0.1.2.3", "this network 0/8"),
            ("100.64.0.1", "shared address space"),
            ("224.0.0.1", "IPv4 multicast"),
            ("239.255.255.250", "IPv4 multicast (SSDP)"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("::", "IPv6 unspecified"),
            ("::1", "IPv6 loopback"),
            ("ff02::1", "IPv6 multicast, link scope"),
            ("ff0e::1", "IPv6 multicast, global scope"),
            ("fe80::1", "IPv6 link-local"),
            ("fec0::1", "IPv6 site-local (deprecated)"),
            ("fd00::1", "unique local"),
            ("100::1", "discard-only 100::/64"),
            ("2001:db8::1", "documentation 2001:db8::/32"),
            ("3fff::1", "documentation 3fff::/20"),
            ("2001:2::1", "benchmarking 2001:2::/48"),
            ("2001:10::1", "ORCHID"),
            ("2001:20::1", "ORCHIDv2"),
            ("5f00::1", "SRv6 SIDs"),
            ("1::1", "outside global unicast 2000::/3"),
            ("::1:0:0:1", "reserved ::/8 beyond the IPv4 forms"),
            (
                "64:ff9b:1::8.8.8.8",
                "local-use NAT64 64:ff9b:1::/48, whatever it embeds",
            ),
            ("64:ff9b:2::1", "the rest of 64:ff9b::/32"),
        ] {
            assert!(forbidden(ip), "{why}: {ip} must be forbidden");
        }
    }

    #[test]
    fn every_ipv6_form_carrying_an_internal_ipv4_is_forbidden() {
        for (ip, why) in [
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            ("::ffff:10.0.0.1", "IPv4-mapped private"),
            ("::127.0.0.1", "IPv4-compatible loopback"),
            ("::169.254.169.254", "IPv4-compatible metadata service"),
            ("::ffff:0:127.0.0.1", "SIIT IPv4-translated loopback"),
            ("::ffff:0:192.168.0.1", "SIIT IPv4-translated private"),
            ("64:ff9b::127.0.0.1", "NAT64 of loopback"),
            ("64:ff9b::a9fe:a9fe", "NAT64 of the metadata service"),
            ("2002:7f00:1::", "6to4 of 127.0.0.1"),
            (
                "2002:a00:1:ffff::1",
                "6to4 of 10.0.0.1, any subnet and host",
            ),
            ("2001:0:7f00:1::", "Teredo, server 127.0.0.1"),
            (
                "2001:0:a00:1::f7f7:f7f7",
                "Teredo, server 10.0.0.1, client 8.8.8.8",
            ),
            (
                "2001:0:808:808::80ff:fffe",
                "Teredo, server 8.8.8.8, client 127.0.0.1",
            ),
        ] {
            assert!(forbidden(ip), "{why}: {ip} must be forbidden");
        }
    }

    #[test]
    fn public_addresses_in_any_form_are_allowed() {
        for (ip, why) in [
            ("8.8.8.8", "public IPv4"),
            ("1.1.1.1", "public IPv4"),
            ("172.32.0.1", "just past 172.16/12"),
            ("2606:4700:4700::1111", "global unicast"),
            ("2a00:1450:4007::1", "global unicast"),
            ("::ffff:8.8.8.8", "IPv4-mapped public"),
            ("::8.8.8.8", "IPv4-compatible public"),
            ("::ffff:0:8.8.8.8", "SIIT of a public IPv4"),
            ("64:ff9b::8.8.8.8", "NAT64 of a public IPv4"),
            ("2002:808:808::1", "6to4 of 8.8.8.8"),
            (
                "2001:0:808:808::f7f7:f7f7",
                "Teredo, server and client 8.8.8.8",
            ),
        ] {
            assert!(!forbidden(ip), "{why}: {ip} must be allowed");
        }
    }

    /// Any IPv4, with the edges of the forbidden ranges drawn more often than chance would.
    fn any_ipv4() -> impl Strategy<Value = Ipv4Addr> {
        let edges: Vec<Ipv4Addr> = "0.0.0.0 0.255.255.255 1.0.0.0 9.255.255.255 10.0.0.0 11.0.0.0
            100.63.255.255 100.64.0.0 100.127.255.255 100.128.0.0 127.0.0.1 169.254.0.0
            172.15.255.255 172.16.0.0 172.31.255.255 172.32.0.0 192.0.0.0 192.0.2.1 192.168.0.0
            198.18.0.0 198.20.0.0 223.255.255.255 224.0.0.0 239.255.255.255 240.0.0.0
            255.255.255.255"
            .split_whitespace()
            .map(|ip| ip.parse().unwrap())
            .collect();
        prop_oneof![
            any::<u32>().prop_map(Ipv4Addr::from),
            prop::sample::select(edges)
        ]
    }

    /// The IPv6 address of `prefix` (the upper 96 bits) followed by `ip`.
    fn with_ipv4(prefix: u128, ip: Ipv4Addr) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(prefix | u128::from(u32::from(ip))))
    }

    proptest! {
        #[test]
        fn each_form_embedding_an_ipv4_is_forbidden_exactly_when_the_ipv4_is(
            ip in any_ipv4(),
            rest in any::<u128>(),
        ) {
            let expected = is_forbidden(IpAddr::V4(ip));
            let embedded = u128::from(u32::from(ip));
            for (form, address) in [
                ("IPv4-mapped", with_ipv4(0xffff << 32, ip)),
                ("IPv4-compatible", with_ipv4(0, ip)),
                ("SIIT", with_ipv4(0xffff << 48, ip)),
                ("NAT64", with_ipv4(0x0064_ff9b << 96, ip)),
                (
                    "6to4",
                    IpAddr::V6(Ipv6Addr::from(
                        (0x2002 << 112) | (embedded << 80) | (rest & ((1 << 80) - 1)),
                    )),
                ),
            ] {
                prop_assert_eq!(is_forbidden(address), expected, "{} form {}", form, address);
            }
        }

        #[test]
        fn teredo_is_forbidden_when_its_server_or_its_client_is(
            server in any_ipv4(),
            client in any_ipv4(),
            flags_and_port in any::<u32>(),
        ) {
            let address = Ipv6Addr::from(
                (0x2001_0000 << 96)
                    | (u128::from(u32::from(server)) << 64)
                    | (u128::from(flags_and_port) << 32)
                    | u128::from(!u32::from(client)),
            );
            prop_assert_eq!(
                is_forbidden(IpAddr::V6(address)),
                is_forbidden(IpAddr::V4(server)) || is_forbidden(IpAddr::V4(client)),
                "{}", address
            );
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
