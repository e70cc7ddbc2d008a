"""The two-party transport: raw bytes over one TCP connection (or a socketpair in tests).

P0 (the model owner) listens, P1 (the client) connects; after a handshake the stream carries
only payload bytes, no framing: both parties know every message's size from the protocol.
An exchange is symmetric and full duplex: each side sends its packed share while it receives the
peer's, with non-blocking I/O on one thread (SIGMA's `exchangeShares` sends on a second thread).
Counters go to `Transport.stats` (see stats.py); the rules are in docs/transport.md.

With a `TLSConfig` (tls.py) the socket is wrapped in TLS 1.3 with mutual authentication right after
connect/accept, before the handshake; the counters count application bytes either way.

A Transport is used by one thread at a time.  Every blocking call fails with `PeerError` after
`timeout` seconds without progress (no byte moving either way), and a transport that failed once
refuses further calls, since the two byte streams are no longer in step.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping

import torch

from suf.core.checks import check_party
from suf.core.errors import HandshakeError, PeerError
from suf.net.stats import Stats
from suf.net.tls import PLAINTEXT_HINT, TLSConfig, tls_reason
from suf.core.ring import pack, unpack

PROTOCOL = "suf.net"
AUTH = "hmac-sha256"  # the hello's "auth" when the parties prove a shared secret
TRANSPORT_FIELDS = ("protocol", "version", "party", "auth", "nonce")
VERSION = 1
MAGIC = b"SUFN"
DEFAULT_TIMEOUT = 60.0
MAX_HELLO_BYTES = 1 << 16
_RETRY_S = 0.05  # pause between connection attempts
LINGER_S = 1.0  # a party that refuses the TLS handshake waits this long for the peer to read why
_TLS_RECORD = (b"\x15\x03", b"\x16\x03")  # a TLS alert or handshake record's first bytes


class UnprovenPeer(HandshakeError):
    """A connection whose peer failed before proving the dealing's secret (a probe, a stranger,
    garbage): `Transport.listen` closes it and listens on for the real peer."""


class Transport:
    """One party's end of the connection; build it with `listen`, `connect` or `local_pair`."""

    def __init__(self, sock: socket.socket, party: int, timeout: float = DEFAULT_TIMEOUT):
        check_party(party)
        self.party = party
        self.timeout = timeout  # seconds a blocking call may go without progress
        self.stats = Stats()
        self.peer_hello: dict | None = None
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_READ)
        self._failed: str | None = None
        self._pinned: dict[str, torch.Tensor] = {}
        self._deadline: float | None = None  # the handshake's end, however slow the peer
        self._proven = False  # the peer proved the dealing's secret
        self._copy_back = None  # CUDA event: the last copy out of the pinned "in" buffer
        self.tls: dict | None = None  # {"version", "cipher"} once a TLS handshake succeeded

    @property
    def timeout(self) -> float:
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        _check_timeout(value)
        self._timeout = float(value)

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def listen(cls, host: str, port: int, party: int = 0, hello: Mapping | None = None,
               timeout: float = DEFAULT_TIMEOUT, tls: TLSConfig | None = None,
               secret: bytes | None = None) -> "Transport":
        """Wait up to `timeout` s for the peer to connect on host:port, then (with `tls`) the TLS
        handshake as the server, then shake hands (with `secret`: the peer must prove it holds
        the same secret, see `_authenticate`)."""
        record = _hello_record(party, hello, secret)
        _check_timeout(timeout)
        ctx = tls.context(party) if tls is not None else None
        deadline = time.monotonic() + timeout
        refused: list[str] = []
        with socket.create_server((host, port)) as server:
            while True:
                server.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    sock, addr = server.accept()
                except socket.timeout:
                    why = (f"; refused {len(refused)} connection(s) that did not prove the "
                           f"dealing's secret, the last: {refused[-1]}" if refused else "")
                    raise PeerError(f"no peer connected to {host}:{port} within {timeout:g} s"
                                    f"{why}") from None
                try:
                    return cls._open(sock, record, timeout, ctx, secret, deadline)
                except UnprovenPeer as e:  # a probe or a stranger: listen on for the peer
                    refused.append(f"{addr[0]}: {e}")

    @classmethod
    def connect(cls, host: str, port: int, party: int = 1, hello: Mapping | None = None,
                timeout: float = DEFAULT_TIMEOUT, tls: TLSConfig | None = None,
                secret: bytes | None = None) -> "Transport":
        """Connect to host:port, retrying until `timeout` s (the peer may not listen yet), then
        (with `tls`) the TLS handshake as the client, then shake hands (and prove `secret`)."""
        record = _hello_record(party, hello, secret)
        _check_timeout(timeout)
        ctx = tls.context(party) if tls is not None else None
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(
                    (host, port), timeout=max(deadline - time.monotonic(), _RETRY_S))
                break
            except OSError as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"could not connect to {host}:{port} within {timeout:g} s "
                                    f"(last error: {e})") from e
                time.sleep(min(_RETRY_S, left))
        return cls._open(sock, record, timeout, ctx, secret)

    @classmethod
    def _open(cls, sock: socket.socket, record: dict, timeout: float,
              ctx: ssl.SSLContext | None = None, secret: bytes | None = None,
              deadline: float | None = None) -> "Transport":
        """The TLS and suf handshakes on a new connection; with a secret, UnprovenPeer (a
        HandshakeError) while the peer has not proved it, and every handshake step ends by
        `deadline` (default: `timeout` s from now) however slowly the peer drips bytes."""
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=record["party"] == 0,
                                   do_handshake_on_connect=False)
        t = cls(sock, record["party"], timeout)
        t._deadline = time.monotonic() + timeout if deadline is None else deadline
        try:
            if ctx is not None:
                t._tls_handshake()
            try:
                t._handshake(record, secret)
            except (HandshakeError, PeerError) as e:
                if secret is not None and not t._proven and not isinstance(e, UnprovenPeer):
                    raise UnprovenPeer(str(e)) from e
                raise
            t._deadline = None
        except BaseException:
            if ctx is not None:
                t._linger()
            t.close()
            raise
        return t

    def _tls_handshake(self) -> None:
        """The TLS handshake on the non-blocking socket; HandshakeError on a TLS failure,
        PeerError when the peer stalls or goes away.  Its time counts as comm time in the scope
        "handshake" (phase setup); its bytes are TLS's own and are not counted."""
        sock, sel = self._sock, self._sel
        start = last = time.monotonic()
        while True:
            try:
                sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                events = selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                events = selectors.EVENT_WRITE
            except ssl.SSLError as e:
                self._failed = "TLS handshake failed"
                raise HandshakeError(f"TLS handshake: {tls_reason(e)}") from None
            except OSError as e:
                self._failed = "TLS handshake failed"
                raise PeerError(f"TLS handshake: the connection to the peer broke ({e}); "
                                f"if the peer refused it, see its error") from None
            sel.modify(sock, events)
            wait = self.timeout - (time.monotonic() - last)
            if wait <= 0 or not sel.select(wait):
                self._failed = "TLS handshake stalled"
                raise PeerError(f"TLS handshake: no progress for {self.timeout:g} s, the peer "
                                f"stalled")
            last = time.monotonic()
        sel.modify(sock, selectors.EVENT_READ)
        self.tls = {"version": sock.version(), "cipher": sock.cipher()[0]}
        with self.stats.scope(op="handshake", phase="setup"):
            self.stats.record(comm_s=time.monotonic() - start)

    def _linger(self) -> None:
        """After a refused TLS handshake: stop sending and read until the peer closes (at most
        LINGER_S), so that the TLS alert reaches it instead of a reset that would drop it."""
        sock = self._sock
        if sock is None:
            return
        try:
            raw = socket.socket(fileno=sock.fileno())  # the TCP socket under the TLS layer
            try:
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(LINGER_S)
                deadline = time.monotonic() + LINGER_S
                while time.monotonic() < deadline and raw.recv(1 << 16):
                    pass
            finally:
                raw.detach()
        except OSError:
            pass

    def _handshake(self, record: dict, secret: bytes | None = None) -> None:
        """Swap hello records (magic, u32 length, JSON) and refuse any difference; with a secret
        (the hello then says "auth"), each party then proves it holds it (`_authenticate`)."""
        body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        with self.stats.scope(op="handshake", phase="setup"):
            head = bytearray(8)
            try:
                dt = self._io(memoryview(MAGIC + struct.pack("<I", len(body))), memoryview(head),
                              "handshake header")
            except PeerError as e:
                self._tls_mismatch(head, e)
                raise
            self.stats.record(sent=8, recv=8, exchanges=1, comm_s=dt)
            if head[:2] in _TLS_RECORD and self.tls is None:
                raise HandshakeError(f"the peer speaks TLS and this party does not: "
                                     f"{PLAINTEXT_HINT}")
            if head[:4] != MAGIC:
                raise HandshakeError(f"the peer is not a suf transport: it sent {bytes(head)!r}, "
                                     f"expected the magic {MAGIC!r}")
            (size,) = struct.unpack("<I", head[4:])
            if size > MAX_HELLO_BYTES:
                raise HandshakeError(f"the peer's hello record has {size} bytes, more than "
                                     f"{MAX_HELLO_BYTES}")
            peer_body = bytearray(size)
            try:
                dt = self._io(memoryview(body), memoryview(peer_body), "handshake record")
            except PeerError as e:
                self._tls_mismatch(b"", e)
                raise
            self.stats.record(sent=len(body), recv=size, exchanges=1, comm_s=dt)
        try:
            peer = json.loads(peer_body)
        except ValueError:
            peer = None
        except RecursionError:  # json's C decoder gives up on deep nesting (issue 18)
            raise HandshakeError("the peer's hello record is nested too deeply") from None
        if not isinstance(peer, dict):
            raise HandshakeError("the peer's hello record is not a JSON object")
        _compare_hello(record, peer)  # public fields: a difference is named to both sides
        if secret is not None:
            self._authenticate(secret, body, bytes(peer_body))
            self._proven = True
        self.peer_hello = peer

    def _authenticate(self, secret: bytes, ours: bytes, theirs: bytes) -> None:
        """Each party sends HMAC-SHA256(secret, its party id, its hello, the peer's hello) and
        checks the peer's.  The hellos carry fresh random nonces, so a recorded proof is worth
        nothing in another session; a peer without the dealing's secret (a stranger who sent the
        right public hello) is refused before any data is sent."""
        me, peer = self.party, 1 - self.party
        mine = _proof(secret, me, ours, theirs)
        got = bytearray(len(mine))
        with self.stats.scope(op="handshake", phase="setup"):
            dt = self._io(memoryview(mine), memoryview(got), "handshake proof")
            self.stats.record(sent=len(mine), recv=len(got), exchanges=1, comm_s=dt)
        if not hmac.compare_digest(bytes(got), _proof(secret, peer, theirs, ours)):
            self._failed = "the peer's proof was wrong"
            raise HandshakeError("handshake: the peer could not prove it holds this dealing's "
                                 "keys (wrong proof of the dealing's secret)")

    def _tls_mismatch(self, head: bytes, e: PeerError) -> None:
        """A handshake that failed because one side speaks TLS and the other does not, or
        because the peer refused this party's certificate: raise a HandshakeError saying so."""
        if isinstance(e.__cause__, ssl.SSLError):
            raise HandshakeError(f"handshake: {tls_reason(e.__cause__)}") from None
        if self.tls is None and bytes(head[:2]) in _TLS_RECORD:
            raise HandshakeError(f"the peer speaks TLS and this party does not: "
                                 f"{PLAINTEXT_HINT}") from None
        if self.tls is None and "closed the connection" in str(e):
            raise PeerError(f"{e}; if the peer uses TLS: {PLAINTEXT_HINT}") from None

    # -- data ------------------------------------------------------------------------------------
    def exchange(self, buf: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Send `buf` while receiving the peer's buffer of the same size; one exchange.

        `buf` is a 1-D torch.uint8 tensor on any device; the peer's bytes come back on that
        device (CUDA data moves through pinned host buffers; the copy back is queued on the
        current stream, not waited for), into `out` when given (a uint8 tensor of buf's size on
        buf's device).  An empty exchange moves nothing and is not counted.
        """
        _check_buffer(buf, "exchange")
        n = buf.numel()
        if out is not None and (not isinstance(out, torch.Tensor) or out.dtype != torch.uint8
                                or out.shape != buf.shape or out.device != buf.device):
            raise ValueError(f"exchange: out must be a uint8 tensor of shape {tuple(buf.shape)} "
                             f"on {buf.device}")
        if n == 0:
            return torch.empty(0, dtype=torch.uint8, device=buf.device) if out is None else out
        host_out = self._host(buf, "out")
        # host bytes are received in place; device bytes through the pinned "in" buffer
        inp = out if out is not None and buf.device.type == "cpu" else \
            self._host_empty(n, buf.device, "in")
        dt = self._io(_view(host_out), _view(inp), f"exchange of {n} bytes")
        self.stats.record(sent=n, recv=n, exchanges=1, comm_s=dt)
        return self._to_device(inp, buf.device, out)

    def exchange_values(self, x: torch.Tensor, bits: int, type_bytes: int = 8) -> torch.Tensor:
        """Exchange int64 ring elements packed by SIGMA's rule (`suf.core.ring.pack`).

        Returns the peer's values, unpacked to x's shape and device, in [0, 2^bits).
        """
        if not isinstance(x, torch.Tensor) or x.dtype != torch.int64:
            raise TypeError(f"exchange_values needs a torch.int64 tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        peer = self.exchange(pack(x, bits, type_bytes))
        return unpack(peer, bits, x.numel(), type_bytes).reshape(x.shape)

    def send(self, buf: torch.Tensor) -> None:
        """One-way send (setup steps); counts bytes sent, no exchange (see docs/transport.md)."""
        _check_buffer(buf, "send")
        n = buf.numel()
        if n == 0:
            return
        dt = self._io(_view(self._host(buf, "out")), memoryview(b""), f"send of {n} bytes")
        self.stats.record(sent=n, comm_s=dt)

    def recv(self, nbytes: int, device: str | torch.device = "cpu") -> torch.Tensor:
        """One-way receive of exactly `nbytes` bytes; counts them and one exchange."""
        if not isinstance(nbytes, int) or isinstance(nbytes, bool):
            raise TypeError(f"recv needs an int byte count, got {type(nbytes).__name__}")
        if nbytes < 0:
            raise ValueError(f"recv needs a byte count >= 0, got {nbytes}")
        device = torch.device(device)
        if nbytes == 0:
            return torch.empty(0, dtype=torch.uint8, device=device)
        inp = self._host_empty(nbytes, device, "in")
        dt = self._io(memoryview(b""), _view(inp), f"receive of {nbytes} bytes")
        self.stats.record(recv=nbytes, exchanges=1, comm_s=dt)
        return self._to_device(inp, device)

    def sync(self) -> None:
        """A one-byte round trip (both send 0x01, both receive it); counted as a sync."""
        got = bytearray(1)
        dt = self._io(memoryview(b"\x01"), memoryview(got), "sync")
        if got != b"\x01":
            self._failed = f"sync received {bytes(got)!r}"
            raise PeerError(f"sync in {self.stats.where()}: the peer sent {bytes(got)!r} instead "
                            f"of the sync byte 0x01; the parties are out of step")
        self.stats.record(sent=1, recv=1, syncs=1, comm_s=dt)

    # -- plumbing --------------------------------------------------------------------------------
    def _io(self, out: memoryview, inp: memoryview, what: str) -> float:
        """Send all of `out` while filling all of `inp`; returns the seconds it took."""
        if self._sock is None:
            raise PeerError(f"{what}: the transport is closed")
        if self._failed is not None:
            raise PeerError(f"{what}: the transport failed earlier ({self._failed})")
        sock, sel = self._sock, self._sel
        sent = got = 0
        start = last = time.monotonic()
        watching = sel.get_key(sock).events
        tls = self.tls is not None

        def error(reason: str) -> PeerError:
            self._failed = reason
            return PeerError(f"{what} in {self.stats.where()}: {reason} (sent {sent} of {len(out)} "
                             f"bytes, received {got} of {len(inp)} expected)")

        while sent < len(out) or got < len(inp):
            wait = self.timeout - (time.monotonic() - last)
            if wait <= 0:
                raise error(f"no progress for {self.timeout:g} s, the peer stalled")
            if self._deadline is not None:
                if time.monotonic() >= self._deadline:
                    raise error("the handshake did not end within the timeout, the peer is too "
                                "slow")
                wait = min(wait, self._deadline - time.monotonic())
            wanted = ((selectors.EVENT_WRITE if sent < len(out) else 0)
                      | (selectors.EVENT_READ if got < len(inp) else 0))
            if wanted != watching:
                watching = wanted
                sel.modify(sock, wanted)
            for _, events in sel.select(wait):
                n = -1
                try:
                    if events & selectors.EVENT_WRITE:
                        sent += sock.send(out[sent:])
                        last = time.monotonic()
                    if events & selectors.EVENT_READ:
                        n = sock.recv_into(inp[got:])
                        got += n
                        last = time.monotonic()
                        # TLS decrypts whole records: bytes it holds are not seen by select
                        while n and got < len(inp) and tls and sock.pending():
                            n = sock.recv_into(inp[got:])
                            got += n
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
                        ssl.SSLWantWriteError):
                    continue
                except ssl.SSLError as e:
                    raise error(f"TLS failed ({tls_reason(e)})") from e
                except OSError as e:
                    raise error(f"the connection to the peer broke ({e})") from e
                if n == 0:
                    raise error("the peer closed the connection")
        return time.monotonic() - start

    def _host(self, buf: torch.Tensor, slot: str) -> torch.Tensor:
        """buf in contiguous host memory (pinned staging for device tensors)."""
        if buf.device.type == "cpu":
            return buf.contiguous()
        staged = self._staging(slot, buf.numel())
        staged.copy_(buf)
        return staged

    def _host_empty(self, n: int, device: torch.device, slot: str) -> torch.Tensor:
        if device.type == "cpu":
            return torch.empty(n, dtype=torch.uint8)
        if self._copy_back is not None:  # the last copy out of the pinned buffer has finished
            self._copy_back.synchronize()
            self._copy_back = None
        return self._staging(slot, n)

    def _to_device(self, inp: torch.Tensor, device: torch.device,
                   out: torch.Tensor | None = None) -> torch.Tensor:
        """The received host bytes on `device`: a CUDA copy is queued on the current stream and
        the pinned buffer is reused only after it ran (`_host_empty` waits for its event)."""
        if device.type == "cpu":
            return inp
        out = torch.empty(inp.numel(), dtype=torch.uint8, device=device) if out is None else out
        out.copy_(inp, non_blocking=True)
        self._copy_back = torch.cuda.Event()
        self._copy_back.record(torch.cuda.current_stream(device))
        return out

    def reserve(self, nbytes: int) -> None:
        """Allocate the pinned staging buffers for CUDA exchanges of up to `nbytes` now (setup),
        not inside the online clock."""
        for slot in ("out", "in"):
            self._staging(slot, nbytes)

    def _staging(self, slot: str, n: int) -> torch.Tensor:
        """A reusable pinned host buffer of at least n bytes (grown by doubling)."""
        buf = self._pinned.get(slot)
        if buf is None or buf.numel() < n:
            size = max(n, 2 * buf.numel()) if buf is not None else n
            buf = self._pinned[slot] = torch.empty(size, dtype=torch.uint8, pin_memory=True)
        return buf[:n]

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent); the peer's next blocking call raises PeerError."""
        if self._sock is not None:
            self._sel.close()
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_pair(hello: Mapping | None = None, timeout: float = DEFAULT_TIMEOUT,
               secret: bytes | None = None) -> tuple[Transport, Transport]:
    """(P0, P1) joined by a socketpair, for tests: drive each from its own thread.

    Same byte path and handshake as TCP (both parties use the same hello and secret).
    """
    records = [_hello_record(p, hello, secret) for p in (0, 1)]
    _check_timeout(timeout)
    socks = socket.socketpair()
    pair = (Transport(socks[0], 0, timeout), Transport(socks[1], 1, timeout))
    try:
        run_both(lambda p: pair[p]._handshake(records[p], secret), pair)
    except BaseException:
        for t in pair:
            t.close()
        raise
    return pair


def run_both(work: Callable[[int], object], transports) -> list:
    """Both parties in one process: work(1) on a helper thread, work(0) on this one.  A party
    that raises closes its transport, so the other fails at once instead of waiting for it; the
    first error is re-raised after both have ended.  Returns [work(0), work(1)]."""
    results: list = [None, None]
    errors: list[BaseException] = []

    def one(p: int) -> None:
        try:
            results[p] = work(p)
        except BaseException as e:  # noqa: BLE001 - re-raised below, after both sides finished
            errors.append(e)
            transports[p].close()

    helper = threading.Thread(target=one, args=(1,))
    helper.start()
    one(0)
    helper.join()
    if errors:
        raise errors[0]
    return results


# -- hello records -------------------------------------------------------------------------------
def _proof(secret: bytes, party: int, its_hello: bytes, other_hello: bytes) -> bytes:
    """What party `party` sends to prove it holds `secret` (lengths make the message unambiguous)."""
    msg = b"suf.net proof" + bytes([party]) + struct.pack("<II", len(its_hello), len(other_hello))
    return hmac.new(secret, msg + its_hello + other_hello, hashlib.sha256).digest()


def _hello_record(party: int, hello: Mapping | None, secret: bytes | None = None) -> dict:
    """The JSON record a party sends: protocol, version, party id, the caller's fields, and with
    a secret "auth" (compared like the rest) and a fresh random "nonce" (not compared)."""
    check_party(party)
    if secret is not None and (not isinstance(secret, bytes) or len(secret) < 16):
        raise ValueError("secret must be bytes, at least 16 of them")
    hello = {} if hello is None else hello
    if not isinstance(hello, Mapping):
        raise TypeError(f"hello must be a mapping of str to JSON values, got {type(hello).__name__}")
    for key in hello:
        if not isinstance(key, str):
            raise TypeError(f"hello keys must be str, got {key!r}")
        if key in TRANSPORT_FIELDS:
            raise ValueError(f"hello field {key!r} is set by the transport itself")
    record = {"protocol": PROTOCOL, "version": VERSION, "party": party, **hello}
    if secret is not None:
        record.update(auth=AUTH, nonce=secrets.token_hex(16))
    try:
        size = len(json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"hello must hold only JSON values: {e}") from e
    if size > MAX_HELLO_BYTES:
        raise ValueError(f"hello record of {size} bytes exceeds {MAX_HELLO_BYTES}")
    # the record the peer will parse: tuples become lists, so compare like with like
    return json.loads(json.dumps(record))


def _compare_fields(ours: dict, peer: dict, keys, strict=TRANSPORT_FIELDS) -> None:
    """HandshakeError naming the first of `keys` whose values differ (for the transport's own
    fields, `strict`, also in JSON type: 1.0 and true are not 1)."""
    missing = object()
    for key in keys:
        a, b = ours.get(key, missing), peer.get(key, missing)
        if a != b or (key in strict and type(a) is not type(b)):
            show = lambda v: "(absent)" if v is missing else _shown(v)  # noqa: E731
            raise HandshakeError(f"handshake mismatch in field {key!r}: this party (P{ours['party']})"
                                 f" has {show(a)}, the peer has {show(b)}")


def _compare_hello(ours: dict, peer: dict) -> None:
    """Raise HandshakeError naming the first field that differs (party ids must differ): the
    caller's fields in the order of this party's hello, then those only the peer has."""
    fixed = set(TRANSPORT_FIELDS)
    _compare_fields(ours, peer, ("protocol", "version", "auth"))
    party = peer.get("party")
    if type(party) is int and party == ours["party"]:
        raise HandshakeError(f"handshake: both parties claim party id {ours['party']}")
    if type(party) is not int or party != 1 - ours["party"]:
        raise HandshakeError(f"handshake: the peer claims party id {_shown(party)}")
    _compare_fields(ours, peer, [k for k in ours if k not in fixed] +
                    sorted(set(peer) - set(ours) - fixed))


def _shown(value) -> str:
    """A peer's JSON value for an error message (clipped; json cannot re-encode one nested
    deeper than Python's recursion limit, which its C decoder accepts)."""
    try:
        return _clip(json.dumps(value))
    except RecursionError:
        return "(a value nested too deeply to show)"


def _clip(text: str, limit: int = 200) -> str:
    """A peer's value for an error message: at most `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# -- checks --------------------------------------------------------------------------------------
def _check_timeout(timeout) -> None:
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")


def _check_buffer(buf, what: str) -> None:
    if not isinstance(buf, torch.Tensor) or buf.dtype != torch.uint8:
        raise TypeError(f"{what} needs a torch.uint8 tensor, got "
                        f"{getattr(buf, 'dtype', type(buf).__name__)}")
    if buf.dim() != 1:
        raise ValueError(f"{what} needs a 1-D byte buffer, got shape {tuple(buf.shape)}")


def _view(t: torch.Tensor) -> memoryview:
    """A writable byte view of a contiguous CPU uint8 tensor (no copy)."""
    return memoryview(t.numpy()).cast("B")
