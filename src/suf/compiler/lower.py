"""Lowering a SUF descriptor (suf.compiler.ir) to an FSS gate with per-element masks
(suf_spec.md §2.2–2.5, exact_design.md §1).

Per element, with x^ = x + r_x (Z_{2^n_in}) and y^ = y + r_y (Z_{2^b}) the reduced input:

  reduce     "shift": SIGMA's TrWithSlack (2 exchanges); "low": y^ = x^ mod 2^b, r_y = r_x mod 2^b
             (local); "none": y = x.
  one DPF    over Z_{2^b} at α = r_y (suf.fss.dpf; SIGMA's comparison-key layout).  It serves:
  packed     every interval indicator by prefix parity (suf.fss.compare, Grotto): with
  comparison y_j = y^ - a_j, y in [a_j, a_{j+1}) <=> r_y in (y_{j+1}, y_j] cyclically, whose XOR
             shares are lt(y_j) ^ lt(y_{j+1}) ^ [party 1]·1{y_{j+1} > y_j}: one walk per
             interval start, M walks for M intervals.
  windowed   the point function summed over the window (suf.fss.window): the two parties' sums
  lookup     differ by σ·1{y in window}·T[y - w], σ = ±1, so the window is the range gate.
  step       when there are many intervals and all polynomials are constants, the XOR-shared
  lookup     one-hot of the intervals is dotted with the constants the same way (the shares
             differ at one position only: u0 + u1 = σ, v0 + v1 = σ·c_i; SIGMA's LUT sign trick).
  Otherwise the M - 1 interval bits are opened masked: e^_i = e_i ^ r_i.

  exchange 1 (`mid`): one word per element, its low bits the XOR-shared bits (e^_1..e^_{M-1},
             U^ = 1{σ = +1} ^ r_U), its top field the additive V^ = σ·T + r_V (window: in a
             small ring of m bits, |T| < 2^(m-2); step lookup: in Z_{2^n_out}).  XOR bits travel
             inside an additive word: each party, knowing its own bit and the opened XOR, removes
             the carries bit by bit from the bottom.
  local      out = Σ_i e_i·P_i(x) + (2U - 1)·V + r_out, every product of two secrets being a
             product with a public value: e_i = e^_i + (1 - 2e^_i)·r_i, x^j expanded by the
             binomial theorem around x^ (Σ_t C(j,t)·x^^(j-t)·(-r_x)^t), 2U - 1 = (2U^ - 1)(1 - 2r_U),
             and V = lift(V^) - r_V read off the public V^ with the gap lift
             (V = V'_pub - r_V + 2^m·(1 - MSB(V'))·MSB(r_V), V' = V^ + 2^(m-2) mod 2^m).  The
             dealer shares the products of masks this needs (`_corr_terms`).
  exchange 2 (`out`): open out + r_out.

Key shapes and sizes depend on the descriptor and the element count only, never on a mask.
"""
from __future__ import annotations

import functools

from math import comb

import torch

from suf.compiler import ir
from suf.core.checks import check_gate_input
from suf.core.ring import low_mask
from suf.fss import compare, lut as fss_lut, window
from suf.mpc.gate import Bits, Call, Key, Layout, Open, Raw, Words, get

STEP_MIN_INTERVALS = 16  # from this many constant intervals on, the step lookup is cheaper
CHUNK_POINTS = 1 << 16  # comparison points walked at once on CPU (~2.5 KB each at b = 50)
CUDA_CHUNK_POINTS = 1 << 20  # on a GPU the fused walk keeps nothing per level
MAX_OPEN_BITS = 64


# ================================================================================================
# the plan of a descriptor: which template carries which part
# ================================================================================================
class Plan:
    """The lowering choices for one descriptor (host ints only)."""

    def __init__(self, desc: ir.Descriptor):
        self.desc = desc
        if desc.bits < 8:
            raise ValueError(f"{desc.name}: the reduced input needs at least 8 bits for a DPF tree "
                             f"key, got {desc.bits}")
        M = desc.intervals
        self.step = desc.degree == 0 and M >= STEP_MIN_INTERVALS
        if self.step and desc.window is not None:
            raise ValueError(f"{desc.name}: a step lookup and a table window cannot share one "
                             f"opened word; fold the window into the intervals")
        self.indicators = 0 if self.step else M - 1  # opened masked bits
        self.walks = M if M > 1 else 0
        self.m = 0  # the window's small ring
        if desc.window is not None:
            big = ir.table_bound(desc)
            self.m = min(max(big.bit_length() + 2, 3), desc.n_out)
        self.sign = desc.window is not None or self.step
        self.v_bits = self.m if desc.window is not None else desc.n_out if self.step else 0
        self.low = self.indicators + (1 if self.sign else 0)  # XOR bits below V
        self.mid_bits = self.low + self.v_bits
        if self.mid_bits > MAX_OPEN_BITS:
            raise ValueError(f"{desc.name}: {self.mid_bits} opened bits per element do not fit "
                             f"one 64-bit word")
        # which interval polynomials contribute (all-zero ones are skipped)
        self.live = [i for i, p in enumerate(desc.polys) if any(c % (1 << desc.n_out) for c in p)] \
            if not self.step else []
        self.degree = max([len(desc.polys[i]) - 1 for i in self.live], default=0)

    def corr_names(self) -> list:
        """The dealer's correlated words per element, in key order."""
        names = ["r_out"] + [f"rho{t}" for t in range(1, self.degree + 1)]
        names += [f"pi{i}_{t}" for i in self.live for t in range(len(self.desc.polys[i]))]
        if self.sign:
            names += ["k1", "k2"] + (["k3"] if self.desc.window is not None else [])
        return names


_PLANS: dict = {}


def plan_of(desc: ir.Descriptor) -> Plan:
    """The descriptor's Plan, made once (the descriptor is kept alive beside it)."""
    hit = _PLANS.get(id(desc))
    if hit is None or hit[0] is not desc:
        hit = _PLANS[id(desc)] = (desc, Plan(desc))
    return hit[1]


def layout(desc: ir.Descriptor, shape) -> Layout:
    plan = plan_of(desc)
    N = int(torch.Size(shape).numel())
    if N == 0:
        raise ValueError(f"{desc.name}: needs at least one element")
    steps = reduce_steps(desc, N)
    parts = [Raw("dpf", compare.payload_size(desc.bits, N))]
    if plan.indicators:
        parts.append(Bits("r_e", N * plan.indicators))
    if plan.sign:
        parts += [Bits("r_u", N), Words("r_v", N, plan.v_bits, 2 if plan.v_bits <= 16 else 8)]
    parts.append(Words("corr", N * len(plan.corr_names()), desc.n_out))
    steps.append(Key("", tuple(parts)))
    if plan.mid_bits:
        steps.append(Open("mid", N, plan.mid_bits))
    steps.append(Open("out", N, desc.n_out))
    return Layout(steps)


def reduce_steps(desc, N: int) -> list:
    """The reduction's sub-gate call (TrWithSlack for "shift"; the others are local)."""
    r = desc.reduce
    if r.kind != "shift":
        return []
    return [Call("reduce", "tr_with_slack", ((N,),),
                 {"n": desc.n_in, "s": r.shift, "bits_out": r.bits})]


def reduce_keygen(dealer, desc, r_x: torch.Tensor, op: str) -> torch.Tensor:
    """r_y, the mask of the reduced input."""
    r = desc.reduce
    if r.kind == "shift":
        return get("tr_with_slack").keygen(dealer, r_x, n=desc.n_in, s=r.shift, bits_out=r.bits,
                                           op=f"{op}.reduce")
    return r_x & low_mask(r.bits)


def reduce_eval(party, desc, x_hat: torch.Tensor, op: str) -> torch.Tensor:
    """y^, the masked reduced input."""
    r = desc.reduce
    if r.kind == "shift":
        return get("tr_with_slack").eval(party, x_hat, n=desc.n_in, s=r.shift, bits_out=r.bits,
                                         op=f"{op}.reduce")
    return x_hat & low_mask(r.bits)


# ================================================================================================
# dealer
# ================================================================================================
def keygen(dealer, desc: ir.Descriptor, r_in: torch.Tensor, *, op: str) -> torch.Tensor:
    """Both parties' keys of the descriptor's gate for inputs masked with r_in (Z_{2^n_in});
    returns the output mask (Z_{2^n_out}, r_in's shape)."""
    check_gate_input(r_in, desc.n_in, "r_in")
    plan = plan_of(desc)
    lay = layout(desc, r_in.shape)
    N = r_in.numel()
    r_x = r_in.flatten()
    r_y = reduce_keygen(dealer, desc, r_x, op)
    k0, k1 = compare.keygen(r_y, desc.bits, dealer.stream)
    values = {"dpf": (compare.to_payload(k0), compare.to_payload(k1))}
    r_e = dealer.mask((N, plan.indicators), 1) if plan.indicators else None
    if r_e is not None:
        values["r_e"] = r_e
    r_u = r_v = None
    if plan.sign:
        r_u, r_v = dealer.mask(N, 1), dealer.mask(N, plan.v_bits)
        values.update(r_u=r_u, r_v=r_v)
    r_out = dealer.mask(N, desc.n_out)
    corr = _corr_terms(plan, r_x, r_e, r_u, r_v, r_out)
    values["corr"] = torch.stack([corr[name] for name in plan.corr_names()], dim=1)
    dealer.deal(op, r_in.shape, lay.key(), values)
    return r_out.view(r_in.shape)


def _interval_masks(plan: Plan, r_e: torch.Tensor) -> dict:
    """r_i of every interval: r_1..r_{M-1} dealt, r_0 their XOR (e_0 = 1 ^ XOR of the others)."""
    M = plan.desc.intervals
    masks = {i: r_e[:, i - 1] for i in range(1, M)}
    masks[0] = r_e.sum(1) & 1
    return masks


def _corr_terms(plan: Plan, r_x, r_e, r_u, r_v, r_out) -> dict:
    desc = plan.desc
    out = {"r_out": r_out}
    neg = -r_x  # (-r_x)^t below, exact mod 2^64 (the ring words are reduced by the dealer)
    powers = [torch.ones_like(r_x)]
    for _ in range(plan.degree):
        powers.append(powers[-1] * neg)
    for t in range(1, plan.degree + 1):
        out[f"rho{t}"] = powers[t]
    if plan.live:
        masks = _interval_masks(plan, r_e) if desc.intervals > 1 else {0: torch.zeros_like(r_x)}
        for i in plan.live:
            for t in range(len(desc.polys[i])):
                out[f"pi{i}_{t}"] = masks[i].to(r_x.device) * powers[t]
    if plan.sign:
        a = 1 - 2 * r_u
        out["k1"], out["k2"] = a, a * r_v
        if desc.window is not None:
            out["k3"] = a * ((r_v >> (plan.m - 1)) & 1)
    return out


# ================================================================================================
# party
# ================================================================================================
def eval(party, desc: ir.Descriptor, x_hat: torch.Tensor, *, op: str) -> torch.Tensor:
    """The opened masked f(x) + r_out (Z_{2^n_out}, x_hat's shape)."""
    check_gate_input(x_hat, desc.n_in, "x_hat")
    plan = plan_of(desc)
    lay = layout(desc, x_hat.shape)
    N = x_hat.numel()
    x = x_hat.flatten()
    y = reduce_eval(party, desc, x, op)
    key = party.read(op, lay.key())
    dk = compare.from_payload(key["dpf"], desc.bits, N, party.id, party.device)
    names = plan.corr_names()
    corr = {name: w for name, w in zip(names, key["corr"].view(N, len(names)).unbind(1))}

    bits, u, v = [], None, None
    if plan.indicators:
        e = _interval_bits(party, dk, desc, y)  # (M, N) XOR shares
        bits += [e[i] ^ key["r_e"].view(N, -1)[:, i - 1] for i in range(1, desc.intervals)]
    if desc.window is not None:
        u, v = _window_sums(party, dk, desc, y)
    elif plan.step:
        u, v = _step_sums(party, dk, desc, y)
    if plan.sign:
        bits.append(fss_lut.sign_bit_share(u, party.id) ^ key["r_u"])
        v = (v + key["r_v"]) & low_mask(plan.v_bits)
    opened_bits, v_hat = _open_mid(party, bits, v, plan, lay) if plan.mid_bits else ([], None)

    s = _output_share(party, plan, x, opened_bits, v_hat, corr)
    return party.open(s & low_mask(desc.n_out), lay.open("out")).view(x_hat.shape)


def _interval_bits(party, dk, desc: ir.Descriptor, y: torch.Tensor) -> torch.Tensor:
    """XOR shares of 1{y in I_i} for every interval (M, N), from M prefix-parity walks."""
    pts, lt = walk(dk, y, ir.starts_tensor(desc, y.device), desc.bits)
    nxt, lt_nxt = pts.roll(-1, 0), lt.roll(-1, 0)  # a_M = 2^b = a_0
    return lt ^ lt_nxt ^ (party.id & (nxt > pts).to(torch.int64))


@functools.lru_cache(maxsize=256)
def _cuts_tensor(cuts: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Cut points on `device`, copied there once (read only)."""
    return torch.tensor(cuts, dtype=torch.int64).to(device)


def walk(dk, y_hat: torch.Tensor, cuts, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The points y_j = y^ - a_j (one row per cut a_j) and this party's XOR shares of
    1{y_j < r_y} from the DPF key of r_y: one prefix-parity walk each."""
    a = cuts if isinstance(cuts, torch.Tensor) else _cuts_tensor(tuple(cuts), y_hat.device)
    pts = (y_hat[None, :] - a[:, None]) & low_mask(b)
    return pts, compare.eval_lt(dk, pts)


def arc_bit(party, pts_a, lt_a, pts_c, lt_c) -> torch.Tensor:
    """XOR shares of 1{y in [a, c)} (cyclic, a != c) from the walks at a and c."""
    return lt_a ^ lt_c ^ (party.id & (pts_c > pts_a).to(torch.int64))


def _window_sums(party, dk, desc: ir.Descriptor, y: torch.Tensor):
    """(u, v) = ±(S, W) over the window: u0 + u1 = σ·1{y in window}, v0 + v1 = that times T."""
    w = desc.window
    k = w.k
    # point j = y^ - y' for y' = w + c, c in [0, 2^k): j runs over [y^ - w - 2^k + 1, y^ - w],
    # whose i-th point belongs to c = 2^k - 1 - i
    start = (y - w.start - (1 << k) + 1) & low_mask(desc.bits)
    weights = ir.window_weights(desc, y.device)
    S, W = window.eval_window(dk, start, k, weights)
    sign = 1 - 2 * party.id
    return sign * S, sign * W


def _step_sums(party, dk, desc: ir.Descriptor, y: torch.Tensor):
    """(u, v) = ±(Σ_i e_i, Σ_i e_i·c_i) over the one-hot of y's interval: u0 + u1 = σ,
    v0 + v1 = σ·c; elements in chunks of at most CHUNK_POINTS walks."""
    consts = ir.coefficients(desc, y.device)[:, 0, None]
    budget = CUDA_CHUNK_POINTS if y.device.type == "cuda" else CHUNK_POINTS
    step = max(1, budget // desc.intervals)
    us, vs = [], []
    for a in range(0, y.numel(), step):
        e = _interval_bits(party, dk[a:a + step], desc, y[a:a + step])
        us.append(e.sum(0))
        vs.append((consts * e).sum(0))
    sign = 1 - 2 * party.id
    return sign * torch.cat(us), sign * torch.cat(vs)


def _open_mid(party, bits: list, v: torch.Tensor | None, plan: Plan, lay: Layout):
    """Open the XOR bits (low positions) and V (top field) in one additive word; returns the
    opened bits and V^."""
    word = torch.zeros_like(bits[0]) if bits else torch.zeros_like(v)
    for i, bit in enumerate(bits):
        word = word | (bit << i)
    if v is not None:
        word = word + (v << plan.low)
    total = party.open(word & low_mask(plan.mid_bits), lay.open("mid"))
    carry = torch.zeros_like(total)
    opened = []
    for i, mine in enumerate(bits):
        xor = ((total >> i) & 1) ^ carry
        other = xor ^ mine
        carry = (mine & other) | (carry & (mine ^ other))  # the carry of mine + other + carry
        opened.append(xor)
    v_hat = ((total >> plan.low) - carry) & low_mask(plan.v_bits) if v is not None else None
    return opened, v_hat


def _output_share(party, plan: Plan, x_hat, opened_bits: list, v_hat, corr: dict) -> torch.Tensor:
    desc = plan.desc
    p1 = party.id == 1
    s = corr["r_out"].clone()
    # Σ_i e_i·P_i(x)
    if plan.live:
        if desc.intervals > 1:
            e_hat = {i: opened_bits[i - 1] for i in range(1, desc.intervals)}
            acc = torch.zeros_like(x_hat)
            for i in range(1, desc.intervals):
                acc = acc ^ e_hat[i]
            e_hat[0] = acc ^ 1
        else:
            e_hat = {0: torch.ones_like(x_hat)}
        xp = [torch.ones_like(x_hat)]  # x^^j
        for _ in range(plan.degree):
            xp.append(xp[-1] * x_hat)
        rho = [torch.ones_like(x_hat) if p1 else torch.zeros_like(x_hat)]  # shares of (-r_x)^t
        rho += [corr[f"rho{t}"] for t in range(1, plan.degree + 1)]
        for i in plan.live:
            eh = e_hat[i]
            for j, c in enumerate(desc.polys[i]):
                if c % (1 << desc.n_out) == 0:
                    continue
                term = torch.zeros_like(x_hat)
                for t in range(j + 1):
                    # e_i·(-r_x)^t = e^_i·(-r_x)^t + (1 - 2e^_i)·r_i·(-r_x)^t
                    shared = eh * rho[t] + (1 - 2 * eh) * corr[f"pi{i}_{t}"]
                    term = term + comb(j, t) * xp[j - t] * shared
                s = s + ir.wrap64(c) * term
    # (2U - 1)·V
    if plan.sign:
        sgn = 2 * opened_bits[-1] - 1
        if desc.window is not None:
            m = plan.m
            vp = (v_hat + (1 << (m - 2))) & low_mask(m)
            pub = vp - (1 << (m - 2))
            c = 1 - ((vp >> (m - 1)) & 1)
            s = s + sgn * (corr["k1"] * pub - corr["k2"] + (c << m) * corr["k3"])
        else:
            s = s + sgn * (corr["k1"] * v_hat - corr["k2"])
    return s


def work(desc: ir.Descriptor, count: int) -> dict:
    """Per party and `count` elements: prefix-parity walks and PRG calls of the DPF part."""
    plan = plan_of(desc)
    depth = desc.bits - 7
    calls = count * plan.walks * depth
    if desc.window is not None:
        calls += count * window.prg_calls(desc.bits, desc.window.k)
    return {"walks": count * plan.walks, "prg_calls": calls}
