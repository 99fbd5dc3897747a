"""A fault-injecting TCP proxy between Redis clients and a real server.

:class:`RespProxy` forwards every connection to the server byte for byte,
counting the commands a client sends and the replies the server returns
(both in RESP), so a test can act on one exact request:

* :meth:`RespProxy.cut` -- after the client sent a write matching a rule,
  the server's replies to that write are swallowed and, once the last of
  them arrived (the server ran every command of it), both sides of the
  connection are closed: the client sees a connection error for a call the
  server executed (a lost reply). Optionally an outage follows, for a
  while or until :meth:`RespProxy.end_outage` (``outage=None``: the test
  says exactly when a retry gets through): new connections are refused and
  what clients send on the connections already open is held back (not
  forwarded) until the outage ends, so no call reaches the server.
* :meth:`RespProxy.hold` -- the replies to a write matching a rule are kept
  back until :meth:`RespProxy.release` (a slow reply);
  :meth:`RespProxy.hold_outstanding` does so for a write already sent (a
  wait blocked in the server).

A rule sees the commands of one client write (a pipeline is one write), each
as a list of its arguments (bytes). Used with real worker processes
(``tests/test_worker_lost_replies.py``); the worker connects to the proxy's
URL, the test itself talks to the server directly.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable

import redis

__all__ = [
    "RespProxy",
    "blocked_waits",
    "is_lease",
    "lease_without_wait",
    "wait_blocked",
    "waiter_lease",
]

Commands = list[list[bytes]]
Rule = Callable[[Commands], bool]


def is_lease(command: list[bytes]) -> bool:
    """True for an ``EVALSHA`` of the lease script (its keys include the
    queue's lease reply cache, ``P:{Q}:lreqs``)."""
    return (
        bool(command)
        and command[0].upper() == b"EVALSHA"
        and any(arg.endswith(b":lreqs") for arg in command[3:])
    )


def waiter_lease(commands: Commands) -> bool:
    """The waiter's write: a ``BLPOP`` with the lease pipelined behind it."""
    return any(c and c[0].upper() == b"BLPOP" for c in commands) and any(
        is_lease(c) for c in commands
    )


def lease_without_wait(commands: Commands) -> bool:
    """A write with a lease call and no ``BLPOP`` (the dispatcher's round
    trips, the waiter's recovery, a shutdown's reclaim)."""
    return not any(c and c[0].upper() == b"BLPOP" for c in commands) and any(
        is_lease(c) for c in commands
    )


def blocked_waits(server: redis.Redis) -> int:
    """Clients of ``server`` (a ``redis.Redis`` on the server itself, not
    the proxy) blocked in a ``BLPOP``: waits no wake marker has answered, so
    no reply of theirs is on the way. A wait that a marker left over from an
    earlier enqueue answers at once is outstanding at the proxy for a moment
    too (its reply in flight) but never blocked: only a wait also counted
    here is one a test can hold back and have answered by the job it
    enqueues next."""
    return sum(
        1 for c in server.client_list() if c.get("cmd") == "blpop" and "b" in c.get("flags", "")
    )


def wait_blocked(proxy: RespProxy, server: redis.Redis) -> bool:
    """The worker's wait (its one connection through ``proxy``) is sent and
    blocked in ``server`` (:func:`blocked_waits`): the next job enqueued is
    leased by the lease behind it, whose reply a rule or
    :meth:`RespProxy.hold_outstanding` then acts on."""
    return proxy.outstanding(waiter_lease) == 1 and blocked_waits(server) == 1


def _line(buf: bytes, pos: int) -> tuple[bytes, int] | None:
    end = buf.find(b"\r\n", pos)
    return None if end < 0 else (buf[pos:end], end + 2)


def _skip(buf: bytes, pos: int) -> int | None:
    """End of the RESP2/RESP3 value starting at ``pos``, or None if incomplete."""
    got = _line(buf, pos)
    if got is None:
        return None
    head, pos = got
    kind, rest = head[:1], head[1:]
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return pos
    if kind in (b"$", b"=", b"!"):
        size = int(rest)
        if size < 0:
            return pos
        return pos + size + 2 if len(buf) >= pos + size + 2 else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(rest)
        if kind in (b"%", b"|"):
            count *= 2
        for _ in range(max(count, 0)):
            end = _skip(buf, pos)
            if end is None:
                return None
            pos = end
        return pos
    raise ValueError(f"not RESP: {head[:20]!r}")


def _command(buf: bytes, pos: int) -> tuple[list[bytes], int] | None:
    """One client command (an array of bulk strings) at ``pos`` and its end."""
    got = _line(buf, pos)
    if got is None:
        return None
    head, pos = got
    if not head.startswith(b"*"):  # an inline command
        return head.split(), pos
    args = []
    for _ in range(int(head[1:])):
        got = _line(buf, pos)
        if got is None:
            return None
        size_line, pos = got
        size = int(size_line[1:])
        if len(buf) < pos + size + 2:
            return None
        args.append(buf[pos : pos + size])
        pos += size + 2
    return args, pos


class _Link:
    """One client connection and its server connection."""

    def __init__(self, proxy: RespProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = socket.create_connection(proxy.upstream)
        self.sent = 0  # commands forwarded
        self.answered = 0  # replies read from the server
        self.cut_from: int | None = None  # first reply to swallow (1-based)
        self.cut_to = 0  # close once this reply arrived
        self.hold_from: int | None = None
        self.held = b""
        self.last: Commands = []  # the client's last write
        self.lock = threading.Lock()
        self.closed = False
        for target in (self._from_client, self._from_server):
            threading.Thread(target=target, daemon=True).start()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.proxy.links.discard(self)

    def _from_client(self) -> None:
        buf = b""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                self.proxy.wait_reachable()  # an outage: nothing gets through
                buf += data
                commands: Commands = []
                pos = 0
                while (got := _command(buf, pos)) is not None:
                    command, pos = got
                    commands.append(command)
                buf = buf[pos:]
                if commands:
                    self.proxy.seen(self, commands)
                with self.lock:
                    self.sent += len(commands)
                    if commands:
                        self.last = commands
                self.server.sendall(data)
        except OSError:
            pass
        self.close()

    def _from_server(self) -> None:
        buf = b""
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                buf += data
                pos, out, cut = 0, b"", False
                while (end := _skip(buf, pos)) is not None:
                    reply = buf[pos:end]
                    pos = end
                    with self.lock:
                        self.answered += 1
                        n = self.answered
                        if self.cut_from is not None and n >= self.cut_from:
                            if n >= self.cut_to:
                                cut = True
                                break
                            continue  # swallowed
                        if self.hold_from is not None and n >= self.hold_from:
                            self.held += reply
                            self.proxy.note_held()
                            continue
                    out += reply
                buf = buf[pos:]
                if out:
                    self.client.sendall(out)
                if cut:
                    self.proxy.note_cut()
                    break
        except OSError:
            pass
        self.close()

    def release(self) -> None:
        with self.lock:
            held, self.held, self.hold_from = self.held, b"", None
            if held:
                with contextlib.suppress(OSError):
                    self.client.sendall(held)


class RespProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``host:port``.

    Args:
        host, port: the Redis server.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self.links: set[_Link] = set()
        self._lock = threading.Condition()
        self._rules: list[tuple[str, Rule, float | None]] = []  # (action, rule, outage s)
        self._refuse_until = 0.0
        self.cuts = 0  #: connections cut so far
        self.holding = 0  #: replies held back so far
        self.matched: list[Commands] = []  #: the writes acted on, in order
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """``redis://`` URL of the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self, rule: Rule, times: int = 1, outage: float | None = 0.0) -> None:
        """Lose the replies of the next ``times`` writes matching ``rule``:
        forward each, swallow its replies, close the connection once the last
        arrived; then an outage for ``outage`` seconds, or with
        ``outage=None`` until :meth:`end_outage`: new connections are
        refused, and writes on open connections wait to be forwarded until
        it ends."""
        with self._lock:
            self._rules.extend([("cut", rule, outage)] * times)

    def end_outage(self) -> None:
        """End any outage now: accept connections, forward held writes."""
        with self._lock:
            self._refuse_until = 0.0
            self._lock.notify_all()

    def wait_reachable(self) -> None:
        """Block the calling link thread while an outage lasts (or until the
        proxy is closed)."""
        with self._lock:
            while not self._stopped and (left := self._refuse_until - time.monotonic()) > 0:
                self._lock.wait(min(left, 0.05))

    def hold(self, rule: Rule) -> None:
        """Keep back the replies of the next write matching ``rule`` (and all
        later replies on its connection) until :meth:`release`."""
        with self._lock:
            self._rules.append(("hold", rule, 0.0))

    def outstanding(self, rule: Rule) -> int:
        """Connections whose last write matches ``rule`` and is not fully
        answered yet (e.g. a wait blocked in the server)."""
        count = 0
        for link in list(self.links):
            with link.lock:
                count += link.answered < link.sent and rule(link.last)
        return count

    def hold_outstanding(self, rule: Rule) -> int:
        """Keep back, until :meth:`release`, the replies not yet arrived of
        each connection whose last write matches ``rule`` (e.g. a wait
        already blocked in the server) and all later replies on it.
        Returns the number of connections."""
        count = 0
        for link in list(self.links):
            with link.lock:
                if link.answered < link.sent and rule(link.last) and link.hold_from is None:
                    link.hold_from = link.answered + 1
                    count += 1
        return count

    def release(self) -> None:
        """Send every held reply on and stop holding."""
        for link in list(self.links):
            link.release()

    def disarm(self) -> None:
        """Forget the rules not used yet."""
        with self._lock:
            self._rules.clear()

    def wait_for(self, what: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until ``what()`` (checked whenever a rule matches, a cut is
        made or a reply is held).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        with self._lock:
            if not self._lock.wait_for(what, timeout):
                raise TimeoutError("the proxy did not act in time")

    def seen(self, link: _Link, commands: Commands) -> None:
        """A client write of ``commands`` is about to be forwarded on ``link``."""
        with self._lock:
            hit = next((i for i, r in enumerate(self._rules) if r[1](commands)), None)
            if hit is None:
                return
            action, _rule, outage = self._rules.pop(hit)
            self.matched.append(commands)
            self._lock.notify_all()
        with link.lock:
            first, last = link.sent + 1, link.sent + len(commands)
            if action == "cut":
                link.cut_from, link.cut_to = first, last
            elif link.hold_from is None:
                link.hold_from = first
        if action == "cut" and outage is None:
            self._refuse_until = math.inf
        elif action == "cut" and outage:
            self._refuse_until = max(self._refuse_until, time.monotonic() + outage)

    def note_cut(self) -> None:
        with self._lock:
            self.cuts += 1
            self._lock.notify_all()

    def note_held(self) -> None:
        with self._lock:
            self.holding += 1
            self._lock.notify_all()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                client.close()  # the outage: the client sees a closed connection
                continue
            try:
                self.links.add(_Link(self, client))
            except OSError:
                client.close()

    def close(self) -> None:
        """Stop listening and close every connection."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._listener.close()
        for link in list(self.links):
            link.close()
