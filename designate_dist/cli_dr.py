"""The ``dr`` command (check, failover, failback): argument parsing and printing only.

``designate_dist.cli`` calls :func:`register` with its ``add(name, handler, help)``.
The work is done by :mod:`designate_dr.ops`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from designate_dist.cli import number_arg
from designate_dist.errors import EXIT_OK, ConfigError, UsageError

Add = Callable[..., argparse.ArgumentParser]


def _zones(args: argparse.Namespace, pools) -> list[str]:
    from designate_dr.ops import check, failover
    if args.zones:
        return check.read_zone_file(args.zones)
    if args.from_api:
        from designate_dr.ops.designate_api import DesignateAPI
        api = DesignateAPI(args.from_api, insecure_http=args.insecure_http)
        try:
            return sorted({z["name"] for z in api.list_zones()})
        finally:
            api.close()
    return failover.target_zones(pools)


def cmd_check(args: argparse.Namespace) -> int:
    from designate_dist import atomic
    from designate_dr.ops import check
    from designate_dr.ops.pools import load_pools
    pools = load_pools(args.pools)
    zones = _zones(args, pools)
    if not zones:
        raise ConfigError("no zones to check", hint="give --zones FILE or --from-api URL")
    report = check.check(pools, zones, timeout=args.timeout, retries=args.retries)
    if args.state:
        check.save_state(args.state, report)
    text = report.render(args.format)
    if args.output:
        atomic.write_text(Path(args.output), text if text.endswith("\n") else text + "\n")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    if not args.quiet and args.format != "table":
        print(f"{report.status}: {report.zones_in_sync}/{report.zones} zones in sync "
              f"({report.seconds:.2f}s)", file=sys.stderr)
    return report.exit_code


def _run(args: argparse.Namespace, plan) -> int:
    from designate_dr.ops import failover
    api = None
    if args.fix_serials:
        if not args.api:
            raise UsageError("--fix-serials needs --api URL (the Designate API of a remaining region)")
        from designate_dr.ops.designate_api import DesignateAPI
        api = DesignateAPI(args.api, insecure_http=args.insecure_http)
    last_served = None
    if args.state:
        from designate_dr.ops.check import load_state
        last_served = load_state(args.state)
    outcome = failover.execute(plan, dry_run=args.dry_run, api=api, concurrency=args.concurrency,
                               wait=args.wait, last_served=last_served,
                               out=lambda line: print(line, flush=True))
    error = outcome.error()
    if error is not None:
        raise error
    return EXIT_OK


def cmd_failover(args: argparse.Namespace) -> int:
    from designate_dr.ops import failover
    return _run(args, failover.plan_failover(args.pools, args.lost))


def cmd_failback(args: argparse.Namespace) -> int:
    from designate_dr.ops import failover
    return _run(args, failover.plan_failback(args.pools, args.restore, args.backup))


def cmd_dr(args: argparse.Namespace) -> int:
    handler = getattr(args, "dr_handler", None)
    if handler is None:
        raise UsageError("designate-dist dr: a subcommand is required (check, failover, failback)")
    return handler(args)


_positive_float = number_arg(float, 0, inclusive=False)
_positive_int = number_arg(int, 1)
_count = number_arg(int, 0)


def register(add: Add) -> None:
    dr = add("dr", cmd_dr, "disaster recovery across regions: sync check, failover, failback")
    sub = dr.add_subparsers(dest="dr_command", metavar="SUBCOMMAND", parser_class=type(dr))

    def insecure_http_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--insecure-http", action="store_true",
                            help="allow sending the token to an http:// API URL (it is refused otherwise)")

    def pools_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pools", metavar="FILE", default="/etc/designate/pools.yaml",
                            help="Designate's pools.yaml with regions in the target options "
                                 "(default: /etc/designate/pools.yaml)")
        parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                            help="no progress lines")
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show tracebacks and debug logs")

    chk = sub.add_parser("check", help="ask every nameserver of every region for every zone's SOA serial",
                         description="Ask every nameserver of every region for every zone's SOA serial. "
                                     "Exit 0: all in sync; 1: some zones lag or are missing, or a "
                                     "nameserver is unreachable; 2: a whole region is unreachable.")
    chk.set_defaults(dr_handler=cmd_check)
    pools_arg(chk)
    source = chk.add_mutually_exclusive_group()
    source.add_argument("--zones", metavar="FILE", help="zone names, one a line (# comments)")
    source.add_argument("--from-api", metavar="URL",
                        help="list the zones from the Designate API at URL (token in OS_AUTH_TOKEN)")
    insecure_http_arg(chk)
    chk.add_argument("--format", choices=("table", "json", "prometheus"), default="table")
    chk.add_argument("--output", metavar="FILE",
                     help="write the report to FILE atomically (e.g. a node-exporter textfile .prom)")
    chk.add_argument("--state", metavar="FILE",
                     help="keep the highest serial ever served per zone in FILE (JSON), for failover --state")
    chk.add_argument("--timeout", type=_positive_float, default=1.0, metavar="S",
                     help="seconds before a query is asked again (default 1)")
    chk.add_argument("--retries", type=_count, default=2, metavar="N",
                     help="times a query is asked again (default 2)")

    def change_args(parser: argparse.ArgumentParser) -> None:
        pools_arg(parser)
        parser.add_argument("--dry-run", action="store_true", help="print the plan and the checks; change nothing")
        parser.add_argument("--fix-serials", action="store_true",
                            help="bump, through the Designate API, the serial of zones served above "
                                 "their masters' serial")
        parser.add_argument("--api", metavar="URL",
                            help="Designate API of a remaining region (token in OS_AUTH_TOKEN)")
        insecure_http_arg(parser)
        parser.add_argument("--concurrency", type=_positive_int, default=8, metavar="N",
                            help="re-point requests in flight per target (default 8)")
        parser.add_argument("--state", metavar="FILE",
                            help="serials last served, recorded by `dr check --state FILE`: counts what "
                                 "servers that are gone served")
        parser.add_argument("--wait", type=_positive_float, default=30.0, metavar="S",
                            help="how long to wait for the nameservers to serve the masters' serials "
                                 "(default 30)")

    fo = sub.add_parser("failover", help="take a lost region out of pools.yaml and re-point every zone",
                        description="Rewrite pools.yaml without the lost region (backup kept), re-point "
                                    "every zone on every remaining target to the remaining masters and "
                                    "check the serials. Running it again changes nothing.")
    fo.set_defaults(dr_handler=cmd_failover)
    fo.add_argument("--lost", metavar="REGION", required=True, help="the region that is gone")
    change_args(fo)

    fb = sub.add_parser("failback", help="put a region back into pools.yaml from the failover's backup",
                        description="Put the region's targets, nameservers, also_notifies and masters back "
                                    "from the newest backup that has them (or --backup), re-point every "
                                    "zone and check the serials.")
    fb.set_defaults(dr_handler=cmd_failback)
    fb.add_argument("--restore", metavar="REGION", required=True, help="the region that is back")
    fb.add_argument("--backup", metavar="FILE", help="the pools.yaml backup to take the region from")
    change_args(fb)
