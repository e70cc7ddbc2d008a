"""Runs a gate between two parties in one process: a dealer with in-memory keys, then party 0 and
party 1 on two threads over a local socket pair (the same byte path as TCP)."""
from __future__ import annotations

import torch

from suf.keys import MemoryKeys
from suf.net.transport import local_pair, run_both
from suf.prg import Stream
from suf.mpc.dealer import Dealer
from suf.mpc.party import Party

DEALING = bytes(16)
MODEL = bytes(32)


class Run:
    def __init__(self, outputs, stats, key_bytes):
        self.outputs = outputs          # (party 0's result, party 1's result)
        self.stats = stats              # each party's transport Stats
        self.key_bytes = key_bytes      # [payload bytes of P0's keys, of P1's keys]

    def total(self, party=0):
        return self.stats[party].total("online")


def run_gate(deal, evaluate, ring_bits=64, device="cpu", seed=b"\x07" * 32, timeout=30.0):
    """deal(dealer) -> ctx; evaluate(party, ctx) -> result.  Returns a Run."""
    stores = [MemoryKeys(p, ring_bits, DEALING, MODEL) for p in (0, 1)]
    dealer = Dealer(Stream(seed, device=device), stores, device)
    ctx = deal(dealer)
    for s in stores:
        s.close()
    transports = local_pair(timeout=timeout)

    def work(p):
        party = Party(p, transports[p], stores[p].open(p), device)
        out = evaluate(party, ctx)
        if stores[p].remaining:
            raise AssertionError(f"party {p} left {stores[p].remaining} key chunks unused")
        return out

    try:
        outputs = run_both(work, transports)
    finally:
        for t in transports:
            t.close()
    return Run(outputs, [t.stats for t in transports], list(dealer.key_bytes))


def masked(x, r, bits):
    return (x + r) & ((1 << bits) - 1 if bits < 64 else -1)


def run_masked(keygen, evaluate, x, n_in, ring_bits=64, device="cpu", seed=b"\x21" * 32,
               timeout=120.0):
    """One gate on one client input x (ring values of Z_{2^n_in}) between two parties:
    keygen(dealer, r_in) -> r_out, evaluate(party, x_hat) -> y_hat.  Checks that both parties
    output the same y_hat; returns (y_hat, r_out, Run)."""
    ctx = {}

    def deal(dealer):
        ctx["r_in"] = dealer.mask(x.shape, n_in)
        ctx["r_out"] = keygen(dealer, ctx["r_in"])
        return ctx

    def work(party, c):
        party.trace = []
        return evaluate(party, masked(x.to(c["r_in"].device), c["r_in"], n_in)), party.trace

    run = run_gate(deal, work, ring_bits=ring_bits, device=device, seed=seed, timeout=timeout)
    (y0, _), (y1, _) = run.outputs
    assert torch.equal(y0, y1)
    return y0, ctx["r_out"], run


def tiny_gpt2():
    """A one-layer GPT-2 (d = 32, two heads, ring 37 bits) from a transformers config."""
    import transformers

    from suf.models import transformer as models

    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=16, vocab_size=50)
    return models.from_config(cfg, bits=37, name="gpt2-micro")


def serve_both(jobs, paths, seed, timeout=20):
    """suf.runtime.serve() as P0 and P1 on two threads over localhost; each party's result or
    the exception it raised."""
    import threading

    from suf.runtime import serve
    from suf.runtime.processes import free_port

    port, out = free_port(), [None, None]

    def party(p):
        try:
            out[p] = serve(p, jobs[p], paths[p], f"127.0.0.1:{port}", jobs[p].values(seed),
                           timeout=timeout)
        except Exception as e:  # noqa: BLE001 (the caller looks at it)
            out[p] = e
    threads = [threading.Thread(target=party, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def assert_peers_refuse(jobs, paths, seed, field, values):
    """Two parties dealt in two modes (values[p] for P_p) both end in a one-line error naming
    `field`: the client (P1) at once, in the handshake; the model owner (P0), which listens on
    for a peer that proves the dealing's secret, when its timeout ends, naming the refused one."""
    from suf.core.errors import HandshakeError, PeerError

    for p, e in enumerate(serve_both(jobs, paths, seed, timeout=3)):
        mine, theirs = values[p], values[1 - p]
        said = (f"handshake mismatch in field '{field}': this party (P{p}) has \"{mine}\", the "
                f"peer has \"{theirs}\"")
        unused = " (the keys were not used: they stay usable)"
        if p == 1:
            assert isinstance(e, HandshakeError) and str(e) == said + unused, e
        else:
            assert isinstance(e, PeerError) and str(e).endswith(said + unused), e
            assert "refused 1 connection(s) that did not prove" in str(e)
