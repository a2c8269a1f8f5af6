"""Designate's database migration head, read from a source tree.

Designate (like OpenStack since Kilo) has no schema downgrades: a build whose
migration head is older than the database's cannot run on it.  The build
records the head in its manifest (``database.migration_head``) so that a
rollback can refuse to go below it (see ansible/rollback.yml).

Designate keeps its alembic revisions in
``designate/storage/sqlalchemy/alembic/versions/``; each file sets
``revision`` and ``down_revision`` (a string, None, or a tuple for a merge).
The head is the one revision no other revision names as its parent.
"""
from __future__ import annotations

import ast
from pathlib import Path

from designate_dist.errors import ConfigError

VERSIONS_DIR = Path("designate") / "storage" / "sqlalchemy" / "alembic" / "versions"


def _assignments(path: Path) -> dict[str, object]:
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}: not valid Python: {exc.msg} (line {exc.lineno})") from exc
    found: dict[str, object] = {}
    for node in module.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    raise ConfigError(f"{path}: {target.id} is not a literal") from None
    return found


def migration_head(tree: Path) -> str | None:
    """The alembic head of the Designate source ``tree``; None if it has no alembic migrations."""
    versions = tree / VERSIONS_DIR
    if not versions.is_dir():
        return None
    revisions: dict[str, Path] = {}
    parents: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        values = _assignments(path)
        if "revision" not in values:
            continue
        revision = values["revision"]
        if not isinstance(revision, str):
            raise ConfigError(f"{path}: revision must be a string, not {revision!r}")
        if revision in revisions:
            raise ConfigError(f"{path}: revision {revision} is also in {revisions[revision].name}")
        revisions[revision] = path
        down = values.get("down_revision")
        parents.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    heads = sorted(set(revisions) - parents)
    if not revisions:
        return None
    if len(heads) != 1:
        raise ConfigError(f"{versions}: {len(heads)} alembic heads ({', '.join(heads) or 'none'}); "
                          "a release needs exactly one", hint="add a merge migration")
    return heads[0]
