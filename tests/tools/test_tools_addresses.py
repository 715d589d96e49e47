"""The HTTP tool's address table (issue 17, item 20): every special-purpose range refused,
IPv4 embedded in IPv6 unwrapped in each standard form, the same answer on every Python."""

from __future__ import annotations

import ipaddress

import pytest

from swarm.errors import ToolError
from swarm.tools import HttpTool
from swarm.tools.addresses import SPECIAL_RANGES, classify, embedded_ipv4, is_public

METADATA = "169.254.169.254"

PRIVATE = [
    # IPv4, one per registry entry kind
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    METADATA,
    "172.16.5.4",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.2.7",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6 ranges
    "::",
    "::1",
    "fe80::1",
    "fe80::1%eth0",
    "fd00::1",
    "fc00::1",
    "fec0::1",
    "feff::1",
    "ff02::1",
    "100::1",
    "2001:db8::1",
    "2001:2::1",
    "2001:10::1",
    "3fff::1",
    "5f00::1",
    "64:ff9b:1::808:808",  # local-use NAT64: not global even for a public IPv4
    "::8.8.8.8",  # IPv4-compatible: deprecated, never routed
    "4000::1",
    "e000::1",
    "fe00::1",  # outside 2000::/3: unallocated
    # embedded private IPv4, in each standard form
    "::ffff:127.0.0.1",
    "::ffff:a9fe:a9fe",
    "::ffff:10.1.2.3",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::127.0.0.1",
    "64:ff9b::10.0.0.1",
    "2002:a9fe:a9fe::1",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45 (documentation)
    "2001:0:808:808::3f57:fefe",  # Teredo, client 192.168.1.1
    "2001:0:a00:1::f7f7:f7f7",  # Teredo, public client, server 10.0.0.1
    # not addresses at all
    "example.com",
    "",
    "1.2.3",
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "192.0.0.9",
    "192.0.0.10",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::1",
    "2001:1::1",
    "2001:3::1",
    "2001:20::1",  # global exceptions inside 2001::/23
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:808:808::f7f7:f7f7",  # Teredo: server 8.8.8.8, client 8.8.8.8
]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_special_addresses(address: str) -> None:
    assert not is_public(address)
    assert classify(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(address), classify(address)


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:169.254.169.254", METADATA),
        ("::a9fe:a9fe", METADATA),
        ("64:ff9b::a9fe:a9fe", METADATA),
        ("64:ff9b:1::a9fe:a9fe", METADATA),
        ("2002:a9fe:a9fe:1::5", METADATA),
        ("2001:0:4136:e378:8000:63bf:5601:5601", METADATA),  # Teredo: ~bits of the client
        ("2606:4700::1111", None),
        ("::1", None),
    ],
)
def test_embedded_ipv4_in_every_standard_form(address: str, inner: str | None) -> None:
    found = embedded_ipv4(ipaddress.IPv6Address(address))
    assert (str(found) if found else None) == inner


def test_the_reason_names_the_range_and_its_source() -> None:
    why = classify("64:ff9b::a9fe:a9fe")
    assert why is not None
    assert "NAT64" in why and "RFC 6052" in why and METADATA in why and "link-local" in why


def test_the_table_is_the_project_s_own() -> None:
    # Each entry is a network with a name and a source, and none overlaps another of the same
    # prefix (the longest prefix decides, so a duplicate would be ambiguous).
    seen = set()
    for special in SPECIAL_RANGES:
        assert special.name and special.source.startswith("RFC ")
        assert special.reach in ("private", "public", "ipv4")
        assert special.network not in seen
        seen.add(special.network)


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "fec0::1", "2002:a9fe:a9fe::1"])
async def test_a_public_name_resolving_to_an_embedded_private_address_is_refused(
    address: str,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    http = HttpTool(["api.example.com"], resolver=resolve)
    with pytest.raises(ToolError, match="private or reserved address"):
        await http(url="https://api.example.com/")
