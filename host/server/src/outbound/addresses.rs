//! Which addresses a grant for a *name* may reach: public unicast ones
//! only. Loopback, private (RFC 1918, unique local), link-local (and with
//! it the cloud metadata address 169.254.169.254), shared (CGNAT),
//! unspecified, broadcast, multicast, documentation and benchmark ranges
//! are reached only through a grant that names the address itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `address` is not public, if it is not.
pub(crate) fn non_public(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_class(v4),
            None => v6_class(v6),
        },
    }
}

fn v4_class(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    Some(match () {
        () if address.is_loopback() => "loopback",
        () if address.is_private() => "private",
        () if address.is_link_local() => "link-local (cloud metadata lives there)",
        () if address.is_unspecified() || a == 0 => "unspecified",
        () if address.is_broadcast() => "broadcast",
        () if address.is_multicast() || a >= 240 => "multicast or reserved",
        () if a == 100 && (64..128).contains(&b) => "shared (carrier-grade NAT)",
        () if a == 192 && b == 0 && c == 0 => "IETF protocol assignments",
        () if a == 198 && (18..20).contains(&b) => "benchmarking",
        () if address.is_documentation() => "documentation",
        () => return None,
    })
}

fn v6_class(address: Ipv6Addr) -> Option<&'static str> {
    let first = address.segments()[0];
    Some(match () {
        () if address.is_loopback() => "loopback",
        () if address.is_unspecified() => "unspecified",
        () if address.is_multicast() => "multicast",
        () if (first & 0xfe00) == 0xfc00 => "private (unique local)",
        () if (first & 0xffc0) == 0xfe80 => "link-local",
        () if first == 0x2001 && address.segments()[1] == 0x0db8 => "documentation",
        () if first == 0x0064 && address.segments()[1] == 0xff9b => "NAT64 (may reach private IPv4)",
        () => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(non_public(private.parse().unwrap()).is_some(), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(non_public(public.parse().unwrap()), None, "{public}");
        }
    }
}
