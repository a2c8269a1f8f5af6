"""``designate-dr bind-lists``: the primaries lists of BIND targets in the lists mode.

A ``bind9_dr`` target with the ``primaries_list`` option gives its zones no masters of
their own: each refers to a named ``primaries`` list defined in ``primaries_file``,
which named.conf includes (see :mod:`designate_dr.backend.bind9_dr`).  That file must
exist before the worker creates the first zone; failover and failback rewrite it.  This
writes it for every such target of pools.yaml (or prints one target's, for a BIND host
the DR host cannot write to), from the target's options as pools.yaml has them now:
the lists a failover or failback wrote are the ones this writes again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from designate_dr.ops.errors import DRError, PoolsError, UsageError
from designate_dr.ops.failover import backend_call, check_lists_clash, in_lists_mode
from designate_dr.ops.pools import PoolsFile, Target

Progress = Callable[[str], None]


def lists_targets(pools: PoolsFile, only: Sequence[str] = ()) -> list[Target]:
    """The BIND targets of ``pools`` in the lists mode; ``only``: those whose DNS server
    (``host`` or ``host:port`` of the target options) is named."""
    found = [t for t in pools.targets if in_lists_mode(t)]
    check_lists_clash(found)
    if only:
        wanted = set(only)
        found = [t for t in found if t.address is not None
                 and ({t.address.host, f"{t.address.host}:{t.address.port}"} & wanted)]
        if not found:
            raise UsageError(f"no BIND target in the lists mode has the server {', '.join(only)}")
    if not found:
        raise PoolsError(f"{pools.path}: no bind9_dr target has the primaries_list option",
                         hint="the lists mode is off: nothing to write")
    return found


def render(pools: PoolsFile, only: Sequence[str] = ()) -> str:
    """One target's primaries file (``only`` must pick one when there are several)."""
    targets = lists_targets(pools, only)
    if len(targets) > 1:
        raise UsageError(f"{len(targets)} BIND targets are in the lists mode: name one with --target")
    target = targets[0]
    return backend_call(target, "rendering the primaries lists",
                        lambda m: m.lists_text(dict(target.options), target_masters=list(target.masters)))


def write(pools: PoolsFile, only: Sequence[str] = (), lists_command: Sequence[str] | None = None,
          out: Progress = lambda line: None) -> int:
    """Write each target's ``primaries_file`` (``lists_command`` copies it to the BIND host) and
    ``rndc reconfig``; the number of lists that changed."""
    changed = 0
    for target in lists_targets(pools, only):
        moved = backend_call(target, "writing the primaries lists",
                             lambda m, t=target: m.write_lists(dict(t.options), target_masters=list(t.masters),
                                                               lists_command=lists_command))
        changed += len(moved)
        out(f"target {target.label}: {target.options.get('primaries_file')}: "
            f"{len(moved)} list(s) changed; rndc reconfig done")
    return changed


@dataclass(frozen=True)
class ListsState:
    """Whether a lists-mode target's ``primaries_file`` (on this host) holds what pools.yaml says."""

    target: str
    file: str
    stale: bool
    reason: str = ""

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def lists_states(pools: PoolsFile) -> list[ListsState]:
    """For ``dr check``: every lists-mode target whose ``primaries_file`` is on this host, compared
    with the lists its pools.yaml options give.  In the lists mode zones take their masters from
    that file, not from pools.yaml: a pools.yaml change (a new mdns) not followed by
    ``designate-dr bind-lists`` leaves every zone on the old masters, silently."""
    out: list[ListsState] = []
    for target in filter(in_lists_mode, pools.targets):
        raw = target.options.get("primaries_file")
        path = Path(str(raw)) if raw else None
        if path is None or not path.is_file():
            continue  # not on this host (a BIND host the lists are shipped to): cannot tell

        def compare(module, t=target, f=path) -> bool:
            wanted = module.parse_lists(module.lists_text(dict(t.options), target_masters=list(t.masters)))
            return module.read_lists_file(f) == wanted

        try:
            same = backend_call(target, f"checking {path}", compare)
        except DRError as exc:  # a bad option or an unreadable file is the finding
            out.append(ListsState(target.label, str(path), True, str(exc)))
            continue
        if not same:
            out.append(ListsState(target.label, str(path), True,
                                  "differs from pools.yaml: run designate-dr bind-lists"))
        else:
            out.append(ListsState(target.label, str(path), False))
    return out
