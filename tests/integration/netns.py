"""Network namespaces joined by veth pairs, for tests that need real interfaces.

Everything is created under a random prefix and removed on exit, even on failure.
Addresses used by callers stay within 198.51.100.0/24, 10.x or documentation IPv6.
"""

from __future__ import annotations

import secrets
import subprocess


def ip(*args: str, netns: str | None = None) -> str:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


class Namespaces:
    """Context manager: `with Namespaces("host", "peer") as ns: ns["host"]` is a name."""

    def __init__(self, *roles: str):
        prefix = f"ks{secrets.token_hex(3)}"
        self.names = {role: f"{prefix}-{role}" for role in roles}

    def __getitem__(self, role: str) -> str:
        return self.names[role]

    def __enter__(self) -> Namespaces:
        try:
            for name in self.names.values():
                ip("netns", "add", name)
                ip("link", "set", "lo", "up", netns=name)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in self.names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    def veth(self, left: str, left_if: str, right: str, right_if: str) -> None:
        """A veth pair from namespace role `left` to `right`, both ends up."""
        ip(
            "link",
            "add",
            left_if,
            "netns",
            self[left],
            "type",
            "veth",
            "peer",
            "name",
            right_if,
            "netns",
            self[right],
        )
        ip("link", "set", left_if, "up", netns=self[left])
        ip("link", "set", right_if, "up", netns=self[right])

    def address(self, role: str, interface: str, cidr: str) -> None:
        extra = ["nodad"] if ":" in cidr else []
        ip("addr", "add", cidr, "dev", interface, *extra, netns=self[role])

    def remove_address(self, role: str, interface: str, cidr: str) -> None:
        ip("addr", "del", cidr, "dev", interface, netns=self[role])
