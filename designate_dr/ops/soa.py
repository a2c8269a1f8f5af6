"""Ask many nameservers for the SOA serial of many zones at once.

One non-blocking UDP socket per server (per 65,536 zones), a window of queries in
flight on each, all sockets served by one selector loop: no thread per query, so
10,000 zones x 3 servers is a matter of a second or two.  Queries are built with
dnspython once per zone (the message id is patched per socket); answers are read by
a small wire parser that looks only at the header and the answer section.
"""
from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from designate_dr.ops.pools import Address

_SOA = 6
_IDS = 65536
_RCVBUF = 4 * 1024 * 1024


@dataclass
class ServerAnswers:
    """What one server said: serials of the zones it serves, why the others are missing."""

    address: Address
    serials: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    answered: int = 0
    error: str | None = None

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


class _Channel:
    """One UDP socket to one server, for one slice of at most 65,536 zones."""

    def __init__(self, answers: ServerAnswers, family: int, sockaddr: tuple, zones: list[str],
                 wires: list[bytes], first: int) -> None:
        self.answers = answers
        self.zones = zones
        self.wires = wires
        self.first = first  # index of this slice's zone 0 in the whole list
        self.count = min(_IDS, len(zones) - first)
        self.queue: deque[int] = deque(range(self.count))
        self.inflight: OrderedDict[int, float] = OrderedDict()  # id -> deadline, in send order
        self.tries: dict[int, int] = {}
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

    def give_up(self, reason: str) -> None:
        """Stop asking: every zone not answered yet is recorded as missing for ``reason``."""
        self.dead = True
        for qid in list(self.inflight) + list(self.queue):
            zone = self.zones[self.first + qid]
            if zone not in self.answers.serials:
                self.answers.missing.setdefault(zone, reason)
        self.inflight.clear()
        self.queue.clear()
        self.done = self.count


def query_serials(servers: list[Address], zones: list[str], *, timeout: float = 1.0, retries: int = 2,
                  window: int = 100) -> dict[Address, ServerAnswers]:
    """Ask every server in ``servers`` for the SOA serial of every zone in ``zones``.

    :param timeout: seconds to wait for one answer before asking again.
    :param retries: how many times a query is sent again after a timeout.
    :param window: queries in flight per socket (more would overflow receive buffers).

    A server that answers nothing (ICMP port unreachable, or its first query times
    out on every try) is given up at once and every zone is missing with the reason.
    """
    names = [zone if zone.endswith(".") else zone + "." for zone in zones]
    wires = [soa_query_wire(zone) for zone in names]
    question_lengths = [len(w) - 12 for w in wires]
    results: dict[Address, ServerAnswers] = {}
    channels: list[_Channel] = []
    selector = selectors.DefaultSelector()
    try:
        for address in servers:
            answers = results.setdefault(address, ServerAnswers(address))
            try:
                family, _, _, _, sockaddr = socket.getaddrinfo(address.host, address.port,
                                                               type=socket.SOCK_DGRAM)[0]
            except OSError as exc:
                answers.error = f"cannot resolve {address.host}: {exc.strerror or exc}"
                answers.missing.update(dict.fromkeys(names, "unreachable"))
                continue
            for first in range(0, len(names), _IDS):
                channel = _Channel(answers, family, sockaddr, names, wires, first)
                channels.append(channel)
                selector.register(channel.sock, selectors.EVENT_READ, channel)
        _run(selector, channels, question_lengths, timeout, retries, window)
    finally:
        for channel in channels:
            selector.unregister(channel.sock)
            channel.sock.close()
        selector.close()
    return results


def _run(selector: selectors.BaseSelector, channels: list[_Channel], question_lengths: list[int],
         timeout: float, retries: int, window: int) -> None:
    active = [c for c in channels if not c.finished]
    while active:
        now = time.monotonic()
        for channel in active:
            _send(channel, now, timeout, window)
        wait = min((next(iter(c.inflight.values())) for c in active if c.inflight), default=now) - now
        for key, _ in selector.select(max(0.0, min(wait, 0.2))):
            _receive(key.data, question_lengths)
        now = time.monotonic()
        for channel in active:
            _expire(channel, now, retries)
        active = [c for c in active if not c.finished]


def _send(channel: _Channel, now: float, timeout: float, window: int) -> None:
    while channel.queue and len(channel.inflight) < window and not channel.dead:
        qid = channel.queue[0]
        wire = channel.wires[channel.first + qid]
        try:
            channel.sock.send(struct.pack("!H", qid) + wire[2:])
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
        channel.tries[qid] = channel.tries.get(qid, 0) + 1
        channel.inflight[qid] = now + timeout


def _refused(channel: _Channel) -> None:
    if channel.answers.answered == 0:
        channel.answers.error = "connection refused (nothing listening)"
        channel.give_up("unreachable")


def _receive(channel: _Channel, question_lengths: list[int]) -> None:
    answers = channel.answers
    while True:
        try:
            wire = channel.sock.recv(4096)
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
        if qid not in channel.inflight:
            continue  # an answer to a retry that already came back, or a stranger
        index = channel.first + qid
        sent = channel.wires[index]
        if wire[12:12 + question_lengths[index]].lower() != sent[12:].lower():
            continue
        del channel.inflight[qid]
        channel.done += 1
        answers.answered += 1
        zone = channel.zones[index]
        try:
            serial, reason = parse_soa_answer(wire, question_lengths[index])
        except (struct.error, IndexError):
            serial, reason = None, "malformed answer"
        if serial is None:
            answers.missing[zone] = reason
        else:
            answers.serials[zone] = serial


def _expire(channel: _Channel, now: float, retries: int) -> None:
    while channel.inflight and not channel.dead:
        qid, deadline = next(iter(channel.inflight.items()))
        if deadline > now:
            return
        del channel.inflight[qid]
        if channel.tries[qid] <= retries:
            channel.queue.appendleft(qid)
            continue
        if channel.answers.answered == 0:
            channel.answers.error = f"no answer in {retries + 1} tries"
            channel.give_up("unreachable")
            return
        channel.done += 1
        channel.answers.missing[channel.zones[channel.first + qid]] = "timeout"
