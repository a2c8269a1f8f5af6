"""``--apply-pools``: load the new pools.yaml into Designate, in an order with no window.

``designate-manage pool update`` makes central update every zone of the pool, and a
worker that still holds the old pool puts the lost region's mdns back as masters.  So:

1. read Designate's pools back (``designate-manage pool generate_file``); when they
   already match pools.yaml, nothing is done (a rerun);
2. stop the workers and producers (``--service-command``, default ``systemctl``; with
   ``none`` the caller fences them, e.g. ``ansible/dr-failover.yml`` on every host);
3. run the pool update (``--pool-update-command``);
4. read the pools back and verify them against pools.yaml: every target's masters and
   options (the runbook's "update the Master column"), nameservers, also_notifies;
5. start the services again.

A failure in 3 or 4 leaves the services stopped (zone changes wait in the queue rather
than being applied with the old pool) and says how to resume: run the same command
again.  Commands are argument lists, never a shell; ``{pools}``, ``{output}``,
``{action}`` and ``{service}`` in them are replaced.
"""
from __future__ import annotations

import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from designate_dr.ops.errors import DRError, DRFailed, PoolsError
from designate_dr.ops.pools import MASTERS_OPTION, PoolsFile

DEFAULT_POOL_UPDATE = "designate-manage pool update --file {pools}"
DEFAULT_POOL_SHOW = "designate-manage pool generate_file --file {output}"
DEFAULT_SERVICE_COMMAND = "systemctl {action} {service}"
DEFAULT_SERVICES = ("designate-worker", "designate-producer")
COMMAND_TIMEOUT = 600

Progress = Callable[[str], None]


def command_template(text: str, placeholders: Sequence[str], option: str) -> tuple[str, ...] | None:
    """``text`` split like a shell would (no shell runs it); ``none`` -> None."""
    if text.strip().lower() == "none":
        return None
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise PoolsError(f"{option}: {exc}") from None
    if not argv:
        raise PoolsError(f"{option}: empty command")
    for word in argv:
        for name in _names(word):
            if name not in placeholders:
                raise PoolsError(f"{option}: unknown placeholder {{{name}}} (known: "
                                 f"{', '.join('{' + p + '}' for p in placeholders)})")
    return argv


def _names(word: str) -> list[str]:
    import string
    return [name for _, name, _, _ in string.Formatter().parse(word) if name]


@dataclass(frozen=True)
class ApplySettings:
    pool_update: tuple[str, ...] = tuple(shlex.split(DEFAULT_POOL_UPDATE))
    pool_show: tuple[str, ...] = tuple(shlex.split(DEFAULT_POOL_SHOW))
    service_command: tuple[str, ...] | None = tuple(shlex.split(DEFAULT_SERVICE_COMMAND))
    services: tuple[str, ...] = DEFAULT_SERVICES

    @classmethod
    def from_options(cls, pool_update: str = DEFAULT_POOL_UPDATE, pool_show: str = DEFAULT_POOL_SHOW,
                     service_command: str = DEFAULT_SERVICE_COMMAND,
                     services: str = ",".join(DEFAULT_SERVICES)) -> ApplySettings:
        update = command_template(pool_update, ("pools",), "--pool-update-command")
        show = command_template(pool_show, ("output",), "--pool-show-command")
        if update is None or show is None:
            raise PoolsError("--apply-pools needs a pool update and a pool show command")
        names = tuple(s.strip() for s in services.split(",") if s.strip())
        return cls(update, show, command_template(service_command, ("action", "service"), "--service-command"),
                   names)


def _run(argv: Sequence[str], what: str) -> str:
    """Run ``argv`` (no shell); its stdout, or a DRError naming ``what`` with stderr's tail."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise DRError(f"{what}: {argv[0]} is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise DRFailed(f"{what}: {shlex.join(argv)} did not finish in {COMMAND_TIMEOUT}s") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])[-300:]
        raise DRFailed(f"{what} failed (exit {done.returncode}): {shlex.join(argv)}: {tail or 'no output'}")
    return done.stdout


def _fill(argv: Sequence[str], **values: str) -> list[str]:
    return [word.format(**values) for word in argv]


def read_back(settings: ApplySettings) -> list[dict[str, Any]]:
    """Designate's pools as its pool show command writes them (the YAML of pools.yaml)."""
    with tempfile.TemporaryDirectory(prefix="designate-dr-") as tmp:
        output = Path(tmp) / "pools.yaml"
        _run(_fill(settings.pool_show, output=str(output)), "reading Designate's pools back")
        try:
            data = yaml.safe_load(output.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise DRFailed(f"reading Designate's pools back: {shlex.join(settings.pool_show)} wrote no "
                           f"pools YAML ({type(exc).__name__})") from None
    if not isinstance(data, list):
        raise DRFailed("reading Designate's pools back: not a list of pools")
    return data


def _address_list(entries: Any, default_port: int) -> list[str]:
    out = []
    for entry in entries or []:
        if isinstance(entry, dict):
            out.append(f"{entry.get('host')}:{entry.get('port', default_port)}")
    return out


def _options(target: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (target.get("options") or {}).items()}


def _target_key(target: dict[str, Any]) -> tuple:
    options = _options(target)
    return (str(target.get("type")),
            tuple(sorted((k, v) for k, v in options.items() if not k.startswith(MASTERS_OPTION))))


def differences(wanted: PoolsFile, live: list[dict[str, Any]]) -> list[str]:
    """How Designate's pools (``live``) differ from pools.yaml (``wanted``): one line each."""
    lines: list[str] = []
    by_name = {str(p.get("name")): p for p in live if isinstance(p, dict)}
    for pool in wanted.data:
        name = str(pool["name"])
        have = by_name.get(name)
        if have is None:
            lines.append(f"pool {name} is not in Designate")
            continue
        for key, port in (("nameservers", 53), ("also_notifies", 53)):
            if sorted(_address_list(pool.get(key), port)) != sorted(_address_list(have.get(key), port)):
                lines.append(f"pool {name}: {key} {_address_list(have.get(key), port)} in Designate, "
                             f"{_address_list(pool.get(key), port)} in pools.yaml")
        live_targets = {_target_key(t): t for t in have.get("targets") or []}
        wanted_keys = set()
        for target in pool.get("targets") or []:
            key = _target_key(target)
            wanted_keys.add(key)
            label = f"{target.get('type')} {_options(target).get('host') or _options(target).get('api_endpoint', '')}"
            other = live_targets.get(key)
            if other is None:
                lines.append(f"pool {name}: target {label} is not in Designate")
                continue
            if _address_list(other.get("masters"), 5354) != _address_list(target.get("masters"), 5354):
                lines.append(f"pool {name}: target {label} has masters {_address_list(other.get('masters'), 5354)} "
                             f"in Designate, {_address_list(target.get('masters'), 5354)} in pools.yaml")
            if _options(other) != _options(target):
                changed = sorted(set(_options(other).items()) ^ set(_options(target).items()))
                lines.append(f"pool {name}: target {label} options differ "
                             f"({', '.join(sorted({k for k, _ in changed}))})")
        for key, target in live_targets.items():
            if key not in wanted_keys:
                lines.append(f"pool {name}: Designate has target {target.get('type')} "
                             f"{_options(target).get('host', '')} that pools.yaml does not")
    return lines


def _services(settings: ApplySettings, action: str, progress: Progress) -> None:
    if settings.service_command is None:
        return
    for service in settings.services:
        _run(_fill(settings.service_command, action=action, service=service), f"{action} {service}")
    progress(f"{action} {', '.join(settings.services)}: done")


def apply_pools(wanted: PoolsFile, settings: ApplySettings, progress: Progress, *, dry_run: bool = False,
                ) -> bool:
    """Load ``wanted`` (pools.yaml as written) into Designate (module docstring); True if it did
    (with ``dry_run``: True if it would)."""
    pending = differences(wanted, read_back(settings))
    if not pending:
        progress("Designate's pools already match pools.yaml")
        return False
    progress(f"Designate's pools differ from pools.yaml ({len(pending)}): {pending[0]}")
    stop = (f"stop {', '.join(settings.services)}; " if settings.service_command else "")
    start = (f"; start {', '.join(settings.services)}" if settings.service_command else "")
    if dry_run:
        progress(f"dry run: would {stop}run {shlex.join(_fill(settings.pool_update, pools=str(wanted.path)))}; "
                 f"read the pools back and verify them{start}")
        return True
    _services(settings, "stop", progress)
    resume = ("; the services stay stopped (zone changes wait): fix it and run the same command again"
              if settings.service_command else "; fix it and run the same command again")
    try:
        _run(_fill(settings.pool_update, pools=str(wanted.path)), "the pool update")
        left = differences(wanted, read_back(settings))
    except DRError as exc:
        raise DRFailed(f"{exc}{resume}") from None
    if left:
        raise DRFailed(f"after the pool update Designate's pools still differ from pools.yaml ({len(left)}): "
                       f"{left[0]}{resume}")
    progress(f"pool update done; read back: every pool, target, master and nameserver matches {wanted.path}")
    _services(settings, "start", progress)
    return True
