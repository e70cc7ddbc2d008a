"""Predicted costs of the gates, for `suf plan`: what each party sends, the exchanges, and the key.

Every function mirrors one protocol of suf.gates step by step (same exchanges, same packing,
same key parts); tests/test_plan.py checks the predictions against the transport's counters and
the dealt key bytes.  Costs are per party: both parties send the same bytes and hold keys of the
same size.  `sigma_header` tallies SIGMA's per-call key headers (our payload leaves them out).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from suf.core.config import SCALE as F
from suf.fss import compare as fss_compare
from suf.fss import lut as fss_lut
from suf.gates import rsqrt as rsqrt_gate
from suf.gates import tables
from suf.mpc.core import sigma_dpf_header
from suf.core.ring import packed_size



@dataclass
class Cost:
    sent: int = 0          # bytes one party sends (it receives as many)
    exchanges: int = 0
    key: int = 0           # one party's key payload bytes
    sigma_header: int = 0  # SIGMA's per-call key headers, apart
    rsqrt: dict = field(default_factory=dict)  # the LayerNorm rsqrt part, reported apart

    def __iadd__(self, other: "Cost") -> "Cost":
        self.sent += other.sent
        self.exchanges += other.exchanges
        self.key += other.key
        self.sigma_header += other.sigma_header
        for k, v in other.rsqrt.items():
            self.rsqrt[k] = self.rsqrt.get(k, 0) + v
        return self

    def __add__(self, other: "Cost") -> "Cost":
        out = Cost(self.sent, self.exchanges, self.key, self.sigma_header, dict(self.rsqrt))
        out += other
        return out


def open_(bits: int, count: int, type_bytes: int = 8) -> Cost:
    return Cost(sent=packed_size(bits, count, type_bytes), exchanges=1) if count else Cost()


def words(count: int, type_bytes: int = 8) -> Cost:
    return Cost(key=count * type_bytes)


def key_bits(count: int) -> Cost:
    return Cost(key=packed_size(1, count))


def cmp_key(bits: int, count: int) -> Cost:
    return Cost(key=fss_compare.payload_size(bits, count), sigma_header=sigma_dpf_header(bits))


def select(bits: int, count: int, type_bytes: int = 8, opened: bool = True) -> Cost:
    c = words(5 * count, type_bytes)
    return c + open_(bits, count, type_bytes) if opened else c


def drelu(m: int, count: int) -> Cost:
    return cmp_key(m - 1, count) + key_bits(count) + open_(1, count)


def relu(m: int, bits_out: int, count: int, type_bytes: int = 8) -> Cost:
    return drelu(m, count) + Cost(sigma_header=12) + select(bits_out, count, type_bytes)


def lut(k: int, bits: int, count: int, opened: bool = True) -> Cost:
    c = Cost(key=fss_lut.payload_size(k, count), sigma_header=4 + sigma_dpf_header(k))
    c += key_bits(count) + select(bits, count, opened=False)
    c += open_(1, count) + open_(bits, count)
    return c + open_(bits, count) if opened else c


def _gadget(cmp_bits: int, nwords: int, bits_out: int, count: int, type_bytes: int,
            header: int) -> Cost:
    """The shared TR gadget: comparison key, mask bit, nwords correction words; 2 opens."""
    c = Cost(key=fss_compare.payload_size(cmp_bits, count), sigma_header=header)
    return c + key_bits(count) + words(nwords * count, type_bytes) + open_(1, count) + \
        open_(bits_out, count, type_bytes)


def tr(n: int, s: int, count: int) -> Cost:
    return _gadget(s, 2, n - s, count, 8, sigma_dpf_header(s))


def sign_extend(m: int, n: int, count: int) -> Cost:
    return _gadget(m, 2, n, count, 8, sigma_dpf_header(m))


def trfloor(n: int, s: int, count: int) -> Cost:
    return Cost(sigma_header=16) + tr(n, s, count) + sign_extend(n - s, n, count)


def tr_with_slack(n: int, s: int, count: int, bits_out: int | None = None,
                  type_bytes: int = 8) -> Cost:
    bits_out = n if bits_out is None else bits_out
    return _gadget(s, 3, bits_out, count, type_bytes, 16 + sigma_dpf_header(s))


def beaver(x_count: int, y_count: int, out_count: int) -> Cost:
    """Key of a Beaver product (mul.py, matmul.py): <r_x>, <r_y>, <r_x·r_y + r_z> as words."""
    return words(x_count + y_count + out_count)


def matmul(n: int, shift: int, x_count: int, w_count: int, out_count: int) -> Cost:
    """A product of two masked operands, opened, then TrFloor(shift) (SIGMA's matmul output)."""
    return beaver(x_count, w_count, out_count) + open_(n, out_count) + trfloor(n, shift, out_count)


def relu_minus_lut(n: int, count: int, clip_bits: int) -> Cost:
    """GeLU (clip 8) / SiLU (clip 10): gelu.keygen_relu_minus_lut."""
    b = n - 2 * F + 7
    tc = 1 if clip_bits <= 8 else 2
    c = Cost(sigma_header=4) + tr_with_slack(n, F - 6, count, b)
    c += cmp_key(b - 1, count) + key_bits(count) + key_bits(count)
    c += open_(1, 2 * 32 * -(-count // 32))  # the d and i bits, two packed runs, one exchange
    c += words(8 * count, tc) + open_(clip_bits, count, tc)
    c += lut(clip_bits, n, count, opened=False) + select(n, count, opened=False)
    return c + open_(n, count)


def gelu(n: int, count: int) -> Cost:
    return relu_minus_lut(n, count, 8)


def silu(n: int, count: int) -> Cost:
    return relu_minus_lut(n, count, 10)


def _tournament_relus(counts: list[int]) -> list[int]:
    """ReLUs per level of the max over rows of the given lengths (softmax._tournament_level)."""
    per_level = []
    while max(counts) > 1:
        halves = [(k + 1) // 2 for k in counts]
        per_level.append(sum(halves))
        counts = halves
    return per_level


def softmax(n: int, rows: int, length: int, causal: bool = False) -> Cost:
    """softmax.keygen/eval over `rows` rows of `length` (causal: rows come in L×L blocks)."""
    red = n - F + 2
    if causal:
        counts = [i + 1 for i in range(length)] * (rows // length)
    else:
        counts = [length] * rows
    total = sum(counts)
    c = Cost(sigma_header=4)
    for k in _tournament_relus(counts):
        c += relu(red - 1, red, k)
    # nExp
    c += drelu(red, total) + Cost(sigma_header=12) + select(16, total, 2)
    c += lut(8, n, total) + tr_with_slack(16, 8, total, 8, 1) + lut(8, n, total)
    c += beaver(total, total, total) + open_(n, total) + tr_with_slack(n, F, total)
    # inverse
    bits = tables.inverse_bits(length)
    c += tr_with_slack(bits + F - 6, 6, len(counts), bits, 2 if bits <= 16 else 4)
    c += lut(bits, n, len(counts))
    # normalise
    c += beaver(total, len(counts), total) + open_(n, total) + tr_with_slack(n, F, total)
    return c


def layernorm(n: int, rows: int, d: int) -> Cost:
    shift = d.bit_length() - 1 if d & (d - 1) == 0 else F
    c = trfloor(n, shift, rows)
    c += words(2 * rows * d) + open_(n, rows)  # square key, open V
    r = rsqrt_gate.cost(n, rows)
    c += Cost(sent=r["rsqrt_bytes_sent"], exchanges=r["rsqrt_exchanges"],
              key=r["rsqrt_key_bytes"], rsqrt=dict(r))
    for other in (rows, d):  # (x - μ)·rsqrt per row, then ·γ per column
        c += beaver(rows * d, other, rows * d) + open_(n, rows * d) + tr_with_slack(n, F, rows * d)
    return c
