"""SOA serial arithmetic (RFC 1982), shared by the DR backends and the DR operations."""
from __future__ import annotations

from collections.abc import Iterable


def serial_lag(highest: int, serial: int) -> int:
    """How far ``serial`` is behind ``highest`` (RFC 1982), 0 when not behind."""
    diff = (highest - serial) % 2**32
    return diff if 0 < diff < 2**31 else 0


def highest_serial(serials: Iterable[int]) -> int | None:
    """The highest of ``serials`` in RFC 1982 order (None for none)."""
    best: int | None = None
    for serial in serials:
        if best is None or serial_lag(serial, best) > 0:
            best = serial
    return best


def lags(held: int | None, wanted: int | None) -> bool:
    """Whether a server holding ``held`` (None/0: nothing yet) must transfer to reach ``wanted``."""
    if wanted is None:
        return False
    return not held or serial_lag(wanted, held) > 0
