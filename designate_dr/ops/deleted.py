"""Zones a DNS server serves that Designate does not have any more (deleted while it was away).

A region's DNS servers back from an outage with the data they had still serve the
zones deleted in Designate meanwhile: nothing else will ever remove them (Designate's
worker deleted them on the servers it could reach).  ``dr failover`` / ``dr failback``
remove such a zone from the targets that hold it, but only when Designate says both
that it does not have the zone and that it deleted it:

- *not there*: every master of the pools (each region's designate-mdns, all of them,
  asked again here) answers and refuses the zone (REFUSED, NOTAUTH or NXDOMAIN, also
  when signed with each ``--tsig-keys`` key); none serves it, none stays silent about
  it; with ``--designate-conf`` its database has no live zone of that name.  A
  designate-mdns answers REFUSED for a zone its database does not have, but also for
  a zone of another pool asked unsigned, and for every unsigned query under
  ``query_enforce_tsig``: without the database the masters' refusals are trusted only
  when pools.yaml has one pool and the masters serve some of the targets' zones;
- *deleted*: the database has the zone's soft-deleted row (``--designate-conf``;
  Designate keeps it until the producer's zone purge, a week by default), or a target of
  the zone's pool that answers does not hold it (Designate's worker deleted it there).
  A zone every target still holds and the masters refuse was rather lost from
  Designate's database (a replica behind, an old backup restored): it is kept and
  reported, with "create it in Designate or restore its database".

A zone not known deleted this way is never removed: it is reported with the reason and
the run exits 1 (the zone stays).  The pools' catalog zones are never removed.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from designate_dr.ops.pools import Address, PoolsFile
from designate_dr.ops.soa import Keyrings, Patience, query_serials
from designate_dr.ops.tsig import ask_refused_signed

#: What designate-mdns answers (``ServerAnswers.missing``) for a zone it does not have.
ABSENT = ("REFUSED", "NOTAUTH", "NXDOMAIN")


@dataclass
class Deleted:
    """Which of the zones no master serves Designate has deleted (``gone``), and which it may still have."""

    gone: dict[str, str] = field(default_factory=dict)  # zone -> how we know
    doubtful: dict[str, str] = field(default_factory=dict)  # zone -> why we do not know
    lost: set[str] = field(default_factory=set)  # doubtful zones Designate never deleted: lost from its database?


def catalog_zones(pools: PoolsFile) -> set[str]:
    """The catalog zones of ``pools`` (pool ``catalog_zone`` and target ``catalog_zone`` options)."""
    names: set[str] = set()
    for pool in pools.data:
        fqdn = (pool.get("catalog_zone") or {}).get("catalog_zone_fqdn")
        if fqdn:
            names.add(str(fqdn))
    names.update(str(t.options["catalog_zone"]) for t in pools.targets if t.options.get("catalog_zone"))
    return {n.lower().rstrip(".") + "." for n in names}


def find_deleted(candidates: Iterable[str], masters: list[Address], pools: PoolsFile, *,
                 patience: Patience, masters_serve_some: bool, lacking: Mapping[str, list[str]],
                 db_zones: Iterable[str] | None = None, db_deleted: Iterable[str] | None = None,
                 keyrings: Keyrings | None = None, tsig_keys: list | None = None) -> Deleted:
    """Sort ``candidates`` (zones some target serves and no master served in the preflight)
    into those Designate has deleted and those it may still have (see the module docstring).

    :param masters_serve_some: whether the masters served any of the targets' zones (a master
        that refuses every unsigned query refuses deleted and live zones alike).
    :param lacking: per zone, the targets of its pool that answered and do not hold it.
    :param db_zones: the live zones of Designate's database (``--designate-conf``), if read.
    :param db_deleted: the names of the zones it deleted (soft-deleted rows), if read.
    """
    result = Deleted()
    todo = sorted(set(candidates))
    if not todo:
        return result
    catalogs = catalog_zones(pools)
    live = None if db_zones is None else {z.lower() for z in db_zones}
    deleted = {z.lower() for z in db_deleted or ()}
    for zone in todo:
        if zone.lower() in catalogs:
            result.doubtful[zone] = "it is a pool's catalog zone"
        elif live is not None and zone.lower() in live:
            result.doubtful[zone] = "Designate's database has it"
        elif zone.lower() not in deleted and not lacking.get(zone):
            result.doubtful[zone] = ("Designate's database has no record of deleting it" if live is not None
                                     else "every target of its pool holds it: Designate never deleted it")
            result.lost.add(zone)
    todo = [z for z in todo if z not in result.doubtful]
    if live is None and todo:
        reason = None
        if len(pools.data) > 1:
            reason = (f"pools.yaml has {len(pools.data)} pools and mdns refuses another pool's zone asked "
                      "unsigned as it refuses a deleted one: give --designate-conf (its database lists "
                      "every pool's zones)")
        elif not masters_serve_some:
            reason = ("the masters serve none of the targets' zones (do they refuse unsigned queries? give "
                      "--tsig-keys, or --designate-conf)")
        if reason is not None:
            result.doubtful.update(dict.fromkeys(todo, reason))
            return result
    if not todo:
        return result
    if not masters:
        result.doubtful.update(dict.fromkeys(todo, "there are no masters to ask"))
        return result
    answers = query_serials(masters, todo, keyrings=keyrings, **patience.kwargs())
    reachable = [m for m in masters if answers[m].reachable]
    if tsig_keys:
        ask_refused_signed(answers, reachable, tsig_keys, **patience.kwargs())
    for zone in todo:
        why = None
        for master in masters:
            got = answers[master]
            if not got.reachable:
                why = f"master {master} does not answer ({got.error or 'no answer'})"
            elif zone in got.serials:
                why = f"master {master} serves it (serial {got.serials[zone]})"
            elif zone in got.unanswered or zone not in got.missing:
                why = f"master {master} gave no answer for it in time"
            elif got.missing[zone] not in ABSENT:
                why = f"master {master} answered {got.missing[zone]}, not a refusal"
            if why is not None:
                break
        if why is not None:
            result.doubtful[zone] = why
            continue
        evidence = ["every master refuses it"]
        if zone.lower() in deleted:
            evidence.append("its database has it deleted")
        if lacking.get(zone):
            evidence.append(f"{', '.join(lacking[zone][:2])}{' ...' if len(lacking[zone]) > 2 else ''} "
                            "no longer hold(s) it")
        result.gone[zone] = "; ".join(evidence)
    return result
