"""The zones' serials straight from a region's Designate database (what its mdns serves).

designate-mdns answers a SOA query with four SELECTs through SQLAlchemy's ORM: ~100
queries a second per CPU, so asking it about 10,000 zones takes minutes.  The serials
it would answer are one indexed table away: ``SELECT name, serial FROM zones``.  A
failover given the remaining region's ``designate.conf`` (``--designate-conf``) reads
them there, and asks mdns only about a sample, to check that it serves them.

The database URL (``[database] connection``, or Designate's older
``[storage:sqlalchemy] connection``) holds a password: it is never printed.
"""
from __future__ import annotations

import configparser
from pathlib import Path

from designate_dr.ops.errors import PoolsError, Unreachable


def database_url(conf: Path | str) -> str:
    """The SQLAlchemy URL of Designate's database, from its config file."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        with open(conf, encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise PoolsError(f"{conf}: cannot read: {exc.strerror or exc}") from None
    except configparser.Error as exc:
        raise PoolsError(f"{conf}: not an INI file: {type(exc).__name__}") from None
    for section in ("storage:sqlalchemy", "database"):
        if parser.has_option(section, "connection") and parser.get(section, "connection").strip():
            return parser.get(section, "connection").strip()
    raise PoolsError(f"{conf}: no [storage:sqlalchemy] or [database] connection")


def _rows(conf: Path | str, sql: str) -> list:
    url = database_url(conf)
    try:
        import sqlalchemy
    except ImportError:
        raise PoolsError("reading Designate's database needs SQLAlchemy (in Designate's venv)") from None
    try:
        engine = sqlalchemy.create_engine(url)
    except ModuleNotFoundError as exc:
        raise PoolsError(f"{conf}: the driver of its database is not installed (no module {exc.name})") from None
    except Exception as exc:  # noqa: BLE001 - a bad URL or a missing driver; the URL holds a password
        raise PoolsError(f"{conf}: cannot use its database connection: {type(exc).__name__}") from None
    try:
        with engine.connect() as con:
            return con.execute(sqlalchemy.text(sql)).fetchall()
    except Exception as exc:  # noqa: BLE001 - OperationalError & co.: name the kind, not the URL
        raise Unreachable(f"the Designate database of {conf} cannot be read ({type(exc).__name__})") from None
    finally:
        engine.dispose()


def zone_serials(conf: Path | str) -> dict[str, int]:
    """Every live zone's serial (``example.org.`` -> serial) in the database ``conf`` names."""
    rows = _rows(conf, "SELECT name, serial FROM zones WHERE deleted = '0' AND type != 'CATALOG'")
    return {str(name): int(serial) for name, serial in rows}


def deleted_zones(conf: Path | str) -> set[str]:
    """The names of the zones Designate deleted (soft-deleted rows, kept until the producer's
    zone purge task removes them: a week by default) in the database ``conf`` names."""
    return {str(name) for (name,) in _rows(conf, "SELECT DISTINCT name FROM zones WHERE deleted != '0'")}
