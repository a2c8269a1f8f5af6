"""TSIG keys that sign the DR operations' queries to mdns (zones outside the default pool).

designate-mdns answers an unsigned SOA query only for a zone of the default pool (and
none at all with ``query_enforce_tsig``); a query signed with a pool's TSIG key is
answered for that pool's zones.  The keys come from a file of BIND ``key`` statements
(``--tsig-keys FILE``, mode 0600: the same keys the secondaries use for their
transfers).  A master is first asked unsigned; the zones it refuses are asked again
signed with each key in turn (the pools' ``tsigkey_name`` keys first), so no zone-to-pool
map is needed.  Secrets stay out of every message.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import dns.name
import dns.tsig

from designate_dr.keyfile import KeyFileError, key_statements
from designate_dr.ops.errors import PoolsError
from designate_dr.ops.pools import Address, PoolsFile
from designate_dr.ops.soa import ServerAnswers, query_serials

#: What a master answers (in ``ServerAnswers.missing``) to a query it will not answer unsigned.
REFUSALS = ("REFUSED", "NOTAUTH", "SERVFAIL", "FORMERR")


def load_keys(path: Path | str, pools: PoolsFile | None = None) -> list[dns.tsig.Key]:
    """The keys of ``path``, those named by a target's ``tsigkey_name`` in ``pools`` first."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PoolsError(f"{path}: cannot read TSIG keys: {exc.strerror or exc}") from None
    try:
        keys = key_statements(text)
    except KeyFileError as exc:
        raise PoolsError(f"{path}: {exc}") from None
    if not keys:
        raise PoolsError(f"{path}: no key statement (key \"name\" {{ algorithm ...; secret \"...\"; }};)")
    named = [str(t.options.get("tsigkey_name")) for t in (pools.targets if pools else ())
             if t.options.get("tsigkey_name")]
    order = [n for n in dict.fromkeys(named) if n in keys] + [n for n in keys if n not in named]
    return [dns.tsig.Key(dns.name.from_text(name), keys[name].secret, dns.name.from_text(keys[name].algorithm))
            for name in order]


def ask_refused_signed(answers: dict[Address, ServerAnswers], masters: Iterable[Address],
                       keys: list[dns.tsig.Key], **patience) -> None:
    """Ask ``masters`` again, signed with each key, about the zones they refused unsigned;
    merge what they answer into ``answers``."""
    for key in keys:
        todo = {m: sorted(z for z, why in answers[m].missing.items() if why in REFUSALS)
                for m in masters if m in answers and answers[m].reachable}
        todo = {m: zones for m, zones in todo.items() if zones}
        if not todo:
            return
        signed = query_serials(list(todo), [], only=todo, keyrings=dict.fromkeys(todo, key), **patience)
        for master, got in signed.items():
            known = answers[master]
            for zone, serial in got.serials.items():
                known.serials[zone] = serial
                known.missing.pop(zone, None)
            for zone in got.unanswered:
                known.missing.pop(zone, None)
                known.unanswered.add(zone)
