"""Runs a gate between two parties in one process: a dealer with in-memory keys, then party 0 and
party 1 on two threads over a local socket pair (the same byte path as TCP)."""
from __future__ import annotations

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
