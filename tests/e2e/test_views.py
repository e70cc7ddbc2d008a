"""A party's view is independent of the other party's secrets (issue 18, item 3).

What a party sees online is the byte stream it receives from its peer (and, for P0, its key
file); a simulator that knows only this party's own inputs must be able to produce it.  This file
checks a necessary consequence statistically: run the protocol many times with fresh keys from
the OS CSPRNG on two DIFFERENT secrets of the other party, record the view, and test whether the
two samples of views come from one distribution.

  P0's view (the model owner): every byte it receives from P1 (the masked input x^, then each
      exchange's share), then its key bytes, for two client inputs: the gate's example x_a and
      x_b = x_a / 2^8 (arithmetic shift), the same weights.
  P1's view (the client): every byte it receives from P0 (the masked weights w^ and b^ in one
      message, then each exchange's share), for two weight sets (w_a, b_a) and (w_a, b_a) / 2^8,
      the same client input.

Each run is one registered gate (linear, and gelu for P0) at bert-tiny's ring (37 bits) on 64
elements through the real dealing and serving code (`deal_keys`, then `run_party` on both sides
of a `local_pair`), with the transport's and the party's receive paths wrapped to record the
bytes.  A whole bert-tiny inference (3 tokens) takes ~20 s on two CPU cores, too slow for the
tens of runs per secret a statistic needs; a gate run takes ~0.3 s.

The statistic, per message position (the k-th receive of a run, or the k-th key chunk): the byte
values at that position pooled over all runs of one secret, binned to their top k bits with
2^k <= N/16 (N bytes per sample, so every cell expects >= 16 counts), against those of the other
secret: a chi-square homogeneity test, p from the chi-square tail (torch.special.gammaincc).  A
view test fails when some p falls below ALPHA / (number of positions), a Bonferroni bound: a
false alarm has probability < ALPHA = 1e-6 per view (up to the chi-square approximation).
Power: RUNS = 20 runs per secret.  It compares byte-value distributions per message, so it sees
a secret that shifts them (a value sent unmasked, a mask reused or fixed, a mask narrower than
the value), not a leak that keeps every byte uniform and shows only jointly across positions or
runs.  The positive control deals every run from one fixed key (masks that do not change): the
same statistic, on CONTROL_RUNS = 4 runs per secret, must flag both views.
"""
from __future__ import annotations

import contextlib
import functools
import math

import pytest
import torch

from suf.core.ring import Ring, low_mask, unpack
from suf.keys import MemoryKeys, new_dealing_id
from suf.keys.format import payload_buffer
from suf.mpc.party import Party
from suf.net.transport import Transport, local_pair, run_both
from suf.prg import Stream
from suf.runtime import GateJob, deal_keys, run_party
from suf.runtime.jobs import read_handshake_secret
from suf.runtime.serving import hello

BITS = 37          # bert-tiny's ring
RUNS = 20          # runs per secret
ALPHA = 1e-6       # false-alarm probability of one view test (Bonferroni over its messages)
MIN_EXPECTED = 16  # expected count per cell of a chi-square table, at least


class _KeyBytes(MemoryKeys):
    """In-memory keys that also keep a byte copy of every chunk the dealer adds."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.raw: list[bytes] = []

    def add(self, op, shape, payload):
        buf = payload_buffer(payload)
        self.raw.append(bytes(buf.cpu().numpy()) if isinstance(buf, torch.Tensor) else bytes(buf))
        return super().add(op, shape, payload)


@contextlib.contextmanager
def _recording():
    """Record, per party, the bytes of every receive (exchange or one-way) and the values of every
    open, by wrapping the transport's and the party's receive paths."""
    received: dict[int, list[bytes]] = {0: [], 1: []}
    opened: dict[int, list[tuple[int, torch.Tensor]]] = {0: [], 1: []}
    exchange, recv, open_ = Transport.exchange, Transport.recv, Party.open

    def rec_exchange(self, buf):
        out = exchange(self, buf)
        received[self.party].append(bytes(out.cpu().numpy()))
        return out

    def rec_recv(self, nbytes, device="cpu"):
        out = recv(self, nbytes, device)
        received[self.party].append(bytes(out.cpu().numpy()))
        return out

    def rec_open(self, share, spec):
        out = open_(self, share, spec)
        opened[self.id].append((spec.bits, out.cpu().clone()))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Transport, "exchange", rec_exchange)
        mp.setattr(Transport, "recv", rec_recv)
        mp.setattr(Party, "open", rec_open)
        yield received, opened


def run_gate_job(job: GateJob, values: list, stream: Stream | None = None) -> dict:
    """One run of `job` on the cleartext inputs `values` (both parties' and the public ones), the
    dealer keyed by `stream` (default: the OS CSPRNG).  Returns each party's view: "recv" (bytes
    of every receive), "opened" (every opened value), "keys" (its key chunks' bytes)."""
    dealing = new_dealing_id()
    stores = [_KeyBytes(p, BITS, dealing, job.key_hash()) for p in (0, 1)]
    deal_keys(job, stores, dealing_id=dealing, stream=stream)
    for s in stores:
        s.close()
    mine = [[v if i.owner in (p, -1) else None for v, i in zip(values, job.inputs)]
            for p in (0, 1)]
    keys = [s.open(p, dealing) for p, s in enumerate(stores)]
    secret = read_handshake_secret(keys[0])
    assert read_handshake_secret(keys[1]) == secret
    with _recording() as (received, opened):
        transports = local_pair(hello(job, dealing, job.key_hash()), timeout=60.0, secret=secret)
        try:
            run_both(lambda p: run_party(Party(p, transports[p], keys[p]), job, mine[p]),
                     transports)
        finally:
            for t in transports:
                t.close()
    return {p: {"recv": received[p], "opened": opened[p], "keys": stores[p].raw} for p in (0, 1)}


def chi_square(a: list[bytes], b: list[bytes]) -> tuple[float, int, float]:
    """Chi-square homogeneity of the byte values in samples a and b (each a list of messages of
    one position over runs), binned to the top k bits so that each cell expects >= MIN_EXPECTED.
    Returns (statistic, degrees of freedom, p)."""
    xa = torch.frombuffer(bytearray(b"".join(a)), dtype=torch.uint8).to(torch.int64)
    xb = torch.frombuffer(bytearray(b"".join(b)), dtype=torch.uint8).to(torch.int64)
    n = min(xa.numel(), xb.numel())
    k = max(0, min(8, int(math.log2(max(n, 1) / MIN_EXPECTED))))
    table = torch.stack([torch.bincount(x >> (8 - k), minlength=1 << k) for x in (xa, xb)])
    table = table[:, table.sum(0) > 0].to(torch.float64)
    df = table.shape[1] - 1
    if df == 0:
        return 0.0, 0, 1.0
    expected = table.sum(1, keepdim=True) * table.sum(0, keepdim=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    p = float(torch.special.gammaincc(torch.tensor(df / 2, dtype=torch.float64),
                                      torch.tensor(stat / 2, dtype=torch.float64)))
    return stat, df, p


def compare(views_a: list[list[bytes]], views_b: list[list[bytes]]) -> dict:
    """Test every message position of two samples of views (lists over runs of lists of
    messages); returns the smallest p, its statistic and the Bonferroni threshold."""
    positions = len(views_a[0])
    assert all(len(v) == positions for v in views_a + views_b)
    tests = [chi_square([v[i] for v in views_a], [v[i] for v in views_b])
             for i in range(positions)]
    stat, df, p = min(tests, key=lambda t: t[2])
    return {"p_min": p, "stat": stat, "df": df, "messages": positions,
            "threshold": ALPHA / positions}


# -- the samples ---------------------------------------------------------------------------------
SEED = b"\x18" * 32       # the test's own choices: the gates' example inputs
FIXED = b"\x03" * 32      # the leaky control's dealer key, the same in every run
COUNT = 64                # elements per gate
CONTROL_RUNS = 4          # runs per secret of the leaky control (fewer: it must still be caught)
P0_GATES = ("linear", "gelu")   # gates with a client input x, for P0's view
P1_GATES = ("linear",)          # gates with model-owner inputs (w, b), for P1's view
FRESH_FAIL = 1e-9         # false-alarm bound of one open in the freshness test


def secret(job: GateJob, x: str, w: str) -> list:
    """The inputs of one run: the example's, with the client's inputs (x) and the model owner's
    (w) each as they are ("a") or scaled down by 2^8 ("b": a smaller input, smaller weights)."""
    ring, which = Ring(BITS), {1: x, 0: w}
    return [(ring.signed(v) >> 8) & low_mask(BITS) if which.get(i.owner) == "b" else v
            for v, i in zip(job.values(SEED), job.inputs)]


@functools.cache
def sample(gate: str, x: str, w: str, leaky: bool) -> tuple:
    """Both parties' views over the runs of `gate` on secrets (x, w): fresh keys each run, or
    (leaky) every run dealt from the same fixed key.  Cached: the tests share samples (call it
    with all four arguments positional, so that equal calls hit one cache entry)."""
    job = GateJob(gate, BITS, COUNT)
    values = secret(job, x, w)
    return tuple(run_gate_job(job, values, Stream(FIXED) if leaky else None)
                 for _ in range(CONTROL_RUNS if leaky else RUNS))


def view(runs: tuple, party: int) -> list[list[bytes]]:
    """Per run, what `party` received, then (P0) its key chunks."""
    return [r[party]["recv"] + (r[party]["keys"] if party == 0 else []) for r in runs]


def p0_compare(gate: str, leaky: bool) -> dict:
    """P0's views for two client inputs, the same weights."""
    return compare(view(sample(gate, "a", "a", leaky), 0), view(sample(gate, "b", "a", leaky), 0))


def p1_compare(gate: str, leaky: bool) -> dict:
    """P1's views for two weight sets, the same client input."""
    return compare(view(sample(gate, "a", "a", leaky), 1), view(sample(gate, "a", "b", leaky), 1))


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("gate", P0_GATES)
def test_p0_view_is_independent_of_client_input(gate):
    """P0's received bytes and key bytes: one distribution for two client inputs."""
    r = p0_compare(gate, False)
    assert r["p_min"] >= r["threshold"], r


@pytest.mark.parametrize("gate", P1_GATES)
def test_p1_view_is_independent_of_model_weights(gate):
    """P1's received bytes (w^ and b^ first): one distribution for two weight sets."""
    r = p1_compare(gate, False)
    assert r["p_min"] >= r["threshold"], r


@pytest.mark.parametrize("compare_views, gate",
                         [(p0_compare, g) for g in P0_GATES] + [(p1_compare, g) for g in P1_GATES],
                         ids=[f"p0-{g}" for g in P0_GATES] + [f"p1-{g}" for g in P1_GATES])
def test_a_fixed_mask_is_detected(compare_views, gate):
    """The positive control: dealt from one fixed key, the masks repeat across runs and the view
    depends on the secret; the same statistic, on fewer runs, must find it."""
    r = compare_views(gate, True)
    assert r["p_min"] < r["threshold"], r


def chance_bound(n: int, bits: int) -> int:
    """The most of n independent uniform `bits`-bit words that may equal fixed ones by chance:
    the least a with P(Binomial(n, 2^-bits) > a) < FRESH_FAIL."""
    q = torch.tensor(2.0 ** -bits, dtype=torch.float64)
    k = torch.arange(n + 1, dtype=torch.float64)
    log_pmf = (torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1)
               - torch.lgamma(n - k + 1) + k * torch.log(q) + (n - k) * torch.log1p(-q))
    at_least = log_pmf.exp().flip(0).cumsum(0).flip(0)  # at_least[a] = P(X >= a)
    return int(torch.nonzero(at_least < FRESH_FAIL)[0]) - 1


def repeated_words(a: dict, b: dict) -> list[tuple]:
    """P0's opened words in two runs: x^ (received at setup), then every open.  Per open:
    (width, words, words equal in both runs, `chance_bound`)."""
    x_hats = [unpack(torch.frombuffer(bytearray(r[0]["recv"][0]), dtype=torch.uint8), BITS, COUNT)
              for r in (a, b)]
    out = []
    for (w, x), (_, y) in zip([(BITS, x_hats[0])] + a[0]["opened"],
                              [(BITS, x_hats[1])] + b[0]["opened"]):
        out.append((w, x.numel(), int((x == y).sum()), chance_bound(x.numel(), w)))
    return out


@pytest.mark.parametrize("gate", P0_GATES)
def test_opened_values_are_fresh_per_dealing(gate):
    """No word P0 opens is a function of the client's input alone: two runs on the same input
    with fresh keys repeat no more words than chance allows (no 37-bit word at all), where the
    fixed-key control repeats every word."""
    runs = sample(gate, "a", "a", False)
    opens = repeated_words(runs[0], runs[1])
    assert len(opens) == 1 + len(runs[0][0]["opened"]) > 1
    assert all(same <= bound for _, _, same, bound in opens), opens
    assert all(bound < n for _, n, _, bound in opens), opens  # the bound can fail every open
    fixed = sample(gate, "a", "a", True)
    assert all(same == n for _, n, same, _ in repeated_words(fixed[0], fixed[1]))
