"""The options that take one of a fixed set of values (light: the CLI imports it for `qa --help`)."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """An option with a fixed set of values; prints and serialises as its value."""

    def __str__(self) -> str:
        return self.value


class Decoder(Choice):
    """packed: several calls' speech packed into batched windows; sequential: one channel at a time."""

    sequential = "sequential"
    packed = "packed"


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class EngineKind(Choice):
    """Where the calls are processed: this machine, or a Ray cluster."""

    local = "local"
    ray = "ray"


class Role(Choice):
    """Review desk roles: inspector reviews; supervisor reviews and resolves disputes; agent reads and
    disputes their own calls; manager reads everything."""

    inspector = "inspector"
    supervisor = "supervisor"
    agent = "agent"
    manager = "manager"
