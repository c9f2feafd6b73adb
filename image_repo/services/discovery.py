"""LAN discovery over mDNS/DNS-SD (python-zeroconf), as the project's avahi tutorial did.

``Advertisement`` publishes one running instance as ``_image-repo._tcp`` with
TXT records for its API root, spec, web app and version; ``discover`` lists
the instances heard within a time. Both bind to the interfaces of the address
the server listens on: a server on 127.0.0.1 is announced on the loopback
interface only, one on 0.0.0.0 on every interface. Off unless asked
(``image-repo serve --advertise``, ``IMAGE_REPO_ADVERTISE``).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

from zeroconf import (
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceListener,
    Zeroconf,
    get_all_addresses,
)

# DNS-SD service type (RFC 6763: the name is at most 15 characters, letters,
# digits and hyphens).
SERVICE_TYPE = "_image-repo._tcp.local."
ALL_INTERFACES = ("", "0.0.0.0", "::")  # noqa: S104 - names, not a bind


def _addresses(host: str) -> list[str]:
    """The IPv4 addresses to announce (and listen for mDNS on) for a server on ``host``."""
    if host in ALL_INTERFACES:
        return [a for a in get_all_addresses() if not a.startswith("127.")] or ["127.0.0.1"]
    try:
        return [str(ipaddress.IPv4Address(host))]
    except ValueError:
        return [socket.gethostbyname(host)]


def _zeroconf(interfaces: list[str]) -> Zeroconf:
    return Zeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)


@dataclass
class Advertisement:
    """One instance published on the network until ``close`` (or the ``with`` ends)."""

    host: str
    port: int
    version: str
    name: str | None = None
    _zc: Zeroconf | None = None
    _info: ServiceInfo | None = None

    def __enter__(self) -> Advertisement:
        addresses = _addresses(self.host)
        instance = self.name or f"Image Repo on {socket.gethostname()}:{self.port}"
        self._info = ServiceInfo(
            SERVICE_TYPE,
            f"{instance[:63]}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in addresses],
            port=self.port,
            properties={
                "path": "/",
                "spec": "/openapi.json",
                "app": "/app/",
                "docs": "/docs",
                "version": self.version,
            },
            server=f"image-repo-{socket.gethostname()}.local.",
        )
        self._zc = _zeroconf(addresses)
        # A name another instance holds already gets a suffix instead of failing.
        self._zc.register_service(self._info, allow_name_change=True)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def instance_name(self) -> str | None:
        return self._info.name if self._info else None

    def close(self) -> None:
        if self._zc is not None:
            self._zc.unregister_service(self._info)
            self._zc.close()
            self._zc = None


class _Collector(ServiceListener):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.discard(name)


def discover(timeout: float = 3.0, host: str = "0.0.0.0") -> list[dict]:  # noqa: S104
    """The instances heard within ``timeout`` seconds, on the interfaces of ``host``."""
    zc = _zeroconf(_addresses(host))
    try:
        collector = _Collector()
        browser = ServiceBrowser(zc, SERVICE_TYPE, collector)
        time.sleep(timeout)  # listening is what discovery is: answers come when they come
        browser.cancel()
        found = []
        for name in sorted(collector.names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=1000)
            if info is None:
                continue
            properties = {
                k.decode(): (v.decode() if v is not None else None)
                for k, v in info.properties.items()
            }
            addresses = info.parsed_addresses()
            base = f"http://{addresses[0]}:{info.port}" if addresses else None
            found.append(
                {
                    "name": name.removesuffix(f".{SERVICE_TYPE}"),
                    "addresses": addresses,
                    "port": info.port,
                    "url": base,
                    "spec_url": f"{base}{properties.get('spec', '/openapi.json')}"
                    if base
                    else None,
                    "app_url": f"{base}{properties.get('app', '/app/')}" if base else None,
                    "version": properties.get("version"),
                    "txt": properties,
                }
            )
        return found
    finally:
        zc.close()
