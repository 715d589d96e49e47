"""Which IP addresses the HTTP tool may reach: the project's own table of special-purpose ranges,
so the answer is the same on every Python version, and IPv4 embedded in IPv6 is unwrapped first.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["SPECIAL_RANGES", "SpecialRange", "classify", "embedded_ipv4", "is_public"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class SpecialRange:
    network: Network
    name: str
    source: str
    """The RFC that reserves it."""
    reach: str = "private"
    """"private"; "public" (a globally reachable exception inside a wider private range); or
    "ipv4" (a translation prefix: as reachable as the IPv4 address it embeds)."""


def _r(cidr: str, name: str, source: str, reach: str = "private") -> SpecialRange:
    return SpecialRange(ipaddress.ip_network(cidr), name, source, reach)


SPECIAL_RANGES: tuple[SpecialRange, ...] = (
    # IANA IPv4 Special-Purpose Address Registry
    # (https://www.iana.org/assignments/iana-ipv4-special-registry/), every entry that is not
    # globally reachable, plus the ranges no public service answers on (multicast, reserved).
    _r("0.0.0.0/8", "this network", "RFC 791"),
    _r("10.0.0.0/8", "private", "RFC 1918"),
    _r("100.64.0.0/10", "shared address space (carrier-grade NAT)", "RFC 6598"),
    _r("127.0.0.0/8", "loopback", "RFC 1122"),
    _r("169.254.0.0/16", "link-local (cloud metadata lives here)", "RFC 3927"),
    _r("172.16.0.0/12", "private", "RFC 1918"),
    _r("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    _r("192.0.0.9/32", "Port Control Protocol anycast", "RFC 7723", "public"),
    _r("192.0.0.10/32", "TURN anycast", "RFC 8155", "public"),
    _r("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
    _r("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    _r("192.52.193.0/24", "AMT", "RFC 7450"),
    _r("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    _r("192.168.0.0/16", "private", "RFC 1918"),
    _r("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534"),
    _r("198.18.0.0/15", "benchmarking", "RFC 2544"),
    _r("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
    _r("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
    _r("224.0.0.0/4", "multicast", "RFC 5771"),
    _r("240.0.0.0/4", "reserved for future use", "RFC 1112"),
    _r("255.255.255.255/32", "limited broadcast", "RFC 919"),
    # IANA IPv6 Special-Purpose Address Registry
    # (https://www.iana.org/assignments/iana-ipv6-special-registry/), and the ranges of the
    # IPv6 Address Space registry that are not global unicast (multicast, site-local, reserved).
    _r("::/128", "unspecified", "RFC 4291"),
    _r("::1/128", "loopback", "RFC 4291"),
    _r("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", "ipv4"),
    _r("::/96", "IPv4-compatible (deprecated)", "RFC 4291"),
    _r("64:ff9b::/96", "IPv4/IPv6 translation (NAT64)", "RFC 6052", "ipv4"),
    _r("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215"),
    _r("100::/64", "discard-only", "RFC 6666"),
    _r("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
    _r("2001::/23", "IETF protocol assignments", "RFC 2928"),
    _r("2001::/32", "Teredo", "RFC 4380", "ipv4"),
    _r("2001:1::1/128", "Port Control Protocol anycast", "RFC 7723", "public"),
    _r("2001:1::2/128", "TURN anycast", "RFC 8155", "public"),
    _r("2001:1::3/128", "DNS-SD SRP anycast", "RFC 9665", "public"),
    _r("2001:2::/48", "benchmarking", "RFC 5180"),
    _r("2001:3::/32", "AMT", "RFC 7450", "public"),
    _r("2001:4:112::/48", "AS112-v6", "RFC 7535", "public"),
    _r("2001:db8::/32", "documentation", "RFC 3849"),
    _r("2001:10::/28", "deprecated ORCHID", "RFC 4843"),
    _r("2001:20::/28", "ORCHIDv2", "RFC 7343", "public"),
    _r("2001:30::/28", "drone remote ID protocol entity tags", "RFC 9374", "public"),
    _r("2002::/16", "6to4", "RFC 3056", "ipv4"),
    _r("3fff::/20", "documentation", "RFC 9637"),
    _r("5f00::/16", "segment routing SIDs", "RFC 9602"),
    _r("fc00::/7", "unique local", "RFC 4193"),
    _r("fe80::/10", "link-local", "RFC 4291"),
    _r("fec0::/10", "site-local (deprecated, still routed inside sites)", "RFC 3879"),
    _r("ff00::/8", "multicast", "RFC 4291"),
    # Outside global unicast (2000::/3) nothing is allocated: all of it is reserved by IETF.
    _r("::/8", "reserved by IETF", "RFC 4291"),
    _r("0100::/8", "reserved by IETF", "RFC 4291"),
    _r("0200::/7", "reserved by IETF", "RFC 4048"),
    _r("0400::/6", "reserved by IETF", "RFC 4291"),
    _r("0800::/5", "reserved by IETF", "RFC 4291"),
    _r("1000::/4", "reserved by IETF", "RFC 4291"),
    _r("4000::/3", "reserved by IETF", "RFC 4291"),
    _r("6000::/3", "reserved by IETF", "RFC 4291"),
    _r("8000::/3", "reserved by IETF", "RFC 4291"),
    _r("a000::/3", "reserved by IETF", "RFC 4291"),
    _r("c000::/3", "reserved by IETF", "RFC 4291"),
    _r("e000::/4", "reserved by IETF", "RFC 4291"),
    _r("f000::/5", "reserved by IETF", "RFC 4291"),
    _r("f800::/6", "reserved by IETF", "RFC 4291"),
    _r("fe00::/9", "reserved by IETF", "RFC 4291"),
)
"""Special-purpose ranges; the longest prefix that holds an address decides. Sources: the IANA
IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, "Globally Reachable" column) as of
2026-11, and the IANA IPv6 Address Space registry for what lies outside 2000::/3. Kept here, not
read from `ipaddress`, whose tables differ between Python versions (3.11 to 3.13 moved several
ranges in and out of `is_global`, and none of them unwraps NAT64, 6to4 or Teredo)."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in every standard form, else None:
    IPv4-mapped `::ffff:a.b.c.d` and IPv4-compatible `::a.b.c.d` (RFC 4291), NAT64
    `64:ff9b::/96` (RFC 6052) and `64:ff9b:1::/48` (RFC 8215, the IPv4 in the last 32 bits),
    6to4 `2002:AABB:CCDD::/48` (RFC 3056), and Teredo `2001:0::/32` (RFC 4380: the client's
    address, bit-inverted in the last 32 bits; the server's in bits 32-63)."""
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if value >> 32 == 0 and value > 1:  # IPv4-compatible, but not :: and ::1
        return low32
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return low32
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client, whose address the packets go to
    return None


def classify(address: str) -> str | None:
    """Why `address` (an IPv4 or IPv6 literal, zone allowed) is not public, or None if it is.

    The longest special-purpose prefix holding it decides; a translation prefix (IPv4-mapped,
    NAT64, 6to4, Teredo) is as public as the IPv4 it embeds, so `64:ff9b::a9fe:a9fe` (the
    metadata address behind NAT64) is refused. An address that does not parse is never public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    matches = [s for s in SPECIAL_RANGES if s.network.version == ip.version and ip in s.network]
    if not matches:
        return None
    best = max(matches, key=lambda s: s.network.prefixlen)
    label = f"{best.name} ({best.network}, {best.source})"
    if best.reach == "public":
        return None
    if best.reach == "private" or not isinstance(ip, ipaddress.IPv6Address):
        return label
    inner = embedded_ipv4(ip)
    if inner is None:
        return label
    reasons = []
    why = classify(str(inner))
    if why is not None:
        reasons.append(f"{label} embedding {inner}: {why}")
    if ip.teredo is not None:
        server = ip.teredo[0]
        why = classify(str(server))
        if why is not None:
            reasons.append(f"{label} with server {server}: {why}")
    return "; ".join(reasons) or None


def is_public(address: str) -> bool:
    """True when `address` is in no special-purpose range, directly or through embedded IPv4."""
    return classify(address) is None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
