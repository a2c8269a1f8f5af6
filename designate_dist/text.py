"""Words for messages: "1 patch", "2 patches", never "patch(es)" or "1 lines"."""
from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``singular`` or its plural, as ``count`` asks (English rules for the words we use)."""
    if count == 1:
        return singular
    if plural_form is not None:
        return plural_form
    if singular.endswith(("s", "x", "ch", "sh")):
        return singular + "es"
    return singular + "s"


def counted(count: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 patch"``, ``"2 patches"``, ``"0 files"``."""
    return f"{count} {plural(count, singular, plural_form)}"
