"""Decoding what redis-py returns (bytes) into the str the domain uses."""

from __future__ import annotations


def text(value: bytes | str | int) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def pairs(flat: list[bytes | str]) -> dict[str, str]:
    """``[k1, v1, k2, v2]`` (as HGETALL inside Lua returns) → ``{k1: v1, k2: v2}``."""
    it = iter(text(v) for v in flat)
    return dict(zip(it, it, strict=False))  # one iterator, read in pairs
