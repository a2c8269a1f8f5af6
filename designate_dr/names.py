"""Zone names as the DR plugins and operations accept them (no dependency on Designate).

Strict on purpose: a name ends up in an rndc zone statement, a URL and a DNS query.
"""
from __future__ import annotations

import re

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
RULE = "use letters, digits, '-' and '_' in dot-separated labels of 1-63 characters"


def bare_zone_name(name: object) -> str:
    """``name`` checked as a DNS zone name, lower-case, without the trailing dot.

    :raises ValueError: naming the (shortened) name and the rule
    """
    text = str(name or "").strip().lower()
    bare = text[:-1] if text.endswith(".") else text
    if not bare or len(bare) > 253 or not all(_LABEL.fullmatch(label) for label in bare.split(".")):
        raise ValueError(f"invalid zone name {str(name)[:80]!r}: {RULE}")
    return bare
