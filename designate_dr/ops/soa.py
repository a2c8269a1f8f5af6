"""Ask many nameservers for the SOA serial of many zones at once, patiently and within bounds.

One non-blocking UDP socket per server (per 65,536 zones), all served by one selector
loop: no thread per query.  Each server gets its own *window* of queries in flight that
adapts to it (TCP-like: one more per answered window, halved on a timeout, between 1 and
``window``) and its own timeout from the round-trip times it shows (RFC 6298:
``srtt + 4 * rttvar``, between ``MIN_TIMEOUT`` and ``MAX_TIMEOUT``, starting at
``timeout``, doubled per retry).  A fast PowerDNS quickly runs with the whole window; a
designate-mdns that answers ~100 queries a second (each a few database queries) is not
flooded into dropping them, and its slow answers are not taken for losses.

A zone ends in one of three states per server: a serial; *absent* (the server answered,
but not with the zone's SOA: REFUSED, NXDOMAIN, ...); *no answer yet* (every try timed
out, or ``max_time`` ran out first).  A server that answers nothing at all is
*unreachable*.  Queries are built with dnspython once per zone (the message id is
patched per socket; a TSIG-signed query is built per send); answers are read by a small
wire parser that looks only at the header and the answer section.
"""
from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig

from designate_dr.ops.pools import Address

_SOA = 6
_IDS = 65536
_RCVBUF = 4 * 1024 * 1024
MIN_TIMEOUT = 0.2
MAX_TIMEOUT = 8.0
NO_ANSWER = "no answer"


@dataclass
class ServerAnswers:
    """What one server said: serials of the zones it serves, why the others are absent,
    which zones got no answer (yet), and how the exchange went."""

    address: Address
    serials: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # absent: the server's reason
    unanswered: set[str] = field(default_factory=set)  # no answer within the tries / max_time
    answered: int = 0
    error: str | None = None
    sent: int = 0
    retried: int = 0
    srtt: float | None = None  # smoothed round-trip time, seconds
    window: float = 0.0  # queries in flight at the end

    @property
    def reachable(self) -> bool:
        return self.answered > 0


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def parse_soa_answer(wire: bytes, question_length: int) -> tuple[int | None, str]:
    """(serial, "") for an authoritative SOA answer, else (None, reason)."""
    flags, qdcount, ancount = struct.unpack_from("!HHH", wire, 2)
    rcode = flags & 0x000F
    if rcode != 0:
        return None, dns.rcode.to_text(dns.rcode.Rcode(rcode))
    if flags & dns.flags.TC:
        return None, "truncated"
    if not flags & dns.flags.AA:
        return None, "not authoritative"
    offset = 12 + question_length if qdcount == 1 else _skip_questions(wire, qdcount)
    for _ in range(ancount):
        offset = _skip_name(wire, offset)
        rtype, _rclass, _ttl, rdlength = struct.unpack_from("!HHIH", wire, offset)
        offset += 10
        if rtype == _SOA:
            pos = _skip_name(wire, _skip_name(wire, offset))
            return struct.unpack_from("!I", wire, pos)[0], ""
        offset += rdlength
    return None, "no SOA"


def _skip_questions(wire: bytes, count: int) -> int:
    offset = 12
    for _ in range(count):
        offset = _skip_name(wire, offset) + 4
    return offset


def soa_query_wire(zone: str) -> bytes:
    """An authoritative (no RD) SOA query for ``zone`` with message id 0."""
    query = dns.message.make_query(dns.name.from_text(zone), dns.rdatatype.SOA)
    query.flags = 0
    query.id = 0
    return query.to_wire()


def signed_query_wire(zone: str, qid: int, keyring: dns.tsig.Key) -> bytes:
    """``soa_query_wire`` signed with ``keyring`` (TSIG; a fresh time each send)."""
    query = dns.message.make_query(dns.name.from_text(zone), dns.rdatatype.SOA)
    query.flags = 0
    query.id = qid
    query.use_tsig(keyring)
    return query.to_wire()


class _Flow:
    """Congestion state of one server: window and round-trip times (shared by its sockets)."""

    def __init__(self, answers: ServerAnswers, timeout: float, window: int) -> None:
        self.answers = answers
        self.max_window = max(1, window)
        self.cwnd = float(min(8, self.max_window))
        self.rto = timeout
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.inflight = 0

    def sample(self, rtt: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(MAX_TIMEOUT, max(MIN_TIMEOUT, self.srtt + 4 * self.rttvar))
        self.cwnd = min(self.max_window, self.cwnd + 1.0 / max(1.0, self.cwnd) * 2)

    def loss(self) -> None:
        self.cwnd = max(1.0, self.cwnd / 2)


class _Channel:
    """One UDP socket to one server, for one slice of at most 65,536 zones."""

    def __init__(self, flow: _Flow, family: int, sockaddr: tuple, zones: list[str],
                 wires: list[bytes], qlens: list[int], first: int, keyring: dns.tsig.Key | None) -> None:
        self.flow = flow
        self.answers = flow.answers
        self.zones = zones
        self.wires = wires
        self.qlens = qlens
        self.keyring = keyring
        self.first = first  # index of this slice's zone 0 in the whole list
        self.count = min(_IDS, len(zones) - first)
        self.queue: deque[int] = deque(range(self.count))
        self.inflight: OrderedDict[int, float] = OrderedDict()  # id -> deadline, in send order
        self.sent_at: dict[int, float] = {}
        self.tries: dict[int, int] = {}
        self.finished_ids: set[int] = set()
        self.done = 0
        self.dead = False
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        except OSError:
            pass
        self.sock.connect(sockaddr)

    @property
    def finished(self) -> bool:
        return self.dead or self.done >= self.count

    def zone(self, qid: int) -> str:
        return self.zones[self.first + qid]

    def finish(self, qid: int) -> None:
        if qid in self.inflight:
            del self.inflight[qid]
            self.flow.inflight -= 1
        self.finished_ids.add(qid)
        self.done += 1

    def give_up(self, reason: str) -> None:
        """Stop asking: every zone not answered yet is absent for ``reason`` (unreachable server)."""
        self.dead = True
        for qid in list(self.inflight) + list(self.queue):
            zone = self.zone(qid)
            if zone not in self.answers.serials:
                self.answers.missing.setdefault(zone, reason)
        self.flow.inflight -= len(self.inflight)
        self.inflight.clear()
        self.queue.clear()
        self.done = self.count

    def out_of_time(self) -> None:
        """``max_time`` is over: what has no answer yet stays so."""
        self.dead = True
        for qid in list(self.inflight) + list(self.queue):
            if qid not in self.finished_ids:
                self.answers.unanswered.add(self.zone(qid))
        self.flow.inflight -= len(self.inflight)
        self.inflight.clear()
        self.queue.clear()
        self.done = self.count


Keyrings = Mapping[Address, dns.tsig.Key]


@dataclass(frozen=True)
class Patience:
    """How long and how hard to ask (the ``--timeout/--retries/--window/--max-time`` options)."""

    timeout: float = 1.0
    retries: int = 3
    window: int = 256
    max_time: float | None = None

    def kwargs(self, max_time: float | None = None) -> dict:
        return {"timeout": self.timeout, "retries": self.retries, "window": self.window,
                "max_time": self.max_time if max_time is None else max_time}


def query_serials(servers: list[Address], zones: list[str], *, timeout: float = 1.0, retries: int = 3,
                  window: int = 256, max_time: float | None = None, keyrings: Keyrings | None = None,
                  only: Mapping[Address, list[str]] | None = None) -> dict[Address, ServerAnswers]:
    """Ask every server in ``servers`` for the SOA serial of every zone in ``zones``
    (a server in ``only``: of its zones there instead).

    :param timeout: seconds to wait for a first answer before asking again; later
        waits follow each server's round-trip times (see the module docstring).
    :param retries: how many times a query is sent again after a timeout.
    :param window: the most queries in flight to one server.
    :param max_time: stop after this many seconds; zones without an answer by then
        are *no answer yet* (``ServerAnswers.unanswered``).
    :param keyrings: a TSIG key per server: its queries are signed with it.

    A server that answers nothing (ICMP port unreachable, or its first queries time
    out on every try) is given up: every zone is absent with reason ``unreachable``.
    """
    started = time.monotonic()
    wire_of: dict[str, bytes] = {}

    def batch(zone_list: list[str]) -> tuple[list[str], list[bytes], list[int]]:
        names = [zone if zone.endswith(".") else zone + "." for zone in zone_list]
        for name in names:
            if name not in wire_of:
                wire_of[name] = soa_query_wire(name)
        wires = [wire_of[name] for name in names]
        return names, wires, [len(w) - 12 for w in wires]

    everything = batch(zones)
    results: dict[Address, ServerAnswers] = {}
    channels: list[_Channel] = []
    selector = selectors.DefaultSelector()
    try:
        for address in servers:
            if address in results:
                continue
            answers = results[address] = ServerAnswers(address)
            names, wires, qlens = batch(only[address]) if only and address in only else everything
            try:
                family, _, _, _, sockaddr = socket.getaddrinfo(address.host, address.port,
                                                               type=socket.SOCK_DGRAM)[0]
            except OSError as exc:
                answers.error = f"cannot resolve {address.host}: {exc.strerror or exc}"
                answers.missing.update(dict.fromkeys(names, "unreachable"))
                continue
            flow = _Flow(answers, timeout, window)
            keyring = (keyrings or {}).get(address)
            for first in range(0, len(names), _IDS):
                channel = _Channel(flow, family, sockaddr, names, wires, qlens, first, keyring)
                channels.append(channel)
                selector.register(channel.sock, selectors.EVENT_READ, channel)
        deadline = None if max_time is None else started + max_time
        _run(selector, channels, retries, deadline)
    finally:
        for channel in channels:
            selector.unregister(channel.sock)
            channel.sock.close()
            channel.answers.window = channel.flow.cwnd
            channel.answers.srtt = channel.flow.srtt
        selector.close()
    return results


def _run(selector: selectors.BaseSelector, channels: list[_Channel], retries: int,
         deadline: float | None) -> None:
    active = [c for c in channels if not c.finished]
    while active:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            for channel in active:
                channel.out_of_time()
            return
        for channel in active:
            _send(channel, now)
        wait = min((next(iter(c.inflight.values())) for c in active if c.inflight), default=now + 0.05) - now
        if deadline is not None:
            wait = min(wait, deadline - now)
        for key, _ in selector.select(max(0.0, min(wait, 0.2))):
            _receive(key.data)
        now = time.monotonic()
        for channel in active:
            _expire(channel, now, retries)
        active = [c for c in active if not c.finished]


def _send(channel: _Channel, now: float) -> None:
    flow = channel.flow
    while channel.queue and flow.inflight < int(flow.cwnd) and not channel.dead:
        qid = channel.queue[0]
        if qid in channel.finished_ids:  # a late answer to an earlier try came meanwhile
            channel.queue.popleft()
            continue
        if channel.keyring is not None:
            wire = signed_query_wire(channel.zone(qid), qid, channel.keyring)
        else:
            wire = struct.pack("!H", qid) + channel.wires[channel.first + qid][2:]
        try:
            channel.sock.send(wire)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            _refused(channel)
            return
        except OSError as exc:
            channel.answers.error = exc.strerror or str(exc)
            channel.give_up("unreachable")
            return
        channel.queue.popleft()
        tries = channel.tries.get(qid, 0)
        channel.tries[qid] = tries + 1
        channel.answers.sent += 1
        channel.answers.retried += tries > 0
        channel.sent_at[qid] = now
        # back off on a server that answers; one that never did is given up after tries x timeout
        backoff = 2 ** tries if channel.answers.answered else 1
        channel.inflight[qid] = now + min(MAX_TIMEOUT, flow.rto * backoff)
        flow.inflight += 1


def _refused(channel: _Channel) -> None:
    if channel.answers.answered == 0:
        channel.answers.error = "connection refused (nothing listening)"
        channel.give_up("unreachable")


def _receive(channel: _Channel) -> None:
    answers = channel.answers
    while True:
        try:
            wire = channel.sock.recv(65535)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            _refused(channel)
            return
        except OSError as exc:
            if exc.errno in (errno.EINTR, errno.EAGAIN):
                continue
            return
        if len(wire) < 12:
            continue
        qid = struct.unpack_from("!H", wire)[0]
        if qid >= channel.count or qid in channel.finished_ids or qid not in channel.tries:
            continue  # a duplicate answer, or a stranger
        index = channel.first + qid
        sent = channel.wires[index]
        qlen = channel.qlens[index]
        if wire[12:12 + qlen].lower() != sent[12:].lower():
            continue
        if qid in channel.inflight and channel.tries[qid] == 1:  # Karn: no RTT from retried queries
            channel.flow.sample(time.monotonic() - channel.sent_at[qid])
        channel.finish(qid)
        answers.answered += 1
        zone = channel.zone(qid)
        try:
            serial, reason = parse_soa_answer(wire, qlen)
        except (struct.error, IndexError):
            serial, reason = None, "malformed answer"
        if serial is None:
            answers.missing[zone] = reason
        else:
            answers.serials[zone] = serial


def _expire(channel: _Channel, now: float, retries: int) -> None:
    lost = False
    while channel.inflight and not channel.dead:
        qid, deadline = next(iter(channel.inflight.items()))
        if deadline > now:
            break
        del channel.inflight[qid]
        channel.flow.inflight -= 1
        lost = True
        if channel.tries[qid] <= retries:
            channel.queue.appendleft(qid)
            continue
        if channel.answers.answered == 0:
            channel.answers.error = f"no answer in {retries + 1} tries"
            channel.give_up("unreachable")
            return
        channel.finished_ids.add(qid)
        channel.done += 1
        channel.answers.unanswered.add(channel.zone(qid))
    if lost:
        channel.flow.loss()

