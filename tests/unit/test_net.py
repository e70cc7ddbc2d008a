import json
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

from suf.net import Counters, HandshakeError, PeerError, Stats, Transport, local_pair
from suf.core.ring import packed_size

HELLO = {"dealing_id": "d-1", "model_hash": "abc123", "shapes": [[128, 768]]}
SLACK = 1.5  # seconds allowed beyond a timeout for an error to surface


def both(f0, f1, join_s=30):
    """Run f0 here and f1 on a thread (the two parties); re-raise the first error."""
    out, errors = [None, None], []

    def run(i, f):
        try:
            out[i] = f()
        except BaseException as e:
            errors.append(e)

    th = threading.Thread(target=run, args=(1, f1))
    th.start()
    run(0, f0)
    th.join(join_s)
    assert not th.is_alive(), "the peer thread hung"
    if errors:
        raise errors[0]
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strip(counters):
    """Counters without the timing, which differs between the parties."""
    return {k: v for k, v in counters.items() if k != "comm_s"}


def rand_ring(shape, bits, gen):
    x = torch.randint(-2**63, 2**63 - 1, shape, dtype=torch.int64, generator=gen)
    return x if bits == 64 else x & ((1 << bits) - 1)


# -- exchanges over the in-process pair ----------------------------------------------------------
@pytest.mark.parametrize("bits,type_bytes", [(1, 8), (2, 8), (8, 1), (8, 8), (13, 2), (13, 8),
                                             (16, 2), (32, 4), (37, 8), (50, 8), (64, 8)])
def test_exchange_values_roundtrip_and_bytes(bits, type_bytes):
    gen = torch.Generator().manual_seed(bits * 10 + type_bytes)
    shapes = [(1,), (33,), (7, 45), (2, 3, 129)]
    xs = [[rand_ring(s, bits, gen) for s in shapes] for _ in range(2)]
    t0, t1 = local_pair(HELLO, timeout=10)
    with t0, t1:
        def party(t):
            return [t.exchange_values(x, bits, type_bytes) for x in xs[t.party]]
        got = both(lambda: party(t0), lambda: party(t1))
        for p in (0, 1):
            for mine, theirs in zip(got[p], xs[1 - p]):
                assert mine.shape == theirs.shape and mine.dtype == torch.int64
                assert torch.equal(mine, theirs)
        size = sum(packed_size(bits, x.numel(), type_bytes) for x in xs[0])
        for t in (t0, t1):
            online = t.stats.total("online")
            assert (online.bytes_sent, online.bytes_recv) == (size, size)
            assert (online.exchanges, online.syncs) == (len(shapes), 0)


def test_exchange_raw_bytes_sync_and_one_way_rule():
    t0, t1 = local_pair(timeout=10)
    a = torch.arange(1000, dtype=torch.int64).to(torch.uint8)
    b = torch.flip(a, (0,))
    with t0, t1:
        def p0():
            got = t0.exchange(a)
            t0.sync()
            t0.sync()
            t0.send(a[:300])
            return got, t0.exchange(a[:0])

        def p1():
            got = t1.exchange(b)
            t1.sync()
            t1.sync()
            return got, t1.recv(300)

        (g0, e0), (g1, r1) = both(p0, p1)
        assert torch.equal(g0, b) and torch.equal(g1, a) and torch.equal(r1, a[:300])
        assert e0.numel() == 0
        s0, s1 = t0.stats.total("online"), t1.stats.total("online")
        # the exchange counts once per side; syncs apart with their own bytes; a one-way
        # transfer counts its bytes on both sides and one exchange on the receiving side only
        assert s0 == Counters(1300, 1000, 1, 2, 2, 2, s0.comm_s)
        assert s1 == Counters(1000, 1300, 2, 2, 2, 2, s1.comm_s)
        # the handshake is in the setup phase: two exchanges (header, record) per side
        for t in (t0, t1):
            setup = t.stats.total("setup")
            assert setup.exchanges == 2 and setup.bytes_sent == setup.bytes_recv > 8
            assert t.stats.total().bytes_sent == setup.bytes_sent + t.stats.total("online").bytes_sent
            assert t.peer_hello["party"] == 1 - t.party


def test_exchange_into_a_given_buffer():
    t0, t1 = local_pair(timeout=10)
    a, b = torch.arange(64, dtype=torch.uint8), torch.arange(64, 128, dtype=torch.uint8)
    with t0, t1:
        outs = [torch.zeros(64, dtype=torch.uint8) for _ in (0, 1)]
        got = both(lambda: t0.exchange(a, out=outs[0]), lambda: t1.exchange(b, out=outs[1]))
        assert got[0] is outs[0] and torch.equal(outs[0], b) and torch.equal(outs[1], a)
        with pytest.raises(ValueError, match="out must be a uint8 tensor of shape"):
            t0.exchange(a, out=torch.zeros(63, dtype=torch.uint8))
    assert t0.stats.total().exchanges == 3  # the handshake's two, then one


def test_handshake_proves_the_shared_secret():
    secret = bytes(range(32))
    t0, t1 = local_pair({"job": "x"}, timeout=10, secret=secret)
    with t0, t1:
        for t in (t0, t1):
            assert t.peer_hello["auth"] == "hmac-sha256" and len(t.peer_hello["nonce"]) == 32
            setup = t.stats.total("setup")  # header, record, proof: three exchanges
            assert setup.exchanges == 3 and setup.bytes_sent == setup.bytes_recv
        assert t0.peer_hello["nonce"] != t1.peer_hello["nonce"]
        got = both(lambda: t0.exchange(torch.ones(4, dtype=torch.uint8)),
                   lambda: t1.exchange(torch.zeros(4, dtype=torch.uint8)))
        assert got[0].tolist() == [0] * 4


def test_handshake_refuses_a_peer_without_the_secret():
    """Both parties refuse a peer whose proof is wrong (another dealing's secret, or a stranger
    who copied the public hello), and a peer that does not authenticate at all."""
    socks = __import__("socket").socketpair()
    pair = (Transport(socks[0], 0, 10), Transport(socks[1], 1, 10))
    from suf.net.transport import _hello_record
    records = [_hello_record(p, {"job": "x"}, bytes([p]) * 32) for p in (0, 1)]
    errors = []

    def shake(p):
        try:
            pair[p]._handshake(records[p], bytes([p]) * 32)
        except HandshakeError as e:
            errors.append(str(e))
    both(lambda: shake(0), lambda: shake(1))
    assert errors == ["handshake: the peer could not prove it holds this dealing's keys (wrong "
                      "proof of the dealing's secret)"] * 2
    for t in pair:
        t.close()
    with pytest.raises(HandshakeError, match="field 'auth'"):
        socks = __import__("socket").socketpair()
        a, b = Transport(socks[0], 0, 10), Transport(socks[1], 1, 10)
        both(lambda: a._handshake(_hello_record(0, None, bytes(32)), bytes(32)),
             lambda: b._handshake(_hello_record(1, None)))


def test_listen_with_a_secret_outlasts_probes_strangers_and_drips():
    """P0 (listen with the dealing's secret) closes connections that do not prove the secret
    and listens on; a peer dripping bytes cannot hold a handshake past the timeout."""
    port, secret = free_port(), b"s" * 32
    out = {}

    def p0():
        out["t"] = Transport.listen("127.0.0.1", port, party=0, hello={"j": 1}, timeout=20,
                                    secret=secret)

    th = threading.Thread(target=p0)
    th.start()
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", port)):  # a probe that closes at once
        pass
    with pytest.raises(HandshakeError, match="could not prove"):  # a stranger
        Transport.connect("127.0.0.1", port, party=1, hello={"j": 1}, timeout=5,
                          secret=b"x" * 32)
    with pytest.raises(HandshakeError, match="field 'auth'"):  # a peer that does not prove
        Transport.connect("127.0.0.1", port, party=1, hello={"j": 1}, timeout=5)
    t1 = Transport.connect("127.0.0.1", port, party=1, hello={"j": 1}, timeout=5, secret=secret)
    th.join(10)
    with out["t"] as t0, t1:
        assert t0.peer_hello["party"] == 1 and t1.peer_hello["party"] == 0

    port = free_port()
    errors = []

    def p0_slow():
        try:
            Transport.listen("127.0.0.1", port, party=0, timeout=2, secret=secret)
        except PeerError as e:
            errors.append(str(e))

    th = threading.Thread(target=p0_slow)
    th.start()
    time.sleep(0.2)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:  # one byte every 0.5 s
        for b in b"SUFN\x10\x00\x00":
            try:
                s.sendall(bytes([b]))
            except OSError:
                break
            time.sleep(0.5)
    th.join(10)
    assert time.monotonic() - start < 4.5
    assert errors and "within 2 s" in errors[0] and "did not prove" in errors[0]


def test_following_replays_recorded_scopes():
    """A path recorded by one Stats (Stats.path) replayed on another (Stats.following) puts the
    transfers in the same scopes; scopes are entered once per visit, closed at the end."""
    rec, real = Stats(), Stats()
    paths = []
    with rec.scope(op="attn", layer=0):
        with rec.scope(op="attn.softmax"):
            paths.append(rec.path())
        paths.append(rec.path())
    with rec.scope(op="ffn", layer=0, phase="setup"):
        paths.append(rec.path())
    assert paths[0] == (("attn", 0, "online"), ("attn.softmax", None, "online"))
    with real.following() as go:
        for path, n in zip(paths + [paths[0]], (10, 20, 30, 40)):
            go(path)
            real.record(sent=n, exchanges=1)
        assert real.path() == paths[0]
    assert real.path() == ()
    scopes = {tuple(s["path"]): s for s in real.to_dict()["scopes"]}
    assert scopes[("layer 0 attn", "attn.softmax")]["own"]["bytes_sent"] == 10 + 40
    assert scopes[("layer 0 attn", "attn.softmax")]["entries"] == 2
    assert scopes[("layer 0 attn",)]["own"]["bytes_sent"] == 20
    assert scopes[("layer 0 attn",)]["entries"] == 2
    assert scopes[("layer 0 ffn",)]["phase"] == "setup"
    assert real.total("setup").bytes_sent == 30


def test_scope_attribution_and_rollup():
    t0, t1 = local_pair(timeout=10)
    with t0, t1:
        def party(t):
            x = torch.zeros(100, dtype=torch.int64)
            with t.stats.scope(phase="setup", op="weights"):
                t.exchange(torch.zeros(5000, dtype=torch.uint8))
            t.exchange_values(x, 50)  # unscoped: counted at the root
            for layer in range(2):
                with t.stats.scope(layer=layer):
                    with t.stats.scope(op="gelu"):
                        t.exchange_values(x, 50)
                        t.sync()
                        with t.stats.scope(op="lut"):
                            t.exchange_values(x, 2)
                    with t.stats.scope(op="gelu"):  # re-entering adds to the same scope
                        t.exchange_values(x, 13)
        both(lambda: party(t0), lambda: party(t1))
        st = t0.stats
        rep = st.to_dict()
        json.dumps(rep)
        b50, b13, b2 = (packed_size(b, 100) for b in (50, 13, 2))
        rows = {(tuple(r["path"]), r["phase"]): r for r in rep["scopes"]}
        gelu = rows[(("layer 1", "gelu"), "online")]
        assert gelu["layer"] == 1 and gelu["op"] == "gelu" and gelu["entries"] == 2 and gelu["depth"] == 2
        assert gelu["own"]["bytes_sent"] == b50 + b13 and gelu["own"]["exchanges"] == 2
        assert gelu["own"]["syncs"] == 1 and gelu["own"]["sync_bytes_sent"] == 1
        assert gelu["total"]["bytes_sent"] == b50 + b13 + b2 and gelu["total"]["exchanges"] == 3
        lut = rows[(("layer 1", "gelu", "lut"), "online")]
        assert lut["layer"] == 1 and lut["own"]["bytes_recv"] == b2
        layer = rows[(("layer 1",), "online")]
        assert layer["op"] is None and layer["own"]["exchanges"] == 0
        assert layer["total"] == gelu["total"] and layer["wall_s"] >= gelu["wall_s"] > 0
        assert rows[(("weights",), "setup")]["own"]["bytes_sent"] == 5000
        assert rep["unscoped"]["bytes_sent"] == b50 and rep["unscoped"]["exchanges"] == 1
        assert rep["phases"]["online"]["bytes_sent"] == b50 + 2 * (b50 + b13 + b2)
        assert rep["phases"]["online"]["exchanges"] == 7 and rep["phases"]["online"]["syncs"] == 2
        assert rep["phases"]["setup"]["exchanges"] == 3  # handshake (2) + weights
        assert rep["by_op"]["online"]["gelu"]["bytes_sent"] == 2 * (b50 + b13)
        assert rep["by_op"]["online"]["lut"]["exchanges"] == 2
        assert rep["by_op"]["online"]["-"]["bytes_sent"] == b50
        assert rep["total"]["bytes_sent"] == sum(p["bytes_sent"] for p in rep["phases"].values())
        text = st.render(title="P0")
        assert "layer 1" in text and "lut" in text and "total online" in text
        assert f"{rep['phases']['online']['bytes_sent']:,}" in text
        peer = t1.stats.to_dict()
        assert [strip(r["own"]) for r in peer["scopes"]] == [strip(r["own"]) for r in rep["scopes"]]


def test_stats_errors():
    st = Stats()
    with pytest.raises(ValueError, match="phase"):
        with st.scope(phase="offline"):
            pass
    with pytest.raises(TypeError, match="layer"):
        with st.scope(layer="3"):
            pass
    with pytest.raises(TypeError, match="op"):
        with st.scope(op=""):
            pass
    with st.scope(op="x", layer=2):
        assert st.where() == "online: layer 2 x"
    assert st.where() == "online: (no scope)"


def test_bad_input():
    t0, t1 = local_pair(timeout=10)
    with t0, t1:
        with pytest.raises(TypeError, match="uint8"):
            t0.exchange(torch.zeros(3, dtype=torch.int64))
        with pytest.raises(ValueError, match="1-D"):
            t0.exchange(torch.zeros(2, 2, dtype=torch.uint8))
        with pytest.raises(TypeError, match="int64"):
            t0.exchange_values(torch.zeros(3), 8)
        with pytest.raises(ValueError, match="fit"):
            t0.exchange_values(torch.zeros(3, dtype=torch.int64), 13, type_bytes=1)
        with pytest.raises(ValueError, match="byte count"):
            t0.recv(-1)
        with pytest.raises(TypeError, match="byte count"):
            t0.recv(2.0)
        with pytest.raises(ValueError, match="timeout"):
            t0.timeout = 0
        assert t0.stats.total().exchanges == 2  # nothing was counted by the refused calls
        both(t0.sync, t1.sync)  # still in step
        assert t0.stats.total().syncs == 1 and t0.stats.total().exchanges == 2
    with pytest.raises(PeerError, match="closed"):
        t0.sync()
    with pytest.raises(ValueError, match="party"):
        Transport.connect("127.0.0.1", 1, party=2)
    with pytest.raises(ValueError, match="set by the transport"):
        local_pair({"party": 1})
    with pytest.raises(TypeError, match="JSON"):
        local_pair({"x": object()})


@pytest.mark.cuda
def test_exchange_values_cuda():
    gen = torch.Generator().manual_seed(5)
    xs = [rand_ring((3, 1000), 50, gen).cuda() for _ in range(2)]
    t0, t1 = local_pair(timeout=10)
    with t0, t1:
        def party(t):
            return [t.exchange_values(xs[t.party], bits) for bits in (1, 13, 50)]
        got = both(lambda: party(t0), lambda: party(t1))
    for p in (0, 1):
        for bits, y in zip((1, 13, 50), got[p]):
            assert y.is_cuda and torch.equal(y, xs[1 - p] & ((1 << bits) - 1))
    assert t0.stats.total().bytes_sent == t1.stats.total().bytes_recv


@pytest.mark.cuda
def test_cuda_exchange_into_buffers_then_receive():
    """The copy back to the GPU is queued, not waited for: the pinned buffer it reads is reused
    by the next transfer only after it ran (a receive right after an exchange)."""
    n = 1 << 22
    a, b = (torch.full((n,), v, dtype=torch.uint8, device="cuda") for v in (3, 5))
    outs = [torch.zeros(n, dtype=torch.uint8, device="cuda") for _ in (0, 1)]
    t0, t1 = local_pair(timeout=20)
    with t0, t1:
        def p0():
            t0.exchange(a, out=outs[0])
            t0.send(torch.full((n,), 7, dtype=torch.uint8, device="cuda"))
            return t0.exchange(a)

        def p1():
            t1.exchange(b, out=outs[1])
            r = t1.recv(n, device="cuda")
            return r, t1.exchange(b)
        got = both(p0, p1)
    torch.cuda.synchronize()
    assert bool((outs[0] == 5).all()) and bool((outs[1] == 3).all())
    assert bool((got[1][0] == 7).all()) and bool((got[0] == 5).all()) and bool((got[1][1] == 3).all())


# -- TCP ------------------------------------------------------------------------------------------
def test_tcp_connect_retries_until_listener_appears():
    port = free_port()

    def client():
        return Transport.connect("127.0.0.1", port, hello=HELLO, timeout=10)

    def server():
        time.sleep(0.4)  # the client starts first and must retry
        return Transport.listen("127.0.0.1", port, hello=HELLO, timeout=10)

    t1, t0 = both(client, server)
    with t0, t1:
        got = both(lambda: t0.exchange_values(torch.arange(5), 8),
                   lambda: t1.exchange_values(torch.arange(5) + 1, 8))
        assert got[0].tolist() == [1, 2, 3, 4, 5] and got[1].tolist() == [0, 1, 2, 3, 4]
        assert t0.peer_hello == {**HELLO, "party": 1, "protocol": "suf.net", "version": 1}


@pytest.mark.parametrize("hello1,party1,expect", [
    ({**HELLO, "dealing_id": "d-2"}, 1, "field 'dealing_id'"),
    ({**HELLO, "model_hash": "fff"}, 1, "field 'model_hash'"),
    ({"dealing_id": "d-1", "model_hash": "abc123"}, 1, "field 'shapes'"),
    (HELLO, 0, "both parties claim party id 0"),
])
def test_tcp_handshake_mismatch_refused_by_both(hello1, party1, expect):
    port = free_port()
    errors = []

    def run(f):
        try:
            f().close()
        except Exception as e:
            errors.append(e)

    start = time.monotonic()
    both(lambda: run(lambda: Transport.listen("127.0.0.1", port, party=0, hello=HELLO, timeout=5)),
         lambda: run(lambda: Transport.connect("127.0.0.1", port, party=party1, hello=hello1,
                                               timeout=5)))
    assert time.monotonic() - start < 5
    assert len(errors) == 2
    for e in errors:
        assert isinstance(e, HandshakeError) and isinstance(e, ValueError)
        assert expect in str(e)


def test_tcp_nobody_listening():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(PeerError, match=f"could not connect to 127.0.0.1:{port} within 1 s"):
        Transport.connect("127.0.0.1", port, timeout=1)
    assert 1 <= time.monotonic() - start < 1 + SLACK


def test_tcp_nobody_connects_and_foreign_peers():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(PeerError, match="no peer connected"):
        Transport.listen("127.0.0.1", port, timeout=1)
    assert time.monotonic() - start < 1 + SLACK

    def foreign(payload):
        def run():
            deadline = time.monotonic() + 5
            while True:  # the listener may not be up yet
                try:
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    break
                except ConnectionRefusedError:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            with s:
                s.sendall(payload)
                try:
                    while s.recv(100):  # until the listener hangs up
                        pass
                except ConnectionResetError:  # it hung up on unread bytes
                    pass
        return run

    # something that is not a suf transport
    with pytest.raises(HandshakeError, match="not a suf transport"):
        both(lambda: Transport.listen("127.0.0.1", port, timeout=1), foreign(b"GET / HTTP/1.0\r\n"))
    # a peer that connects and never says hello
    start = time.monotonic()
    with pytest.raises(PeerError, match="handshake header in setup: handshake: no progress for 1 s"):
        both(lambda: Transport.listen("127.0.0.1", port, timeout=1), foreign(b""))
    assert time.monotonic() - start < 1.5 + SLACK


# -- two OS processes ------------------------------------------------------------------------------
CHILD = r"""
import json, sys, time, torch
from suf.net import Transport
mode, port, hello = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
t = Transport.connect("127.0.0.1", port, party=1, hello=hello, timeout=20)
if mode == "run":
    gen = torch.Generator().manual_seed(1)
    for i, bits in enumerate((1, 13, 50, 64)):
        x0 = torch.randint(0, 2**62, (5, 77), generator=gen) >> (62 - min(bits, 62))
        x1 = torch.randint(0, 2**62, (5, 77), generator=gen) >> (62 - min(bits, 62))
        with t.stats.scope(op="op", layer=i):
            assert torch.equal(t.exchange_values(x1, bits), x0)
            t.sync()
    print(json.dumps(t.stats.to_dict()), flush=True)
elif mode == "partial":  # send part of an exchange, then hang until killed
    t.send(torch.ones(100, dtype=torch.uint8))
    time.sleep(60)
elif mode == "stall":
    time.sleep(60)
elif mode == "close":
    t.close()
"""


def start_child(mode):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(port), json.dumps(HELLO)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t = Transport.listen("127.0.0.1", port, party=0, hello=HELLO, timeout=30)
    except BaseException:
        proc.kill()
        raise
    return proc, t


def test_two_processes_over_tcp():
    proc, t = start_child("run")
    t.timeout = 10
    with t:
        gen = torch.Generator().manual_seed(1)
        for i, bits in enumerate((1, 13, 50, 64)):
            x0 = torch.randint(0, 2**62, (5, 77), generator=gen) >> (62 - min(bits, 62))
            x1 = torch.randint(0, 2**62, (5, 77), generator=gen) >> (62 - min(bits, 62))
            with t.stats.scope(op="op", layer=i):
                assert torch.equal(t.exchange_values(x0, bits), x1)
                t.sync()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    peer, ours = json.loads(out), t.stats.to_dict()
    for phase in ("setup", "online"):
        assert strip(peer["phases"][phase]) == strip(ours["phases"][phase])
    assert [strip(r["own"]) for r in peer["scopes"]] == [strip(r["own"]) for r in ours["scopes"]]
    online = ours["phases"]["online"]
    assert online["exchanges"] == 4 and online["syncs"] == 4 and online["sync_bytes_recv"] == 4
    assert online["bytes_sent"] == sum(packed_size(b, 385) for b in (1, 13, 50, 64))


def test_peer_killed_mid_exchange():
    proc, t = start_child("partial")
    t.timeout = 2
    killed = []

    def kill():
        killed.append(time.monotonic())
        proc.kill()

    timer = threading.Timer(0.5, kill)
    timer.start()
    try:
        with t, pytest.raises(PeerError) as info:
            with t.stats.scope(op="gelu", layer=4):
                t.exchange(torch.zeros(800, dtype=torch.uint8))
    finally:
        timer.cancel()
        proc.kill()
        proc.communicate()
    msg = str(info.value)
    assert "exchange of 800 bytes in online: layer 4 gelu" in msg
    assert "received 100 of 800 expected" in msg
    assert "closed the connection" in msg or "broke" in msg
    assert time.monotonic() - killed[0] < 2 + SLACK


def test_peer_stalls():
    proc, t = start_child("stall")
    t.timeout = 2
    start = time.monotonic()
    try:
        with t:
            with pytest.raises(PeerError, match="softmax: no progress for 2 s, the peer stalled"):
                with t.stats.scope(op="softmax"):
                    t.exchange_values(torch.zeros(10, dtype=torch.int64), 37)
            elapsed = time.monotonic() - start
            with pytest.raises(PeerError, match="failed earlier"):
                t.sync()
    finally:
        proc.kill()
        proc.communicate()
    assert 2 <= elapsed < 2 + SLACK
    assert t.stats.total("online").exchanges == 0


def test_peer_closes():
    proc, t = start_child("close")
    t.timeout = 2
    start = time.monotonic()
    try:
        with t, pytest.raises(PeerError, match="sync in online: .*(closed the connection|broke)"):
            t.sync()
    finally:
        proc.kill()
        proc.communicate()
    assert time.monotonic() - start < 2 + SLACK
