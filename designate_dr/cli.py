"""``designate-dr``: the disaster-recovery operations (check, failover, failback) on the command line.

Argument parsing and printing only; the work is done by :mod:`designate_dr.ops`.  It
runs in Designate's own virtualenv (the deb puts it on PATH) and imports nothing of
the build tool; ``designate-dist dr ...`` is the same commands (:func:`add_commands`),
delegated here.  Errors are :class:`designate_dr.ops.errors.DRError`: one
``error: ...`` line and the error's exit code; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from designate_dr.ops import atomic
from designate_dr.ops.apply import DEFAULT_POOL_SHOW, DEFAULT_POOL_UPDATE, DEFAULT_SERVICE_COMMAND
from designate_dr.ops.errors import EXIT_ERROR, EXIT_OK, EXIT_PENDING, DRError, PoolsError, UsageError

PROG = "designate-dr"


def number_arg(kind: Callable[[str], Any], minimum: float, *, inclusive: bool = True
               ) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, at least (or, not inclusive, above) ``minimum``."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {'>=' if inclusive else '>'} {minimum:g}")
        return value
    return parse


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
    from designate_dr.ops import check
    from designate_dr.ops.pools import load_pools
    pools = load_pools(args.pools)
    zones = _zones(args, pools)
    if not zones:
        raise PoolsError("no zones to check", hint="give --zones FILE or --from-api URL")
    report = check.check(pools, zones, masters=args.masters, master_sample=args.master_sample,
                         tsig_keys=_tsig_keys(args, pools), **_patience(args).kwargs())
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


def _tsig_keys(args: argparse.Namespace, pools) -> list | None:
    if not args.tsig_keys:
        return None
    from designate_dr.ops.tsig import load_keys
    return load_keys(args.tsig_keys, pools)


def _apply_settings(args: argparse.Namespace):
    if not args.apply_pools:
        return None
    from designate_dr.ops.apply import ApplySettings
    return ApplySettings.from_options(args.pool_update_command, args.pool_show_command, args.service_command,
                                      args.services)


def _lists_command(args: argparse.Namespace):
    if not args.lists_command:
        return None
    from designate_dr.ops.apply import command_template
    return command_template(args.lists_command, ("file", "host"), "--lists-command")


def _patience(args: argparse.Namespace):
    from designate_dr.ops.soa import Patience
    return Patience(timeout=args.timeout, retries=args.retries, window=args.window, max_time=args.max_time)


def _run(args: argparse.Namespace, plan) -> int:
    from designate_dr.ops import failover
    api = None
    if args.fix_serials:
        if not args.api:
            raise UsageError("--fix-serials needs --api URL (the Designate API of a remaining region)")
        from designate_dr.ops.designate_api import DesignateAPI
        api = DesignateAPI(args.api, insecure_http=args.insecure_http)
    db_serials = db_deleted = None
    if args.designate_conf:
        from designate_dr.ops.database import deleted_zones, zone_serials
        db_serials = zone_serials(args.designate_conf)
        db_deleted = deleted_zones(args.designate_conf)
    last_served = None
    if args.state:
        from designate_dr.ops.check import load_state
        last_served = load_state(args.state)
    outcome = failover.execute(plan, dry_run=args.dry_run, api=api, concurrency=args.concurrency,
                               wait=args.wait, last_served=last_served, patience=_patience(args),
                               tsig_keys=_tsig_keys(args, plan.new), db_serials=db_serials,
                               db_deleted=db_deleted, apply=_apply_settings(args),
                               lists_command=_lists_command(args), out=lambda line: print(line, flush=True))
    error = outcome.error()
    if error is not None:
        raise error
    if args.dry_run and args.detailed_exitcode and outcome.pending:
        return EXIT_PENDING
    return EXIT_OK


def cmd_failover(args: argparse.Namespace) -> int:
    from designate_dr.ops import failover
    return _run(args, failover.plan_failover(args.pools, args.lost))


def cmd_failback(args: argparse.Namespace) -> int:
    from designate_dr.ops import failover
    return _run(args, failover.plan_failback(args.pools, args.restore, args.backup))


def cmd_bind_lists(args: argparse.Namespace) -> int:
    from designate_dr.ops import bindlists
    from designate_dr.ops.pools import load_pools
    pools = load_pools(args.pools)
    if args.print:
        sys.stdout.write(bindlists.render(pools, args.target or ()))
        return EXIT_OK
    bindlists.write(pools, args.target or (), lists_command=_lists_command(args),
                    out=(lambda line: None) if args.quiet else print)
    return EXIT_OK


_positive_float = number_arg(float, 0, inclusive=False)
_positive_int = number_arg(int, 1)
_count = number_arg(int, 0)


def _sample(text: str) -> int | None:
    return None if text == "all" else _positive_int(text)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add check, failover, failback and bind-lists to ``sub`` (``designate-dr``'s, or ``designate-dist dr``'s)."""

    def insecure_http_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--insecure-http", action="store_true",
                            help="allow sending the token to an http:// API URL (it is refused otherwise)")

    def lists_command_arg(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--lists-command", metavar="CMD",
                            help="BIND targets in the lists mode: after writing a target's primaries_file "
                                 "here, run CMD ({file}: that file, {host}: the target's rndc_host; no shell) "
                                 "to copy it to the BIND host, then rndc reconfig, e.g. "
                                 "'scp {file} {host}:/etc/bind/designate-dr-primaries.conf'")

    def pools_arg(parser: argparse.ArgumentParser, dns_checks: bool = True) -> None:
        parser.add_argument("--pools", metavar="FILE", default="/etc/designate/pools.yaml",
                            help="Designate's pools.yaml with regions in the target options "
                                 "(default: /etc/designate/pools.yaml)")
        parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                            help="no progress lines")
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show tracebacks and debug logs")
        if dns_checks:
            patience_args(parser)

    def patience_args(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(
            "DNS checks", "every server gets a window of queries in flight that adapts to how fast it "
                          "answers, and timeouts from its round-trip times")
        group.add_argument("--timeout", type=_positive_float, default=1.0, metavar="S",
                           help="seconds before a first query is asked again; later waits follow the "
                                "server's round-trip times (default 1)")
        group.add_argument("--retries", type=_count, default=3, metavar="N",
                           help="times a query is asked again before the zone has 'no answer' (default 3)")
        group.add_argument("--window", type=_positive_int, default=256, metavar="N",
                           help="most queries in flight to one server (default 256)")
        group.add_argument("--tsig-keys", metavar="FILE",
                           help="BIND key statements (mode 0600): zones a master refuses unsigned (pools "
                                "other than the default) are asked again signed with these keys")
        group.add_argument("--max-time", type=_positive_float, default=None, metavar="S",
                           help="stop asking after S seconds per check; zones without an answer by then "
                                "have 'no answer' (default: no limit but the tries)")

    chk = sub.add_parser("check", help="ask every nameserver of every region for every zone's SOA serial",
                         description="Ask every nameserver and master of every region for every zone's SOA "
                                     "serial. Exit 0: all in sync; 1: some zones lag, are missing or got no "
                                     "answer, or a nameserver or master is unreachable; 2: a whole region's "
                                     "nameservers are unreachable.")
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
    chk.add_argument("--no-masters", dest="masters", action="store_false",
                     help="ask only the nameservers, not the masters (every region's mdns)")
    chk.add_argument("--master-sample", type=_sample, default=256, metavar="N|all",
                     help="zones each master is asked about, spread over the list, besides those the "
                          "nameservers disagree on (default 256; mdns answers ~100 queries a second)")

    def change_args(parser: argparse.ArgumentParser) -> None:
        pools_arg(parser)
        parser.add_argument("--dry-run", action="store_true", help="print the plan and the checks; change nothing")
        parser.add_argument("--detailed-exitcode", action="store_true",
                            help=f"with --dry-run: exit {EXIT_PENDING} when a real run would change something "
                                 "(pools.yaml, Designate's pools, a zone's masters or data), 0 when not")
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
        parser.add_argument("--designate-conf", metavar="FILE",
                            help="designate.conf of a remaining region: its database gives every zone's "
                                 "serial at once, and the masters (mdns, ~100 queries a second) are asked "
                                 "about a sample only; it also tells zones Designate deleted (removed from "
                                 "the targets that still serve them) from zones it lost")
        apply = parser.add_argument_group(
            "applying the pools", "--apply-pools loads the new pools.yaml into Designate: stop the services, "
                                  "pool update, read back and verify, start the services; then re-point")
        apply.add_argument("--apply-pools", action="store_true",
                           help="load the new pools into this region's Designate (see the group description)")
        apply.add_argument("--pool-update-command", metavar="CMD", default=DEFAULT_POOL_UPDATE,
                           help=f"how to load pools.yaml ({{pools}}: its path; default: {DEFAULT_POOL_UPDATE})")
        apply.add_argument("--pool-show-command", metavar="CMD", default=DEFAULT_POOL_SHOW,
                           help="how to write Designate's pools into a file ({output}: its path; default: "
                                f"{DEFAULT_POOL_SHOW})")
        apply.add_argument("--service-command", metavar="CMD", default=DEFAULT_SERVICE_COMMAND,
                           help="how to stop and start a service ({action}: stop or start, {service}); "
                                f"'none': the caller does it on every host (default: {DEFAULT_SERVICE_COMMAND})")
        apply.add_argument("--services", metavar="LIST", default="designate-worker,designate-producer",
                           help="the services that cache the pools (default: designate-worker,designate-producer)")
        lists_command_arg(parser)
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

    bl = sub.add_parser("bind-lists", help="write the primaries lists of BIND targets in the lists mode",
                        description="For every bind9_dr target with the primaries_list option: write its "
                                    "primaries_file (the named primaries lists its zones refer to; named.conf "
                                    "includes it) from pools.yaml and run rndc reconfig. Needed once before "
                                    "the first zone is created; failover and failback rewrite the lists.")
    bl.set_defaults(dr_handler=cmd_bind_lists)
    pools_arg(bl, dns_checks=False)
    bl.add_argument("--target", metavar="HOST[:PORT]", action="append",
                    help="only the target whose DNS server this is (repeatable)")
    bl.add_argument("--print", action="store_true",
                    help="print the one target's file instead (for a BIND host this host cannot write to)")
    lists_command_arg(bl)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Disaster recovery of a multi-region Designate: check that "
                                            "every region serves every zone, fail a pool over from a "
                                            "lost region and back.")
    sub = parser.add_subparsers(dest="dr_command", metavar="COMMAND", parser_class=_Parser)
    add_commands(sub)
    return parser


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    """Run the subcommand ``args`` were parsed for (by :func:`build_parser` or ``designate-dist dr``)."""
    handler = getattr(args, "dr_handler", None)
    if handler is None:
        raise UsageError(f"{prog}: a command is required (check, failover, failback, bind-lists)")
    for name, default in (("quiet", False), ("debug", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    return handler(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DESIGNATE_DR_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(build_parser().parse_args(argv))
    except DRError as exc:
        if debug:
            raise
        line = str(exc).replace("\n", " ")
        if exc.hint:
            line += f" ({exc.hint})"
        print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if debug:
            raise
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
