"""The TLS channel (suf.net.tls, Transport(tls=...)): a mutual TLS 1.3 round trip with the same
counters as plaintext; refusal of a certificate from another CA, of a plaintext peer by a TLS party
(and the reverse), each with a one-line HandshakeError and no hang; `suf certs`' files."""
import os
import socket
import stat
import time

import pytest
import torch

from suf.core.ring import packed_size
from suf.core.errors import HandshakeError, InputError, PeerError, SufError
from suf.net.tls import TLSConfig
from suf.net.transport import Transport
from suf.runtime.certs import FILES, make_certs, party_tls

from test_net import HELLO, both, free_port, strip

pytest.importorskip("cryptography")

TIMEOUT = 10


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("other"))


def cfg(d, party):
    return party_tls(d["ca.pem"].parent, party)


def pair(tls0, tls1, hello=HELLO, timeout=TIMEOUT):
    """Open P0 (listening) and P1 (connecting) on two threads; returns both outcomes, each a
    Transport or the exception it raised."""
    port = free_port()

    def attempt(f):
        def run():
            try:
                return f()
            except SufError as e:
                return e
        return run

    return both(attempt(lambda: Transport.listen("127.0.0.1", port, 0, hello, timeout, tls=tls0)),
                attempt(lambda: Transport.connect("127.0.0.1", port, 1, hello, timeout,
                                                  tls=tls1)))


def exchange_all(t, gen_seed):
    gen = torch.Generator().manual_seed(gen_seed)
    small = torch.randint(0, 1 << 37, (1000,), dtype=torch.int64, generator=gen)
    big = torch.randint(0, 256, (3_000_000,), dtype=torch.uint8, generator=gen)  # many records
    with t.stats.scope(op="gelu", layer=2):
        a = t.exchange_values(small, 37)
        b = t.exchange(big)
        t.sync()
    return small, big, a, b


def test_tls_round_trip_values_and_counters(certs):
    t0, t1 = pair(cfg(certs, 0), cfg(certs, 1))
    assert isinstance(t0, Transport) and isinstance(t1, Transport), (t0, t1)
    with t0, t1:
        for t in (t0, t1):
            assert t.tls["version"] == "TLSv1.3"
        assert t0.peer_hello["party"] == 1 and t1.peer_hello["party"] == 0
        r0, r1 = both(lambda: exchange_all(t0, 0), lambda: exchange_all(t1, 1))
        assert torch.equal(r0[2], r1[0]) and torch.equal(r1[2], r0[0])
        assert torch.equal(r0[3], r1[1]) and torch.equal(r1[3], r0[1])
        # counters are application bytes: exactly what a plaintext pair counts
        p0, p1 = pair(None, None)
        with p0, p1:
            both(lambda: exchange_all(p0, 0), lambda: exchange_all(p1, 1))
            for tls_t, plain_t in ((t0, p0), (t1, p1)):
                for phase in ("setup", "online"):
                    assert strip(tls_t.stats.total(phase).as_dict()) == \
                        strip(plain_t.stats.total(phase).as_dict())
        online = t0.stats.total("online")
        assert online.exchanges == 2 and online.syncs == 1
        assert online.bytes_sent == online.bytes_recv == 3_000_000 + packed_size(37, 1000, 8)
        assert online.sync_bytes_sent == online.sync_bytes_recv == 1


def test_certificate_from_another_ca_is_refused(certs, other_certs):
    # P1's certificate is signed by another CA: P0 refuses it, P1 learns that it was refused
    p1 = TLSConfig(other_certs["p1.pem"], other_certs["p1.key"], certs["ca.pem"])
    start = time.monotonic()
    e0, e1 = pair(cfg(certs, 0), p1)
    assert time.monotonic() - start < TIMEOUT
    assert isinstance(e0, HandshakeError) and "peer certificate not trusted" in str(e0), e0
    assert isinstance(e1, HandshakeError) and "did not trust this party's certificate" in str(e1), e1
    # and the other way round: P1 refuses P0's certificate
    e0, e1 = pair(TLSConfig(other_certs["p0.pem"], other_certs["p0.key"], certs["ca.pem"]),
                  cfg(certs, 1))
    assert isinstance(e1, HandshakeError) and "peer certificate not trusted" in str(e1), e1
    assert isinstance(e0, HandshakeError) and "did not trust this party's certificate" in str(e0), e0
    for e in (e0, e1):
        assert "\n" not in str(e)


def test_plaintext_peer_refused(certs):
    for tls0, tls1 in ((cfg(certs, 0), None), (None, cfg(certs, 1))):
        start = time.monotonic()
        e0, e1 = pair(tls0, tls1)
        assert time.monotonic() - start < TIMEOUT
        tls_side, plain_side = (e0, e1) if tls0 is not None else (e1, e0)
        assert isinstance(tls_side, HandshakeError), tls_side
        assert "does not speak TLS" in str(tls_side)
        assert isinstance(plain_side, (HandshakeError, PeerError)), plain_side
        assert "TLS" in str(plain_side)


def test_tls_peer_that_stalls_times_out(certs):
    port = free_port()
    with socket.create_server(("127.0.0.1", port)) as server:  # accepts, never answers
        start = time.monotonic()
        with pytest.raises(PeerError, match="TLS handshake: no progress"):
            Transport.connect("127.0.0.1", port, 1, HELLO, timeout=0.5, tls=cfg(certs, 1))
        assert time.monotonic() - start < 3
        server.accept()[0].close()


def test_bad_tls_files(tmp_path, certs):
    with pytest.raises(InputError, match="--cert .*: no such file"):
        TLSConfig(tmp_path / "none.pem", certs["p0.key"], certs["ca.pem"]).context(0)
    # a key that is not the certificate's
    with pytest.raises(InputError, match="cannot load"):
        TLSConfig(certs["p0.pem"], certs["p1.key"], certs["ca.pem"]).context(0)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(InputError, match="--peer-ca"):
        TLSConfig(certs["p0.pem"], certs["p0.key"], junk).context(1)


def test_make_certs_files(tmp_path, certs):
    assert sorted(p.name for p in certs.values()) == sorted(FILES)
    for name in ("p0.key", "p1.key"):
        assert stat.S_IMODE(os.stat(certs[name]).st_mode) == 0o600
    for p in (0, 1):
        cfg(certs, p).context(p)  # loads: key matches certificate, CA parses
    with pytest.raises(InputError, match="already there"):
        make_certs(certs["ca.pem"].parent)
