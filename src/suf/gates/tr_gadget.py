"""The gadget shared by SIGMA's truncations (sigma_spec §3.4, `gpu_truncate.cu`): TR, SignExtend and
TrWithSlack.

A comparison on the masked input decides a borrow or a wrap; the dealer stores the two candidate
corrections at positions z and z ^ 1 (z a random bit), both parties open the masked comparison bit
b^ = cmp ^ z, pick corr[b^] and add a public function of the input (party 1 only); then the output
is opened.  2 exchanges: 1 bit, then bits_out bits.
"""
from __future__ import annotations

import torch

from suf.fss import compare
from suf.mpc.dealer import sigma_dpf_header
from suf.mpc.gate import Bits, Key, Open, Raw, Words


def check_shift(s: int, n: int) -> None:
    if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < n:
        raise ValueError(f"shift s must be an int in [0, {n}), got {s!r}")


def steps(count: int, cmp_bits: int, nwords: int, bits_out: int, type_bytes: int = 8,
          header: int | None = None) -> list:
    """The gadget's key and exchanges for `count` elements: a comparison key on cmp_bits bits, the
    mask bit z, `nwords` correction words (corr0, corr1, extra...), then the opened bit and the
    opened output."""
    words = tuple(Words(f"w{i}", count, bits_out, type_bytes) for i in range(nwords))
    header = sigma_dpf_header(cmp_bits) if header is None else header
    return [Key("", (Raw("cmp", compare.payload_size(cmp_bits, count)), Bits("z", count)) + words,
                header),
            Open("bit", count, 1), Open("out", count, bits_out, type_bytes)]


def deal(dealer, op: str, shape, key: Key, alpha: torch.Tensor, cmp_bits: int, corrections,
         extra) -> None:
    """Write the comparison key of alpha (cmp_bits), a mask bit z and the corrections indexed by
    cmp ^ z, then the extra words, all as the layout `key` declares."""
    k0, k1 = compare.keygen(alpha, cmp_bits, dealer.stream)
    z = dealer.mask(alpha.shape, 1)
    words = [torch.where(z == 0, corrections[0], corrections[1]),  # corr[j] is for cmp = j ^ z
             torch.where(z == 0, corrections[1], corrections[0])] + list(extra)
    dealer.deal(op, shape, key, {"cmp": (compare.to_payload(k0), compare.to_payload(k1)), "z": z,
                                 **{f"w{i}": w for i, w in enumerate(words)}})


def choose(party, op: str, layout, x_cmp: torch.Tensor, cmp_bits: int):
    """Open the masked comparison bit; returns (this party's chosen correction, extra words)."""
    key = layout.key()
    k = party.read(op, key)
    n = x_cmp.numel()
    cmp_key = compare.from_payload(k["cmp"], cmp_bits, n, party.id, party.device)
    b_hat = party.open(compare.eval_lt(cmp_key, x_cmp) ^ k["z"], layout.open("bit"))
    extra = [k[p.name] for p in key.parts[4:]]
    return torch.where(b_hat == 0, k["w0"], k["w1"]), extra
