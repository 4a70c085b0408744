"""Outbound requests only where the operator allows (issue #24): which addresses a webhook or an
Alertmanager channel may reach. Standard library only (the settings validate with it).

A target is refused when any address its host resolves to is not a public unicast address:
loopback (127/8, ::1), link-local (169.254/16 with the cloud metadata address 169.254.169.254,
fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7), unspecified (0.0.0.0, ::),
multicast, reserved, shared address space (CGNAT, 100.64/10), or anything else Python's
`ipaddress` does not call global; an IPv6 address that embeds an IPv4 one (IPv4-mapped
::ffff:a.b.c.d, 6to4, Teredo, NAT64 64:ff9b::/96) is judged by the IPv4 address too.

The operator's setting LEARNSTREAM_OUTBOUND_ALLOW lists what may be reached anyway, comma-separated:

* a network or an address, `10.0.0.0/8`, `127.0.0.1`, `fd00::/8`: any port;
* an address and a port, `127.0.0.1:9093`, `[::1]:9093`: that port only;
* a host name, `alertmanager`, or a host name and a port, `alertmanager:9093`: the name as written in
  the channel's URL (case-insensitive), whatever it resolves to (the operator vouches for the name).

The check is made on the addresses the connection is made to (streams/alerts/delivery/http.py
resolves once, checks every address, connects only to those), so a name that resolves to a public
address when the channel is added and to 127.0.0.1 at delivery (DNS rebinding) is refused then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the setting's environment variable (named in refusals, so an operator knows where to look)
ALLOW_ENV = "LEARNSTREAM_OUTBOUND_ALLOW"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: special-purpose blocks refused whatever this Python's ipaddress flags say (they changed across
#: 3.11 patch releases): IANA's special-purpose registries, the ranges no webhook lives in
_SPECIAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/127", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))


def classify(ip: IPAddress) -> str | None:
    """None for a public unicast address; else why it is not one: unspecified, loopback,
    link_local, multicast, cgnat, private, reserved or non_global."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # the connection goes to the IPv4 address
            return classify(ip.ipv4_mapped)
        embedded = [ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        for v4 in embedded:
            if v4 is not None and (why := classify(v4)) is not None:
                return why
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "cgnat"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global or any(ip in net for net in _SPECIAL if net.version == ip.version):
        return "non_global"
    return None


@dataclass(frozen=True)
class Refusal:
    """Why a target is refused: `reason` (a metric label: one of classify's) and a short text."""

    reason: str
    text: str


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port`, a bare IPv6 address -> (host, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{entry!r}: expected [address]:port")
        return host, _port(rest[1:], entry) if rest else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, _port(port, entry)
    return entry, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: the port must be 1 to 65535")
    return int(text)


class OutboundPolicy:
    """The allow-list of LEARNSTREAM_OUTBOUND_ALLOW (see the module docstring), and the check."""

    def __init__(self, allow: str = "") -> None:
        self.text = allow.strip()
        self.networks: list[tuple[IPNetwork, int | None]] = []
        self.hosts: set[tuple[str, int | None]] = set()
        for raw in self.text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            if "/" in entry:
                try:
                    self.networks.append((ipaddress.ip_network(entry, strict=False), None))
                except ValueError:
                    raise ValueError(f"{entry!r} is not a network (e.g. 10.0.0.0/8)") from None
                continue
            host, port = _split_port(entry)
            try:
                self.networks.append((ipaddress.ip_network(host), port))
            except ValueError:
                name = host.lower().rstrip(".")
                if not name or any(c in name for c in " /@?#[]"):
                    raise ValueError(f"{entry!r} is neither an address, a network nor a host name") from None
                self.hosts.add((name, port))

    def refusal(self, host: str, port: int, addresses: Iterable[str]) -> Refusal | None:
        """None if a connection to `host` (as in the URL) on `port` may go to every one of
        `addresses` (what it resolved to); else the first address refused and why."""
        name = host.lower().strip("[]").rstrip(".")
        if (name, port) in self.hosts or (name, None) in self.hosts:
            return None
        found = False
        for a in addresses:
            found = True
            try:
                ip = ipaddress.ip_address(a.split("%", 1)[0])  # a scoped IPv6 address: fe80::1%eth0
            except ValueError:
                return Refusal("non_global", f"{host} resolved to something that is not an address")
            why = classify(ip)
            if why is None or self._listed(ip, port):
                continue
            return Refusal(why, f"{host} resolves to {ip} ({why.replace('_', '-')}); not allowed "
                                f"unless listed in {ALLOW_ENV}")
        if not found:
            return Refusal("non_global", f"{host} resolved to no address")
        return None

    def _listed(self, ip: IPAddress, port: int) -> bool:
        ips = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ips.append(ip.ipv4_mapped)
        return any(i.version == net.version and i in net and (p is None or p == port)
                   for net, p in self.networks for i in ips)


def url_target(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL (the scheme's port when none is written)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def check_url(policy: OutboundPolicy, url: str) -> Refusal | None:
    """Resolve the URL's host (blocking) and check it, as the delivery will: for an admin adding a
    channel, a clear refusal now rather than dead letters later. A name that does not resolve
    here is not refused (the workers may see another DNS): the delivery checks it again anyway."""
    host, port = url_target(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return policy.refusal(host, port, [str(info[4][0]) for info in infos])
