"""BGI distributed point function (DPF) with early termination, in SIGMA's layout (sigma_spec §2.2).

Two parties hold keys k0, k1 for a point α in [0, 2^n); for every x their 1-bit outputs are
XOR-shares of 1{x == α}.  The tree has D = n - 7 levels, path bits MSB-first (level i follows bit
(x >> (n-1-i)) & 1), and each leaf is a 128-bit block whose bit (x & 127) is the output at x.
For n <= 7 the key is a secret-shared truth table instead (suf.fss.sstable).

Keys are batched: a `DPFKey` holds N independent keys of one party as tensors (the Triton kernels
of suf.fss.kernels code against exactly this layout):
  seed  int64 (N, 2)        the party's root seed; bit 0 is its control bit t (t_0 = t_1 ^ 1)
  cw    int64 (D-1, N, 2)   correction seeds of levels 0..D-2, bit 0 = the t_L correction
  tr    int64 (D-1, N)      the t_R correction bits of levels 0..D-2
  leaf  int64 (2, N, 2)     leaf corrections for direction 0 and 1 at the last level
Evaluation at level i < D-1: child = G(s)[bit]; if t: child ^= cw[i] (bit 0 replaced by tr[i] for
a right child); t = bit 0 of child.  Last level: block = G(s)[bit] ^ t·leaf[bit].
G is suf.prg.expand (one ChaCha12 block gives both children).

Keygen (BGI'16): both parties' seeds agree off α's path and differ on it, with t_0 ^ t_1 = 1 exactly
on the path.  At level i with α's bit a ("keep" side a, "lose" side 1-a), the children of the two
parties are c_b[d]; the correction is
  scw  = (c_0[1-a] ^ c_1[1-a]) with bit 0 cleared     -> equal seeds on the lose side,
  t_L  = t(c_0[0]) ^ t(c_1[0]) ^ a ^ 1,  t_R = t(c_0[1]) ^ t(c_1[1]) ^ a
                                                     -> t differs on the keep side only.
Only the party with t = 1 applies it, and exactly one does on the path.  The leaf corrections are
c_0[d] ^ c_1[d], with the one-hot bit 1 << (α & 127) XORed into the keep side: the two leaf blocks
then XOR to that one-hot block at α's leaf and to 0 everywhere else.

Serialization (`to_payload`/`from_payload` on tensors, `to_bytes`/`from_bytes`; no headers; sizes equal SIGMA's, sigma_spec §0.3, §2.2):
  scw: D blocks per key, level-major (level 0 = the root seed, level l >= 1 = cw[l-1]); l0[N]; l1[N];
  then tR, either "point"/"lt" (comparison layout): D levels x ceil(N/32) u32 words, 32 keys per
  word (key j at bit j % 32), level 0 unused (zero) and level l = tr[l-1] (aligned with scw);
  or "evalall": one u32 per key, bit i = tr[i].
  Blocks are 16 bytes little-endian (lo then hi).  Truth tables: 2^max(0, n-3) bytes per key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch

from suf import prg
from suf.fss import kernels, sstable
from suf.fss.sstable import TableKey, block_bit, block_bits, low_mask
from suf.core.checks import check_bits, check_party
from suf.core.config import debug_checks
from suf.core.ring import Ring, pack, unpack

INT64 = torch.int64
LEAF_BITS = 7  # early termination: the last 7 levels are one 128-bit leaf block
KINDS = ("point", "lt", "evalall")
EVAL_ALL_MAX_BITS = 32  # full-domain evaluation returns N·2^n int64; keep it to small domains
# On CUDA the tree walks and keygen run as fused Triton kernels (suf.fss.kernels) that give the same
# bits as the torch code here; the kernel tests switch this off to compare the two paths.
USE_KERNELS = True


@dataclass
class DPFKey:
    """N tree keys of one party for n-bit points (n >= 8); layout in the module docstring."""
    n: int
    party: int
    seed: torch.Tensor
    cw: torch.Tensor
    tr: torch.Tensor
    leaf: torch.Tensor

    def __post_init__(self):
        if not isinstance(self.n, int) or not LEAF_BITS < self.n <= 64:
            raise ValueError(f"a DPF tree key needs n in [8, 64], got {self.n!r}")
        check_party(self.party)
        names = ("seed", "cw", "tr", "leaf")
        for name in names:
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or t.dtype != INT64:
                raise TypeError(f"DPFKey.{name} must be an int64 tensor")
        N, D = self.seed.shape[0], self.n - LEAF_BITS
        expected = {"seed": (N, 2), "cw": (D - 1, N, 2), "tr": (D - 1, N), "leaf": (2, N, 2)}
        for name in names:
            shape = tuple(getattr(self, name).shape)
            if shape != expected[name]:
                raise ValueError(f"DPFKey.{name} has shape {shape}, expected {expected[name]} "
                                 f"for N={N} keys of n={self.n} bits")
        if len({getattr(self, name).device for name in names}) != 1:
            raise ValueError("DPFKey tensors lie on different devices")

    @property
    def N(self) -> int:
        return self.seed.shape[0]

    @property
    def depth(self) -> int:
        return self.n - LEAF_BITS

    @property
    def device(self) -> torch.device:
        return self.seed.device

    def __getitem__(self, idx) -> "DPFKey":
        """The keys idx (a slice or an index tensor) of the batch."""
        return DPFKey(self.n, self.party, self.seed[idx], self.cw[:, idx], self.tr[:, idx],
                      self.leaf[:, idx])

    def to(self, device) -> "DPFKey":
        return DPFKey(self.n, self.party, self.seed.to(device), self.cw.to(device),
                      self.tr.to(device), self.leaf.to(device))


Key = Union[DPFKey, TableKey]


# -- validation shared by dpf, compare and lut -------------------------------------------------


def check_deal(alphas: torch.Tensor, n: int, stream: prg.Stream, what: str = "alphas") -> None:
    """Arguments of a keygen: n-bit points, one per key, on the dealer stream's device."""
    check_bits(n, 1, 64, "n")
    if not isinstance(stream, prg.Stream):
        raise TypeError(f"stream must be a suf.prg.Stream, got {type(stream).__name__}")
    Ring(n).check(alphas, what)
    if alphas.dim() != 1 or alphas.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 1-D tensor, got shape {tuple(alphas.shape)}")
    dealer = stream.device
    if dealer.type == "cuda" and dealer.index is None:  # "cuda" means the current CUDA device
        dealer = torch.device("cuda", torch.cuda.current_device())
    if alphas.device != dealer:
        raise ValueError(f"{what} lie on {alphas.device} but the stream deals on {stream.device}")


def check_key(key, n=None, party=None) -> None:
    """A DPFKey or TableKey, for n-bit inputs and the given party when those are asked for."""
    if not isinstance(key, (DPFKey, TableKey)):
        raise TypeError(f"expected a DPFKey or TableKey, got {type(key).__name__}")
    if n is not None and key.n != n:
        raise ValueError(f"the key is for {key.n}-bit inputs, but n={n} was asked for")
    if party is not None and key.party != party:
        raise ValueError(f"the key belongs to party {key.party}, but party {party} was asked for")


def check_points(key: Key, x: torch.Tensor, what: str = "x") -> None:
    """Evaluation points: int64 of shape (N,) or (E, N), in [0, 2^n) (values scanned in debug
    mode only: a device sync), on the key's device."""
    if debug_checks():
        Ring(key.n).check(x, what)
    else:
        Ring(key.n).check_type(x, what)
    if x.dim() not in (1, 2) or x.shape[-1] != key.N:
        raise ValueError(f"{what} must have shape (N,) or (E, N) with N={key.N} keys, "
                         f"got {tuple(x.shape)}")
    if x.device != key.device:
        raise ValueError(f"{what} lies on {x.device} but the key on {key.device}")


# -- keygen ----------------------------------------------------------------------------------
def keygen(alphas: torch.Tensor, n: int, stream: prg.Stream) -> tuple[Key, Key]:
    """Keys (k0, k1) of 1{x == α} for each α in alphas (int64 (N,), values in [0, 2^n)).

    All randomness comes from `stream` (two root seeds per key), so a stream with the same key and
    position deals the same keys on any device.  n <= 7 gives truth tables (TableKey).
    """
    check_deal(alphas, n, stream)
    if n <= LEAF_BITS:
        return sstable.keygen(alphas, n, stream, "point")
    D, N = n - LEAF_BITS, alphas.shape[0]
    s = stream.blocks((2, N))  # root seeds of party 0 and party 1
    fused = kernels.dpf_keygen(alphas, s[0], s[1], n) if USE_KERNELS else None
    if fused is not None:
        seed0, seed1, cw, tr, leaf = fused
        return DPFKey(n, 0, seed0, cw, tr, leaf), DPFKey(n, 1, seed1, cw, tr, leaf)
    s[0, :, 0] = (s[0, :, 0] & ~1) | ((s[1, :, 0] & 1) ^ 1)  # t_0 = t_1 ^ 1
    root = s
    cws, trs = [], []
    for i in range(D):
        a = (alphas >> (n - 1 - i)) & 1  # α's direction at this level: the keep side
        t = s[..., 0] & 1  # (2, N)
        g = prg.expand(s)
        left, right = g[:, :, 0], g[:, :, 1]  # (2, N, 2) children of both parties
        dl, dr = left[0] ^ left[1], right[0] ^ right[1]
        if i < D - 1:
            lose = torch.where(a[:, None] == 1, dl, dr)
            t_l = (dl[:, 0] & 1) ^ a ^ 1
            t_r = (dr[:, 0] & 1) ^ a
            scw = lose[:, 0] & ~1
            cws.append(torch.stack([scw | t_l, lose[:, 1]], dim=-1))
            trs.append(t_r)
            keep_cw = torch.stack([scw | torch.where(a == 1, t_r, t_l), lose[:, 1]], dim=-1)
            child = torch.where(a[None, :, None] == 1, right, left)
            s = child ^ (keep_cw & -t[..., None])
        else:
            pos = alphas & 127
            onehot = low_mask(pos + 1) ^ low_mask(pos)
            zero = torch.zeros_like(onehot)
            leaf = torch.stack([dl ^ torch.where(a[:, None] == 0, onehot, zero),
                                dr ^ torch.where(a[:, None] == 1, onehot, zero)])
    cw = torch.stack(cws) if cws else root.new_zeros((0, N, 2))
    tr = torch.stack(trs) if trs else root.new_zeros((0, N))
    return (DPFKey(n, 0, root[0], cw, tr, leaf), DPFKey(n, 1, root[1], cw, tr, leaf))


# -- evaluation ------------------------------------------------------------------------------
def walk(key: DPFKey, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Walk each key's tree along x (shape (N,) or (E, N), checked by the caller).

    Returns the leaf blocks (x.shape + (2,)) and the control bits t of the D nodes on the path
    above the leaf packed as int64 of x's shape: bit n-1-i holds the t of level i (the root's at
    n-1, the level whose step is x's bit n-1-i), bits below 7 are zero.  One PRG call per level;
    E > 1 points of a key expand the tree nodes their paths share once (_walk_shared).
    """
    if x.dim() == 2 and x.shape[0] > 1:
        return _walk_shared(key, x)
    n, D = key.n, key.depth
    shifts = torch.arange(n - 1, n - 1 - D, -1, device=x.device).view((D,) + (1,) * x.dim())
    rights = (((x >> shifts) & 1) == 1)[..., None]  # (D,) + x.shape + (1,): the steps
    left_corrs, right_corrs = _corrections(key).unbind(1)
    s = key.seed.expand(x.shape + (2,))
    tbits = torch.zeros_like(x)
    for i in range(D):
        t = s[..., 0] & 1
        tbits |= t << (n - 1 - i)
        g = prg.expand(s)
        child = torch.where(rights[i], g[..., 1, :], g[..., 0, :])
        corr = torch.where(rights[i], right_corrs[i], left_corrs[i])
        s = child ^ (corr & -t[..., None])
    return s, tbits


def _corrections(key: DPFKey) -> torch.Tensor:
    """The corrections by level, direction and key, (D, 2, N, 2): for a right step the t_R bit
    replaces bit 0 of the correction seed; the last level's are the leaf corrections."""
    cw_right = torch.stack([(key.cw[..., 0] & ~1) | key.tr, key.cw[..., 1]], dim=-1)
    return torch.cat([torch.stack([key.cw, cw_right], dim=1), key.leaf[None]])


def _walk_shared(key: DPFKey, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`walk` for E > 1 points per key (x of shape (E, N)), expanding each tree node once.

    A key's points sorted by value share the nodes of their common prefixes: at depth i the nodes
    on their paths are the distinct i-bit prefixes, and a point starts a new node there iff its top
    i bits differ from those of the point before it.  The top levels of E points hold at most 2^i
    nodes, and nearby points share most of their paths, so far fewer PRG calls than E per level.
    Each node carries the control bits of its path, so the work per level is per node, not per
    point.  (The int64 sort is signed, which for n = 64 puts the top half first: prefixes still
    group.)
    """
    n, D = key.n, key.depth
    E, N = x.shape
    P, dev = N * E, x.device
    xs, order = x.T.sort(dim=1)  # (N, E): each key's points ascending
    xs = xs.reshape(-1)
    starts = torch.zeros(P, dtype=torch.bool, device=dev)
    starts[::E] = True  # at depth 0 each key's first point starts its root
    changed = xs ^ torch.cat([xs[:1], xs[:-1]])  # the bits that differ from the point before
    changed[starts] = -1  # a key's first point starts a node at every depth
    corrs = _corrections(key).view(D, 2 * N, 2)  # row d·N + j: key j's for direction d
    point_keys = torch.arange(N, device=dev).repeat_interleave(E)
    # node m at depth i holds the sorted points from reps[m] on, up to the next start
    s, tbits, reps = key.seed, torch.zeros(N, dtype=INT64, device=dev), starts.nonzero()[:, 0]
    shared = True  # False from the depth on where every point has a node of its own
    for i in range(D):
        t = s[:, 0] & 1
        tbits = tbits | (t << (n - 1 - i))
        blocks = prg.expand(s).view(-1, 2)  # block 4m + d: child d of node m
        if shared:
            child_starts = (changed >> (n - 1 - i)) != 0  # a new (i+1)-bit prefix
            child_reps = child_starts.nonzero()[:, 0]
            # a child's parent: the last node at depth i that starts at or before it
            parent = starts.index_select(0, child_reps).cumsum(0) - 1
            t, tbits = t.index_select(0, parent), tbits.index_select(0, parent)
            reps, starts = child_reps, child_starts
            shared = reps.numel() < P
            bits, keys = xs.index_select(0, reps), point_keys.index_select(0, reps)
        else:  # node m is point m's
            parent, bits = reps, xs
        right = (bits >> (n - 1 - i)) & 1
        child = blocks.index_select(0, 4 * parent + right)
        corr = corrs[i].index_select(0, right * N + keys)
        s = child ^ (corr & -t[:, None])
    # each point's leaf node, in the points' order: point (e, j) is sorted position j·E + its
    # rank among key j's points
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(E, device=dev).expand(N, E))
    sorted_pos = (rank + torch.arange(0, P, E, device=dev)[:, None]).T.reshape(-1)
    leaf_node = (starts.cumsum(0) - 1).index_select(0, sorted_pos)
    return s.index_select(0, leaf_node).view(E, N, 2), tbits.index_select(0, leaf_node).view(E, N)


def eval_point(key: Key, x: torch.Tensor, *, n: int | None = None,
               party: int | None = None) -> torch.Tensor:
    """This party's XOR-share of 1{x == α}, for x of shape (N,) or (E, N) (one key, E points).

    n, party: when given, the key must be for n-bit inputs and belong to that party.
    """
    check_key(key, n, party)
    check_points(key, x)
    if isinstance(key, TableKey):
        if key.kind != "point":
            raise ValueError("eval_point needs a point key; this truth table is a comparison key")
        return sstable.lookup(key, x)
    fused = fused_walk(kernels.dpf_eval_point, key, x)
    if fused is not None:
        return fused
    block, _ = walk(key, x)
    return block_bit(block, x & 127)


def fused_walk(kernel, key: DPFKey, x: torch.Tensor):
    """Run a Triton walk kernel (None when unavailable).  A kernel call takes up to
    kernels.MAX_POINTS points per key; more points are evaluated on repeated keys."""
    if not USE_KERNELS or not kernels.available(x):
        return None
    if x.dim() == 1 or x.shape[0] <= kernels.MAX_POINTS:
        return kernel(key.seed, key.cw, key.tr, key.leaf, x, key.n, key.party)
    E, N = x.shape
    rep = key[torch.arange(N, device=x.device).repeat(E)]
    return kernel(rep.seed, rep.cw, rep.tr, rep.leaf, x.reshape(-1), key.n,
                  key.party).view(E, N)


def _leaf_blocks(key: DPFKey) -> torch.Tensor:
    """Breadth-first expansion of the whole tree: (N, 2^D, 2) leaf blocks, leaf j = path j."""
    N, D = key.N, key.depth
    s = key.seed[:, None, :]
    for i in range(D):
        t = s[..., 0] & 1  # (N, M)
        g = prg.expand(s)[..., :2, :]  # (N, M, 2 directions, 2)
        if i < D - 1:
            cw = key.cw[i]
            cw_right = torch.stack([(cw[:, 0] & ~1) | key.tr[i], cw[:, 1]], dim=-1)
            corr = torch.stack([cw, cw_right], dim=1)  # (N, 2, 2)
        else:
            corr = key.leaf.transpose(0, 1)
        g = g ^ (corr[:, None] & -t[..., None, None])
        s = g.reshape(N, -1, 2)  # children of node m are 2m (left) and 2m + 1 (right)
    return s


def eval_all(key: Key, *, n: int | None = None, party: int | None = None) -> torch.Tensor:
    """Full-domain evaluation: (N, 2^n) XOR-shares of 1{j == α} for every j.

    Memory is N·2^n int64 (plus the same again in temporaries), so this is for small domains
    (n <= 32); the tree costs 2^(n-7) - 1 PRG calls per key.
    """
    check_key(key, n, party)
    if key.n > EVAL_ALL_MAX_BITS:
        raise ValueError(f"eval_all is for domains of at most {EVAL_ALL_MAX_BITS} bits "
                         f"(it returns N·2^n values), got n={key.n}")
    if isinstance(key, TableKey):
        if key.kind != "point":
            raise ValueError("eval_all needs a point key; this truth table is a comparison key")
        return sstable.eval_all(key)
    return block_bits(_leaf_blocks(key)).reshape(key.N, 1 << key.n)


# -- serialization ---------------------------------------------------------------------------
def _check_layout(kind, n, N) -> None:
    if kind not in KINDS:
        raise ValueError(f"key kind must be one of {KINDS}, got {kind!r}")
    check_bits(n, 1, 64, "n")
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"N (the number of keys) must be a positive int, got {N!r}")
    if kind == "evalall" and n > EVAL_ALL_MAX_BITS:
        raise ValueError(f"eval-all keys are for domains of at most {EVAL_ALL_MAX_BITS} bits, "
                         f"got n={n}")


def payload_size(kind: str, n: int, N: int) -> int:
    """Bytes of N keys of the given kind ("point", "lt" or "evalall") for n-bit inputs."""
    _check_layout(kind, n, N)
    if n <= LEAF_BITS:
        return sstable.payload_size(n, N)
    D = n - LEAF_BITS
    tr_bytes = 4 * N if kind == "evalall" else 4 * D * -(-N // 32)
    return 16 * D * N + 32 * N + tr_bytes


def to_payload(key: Key, kind: str = "point") -> torch.Tensor:
    """The key's payload in the layout of `kind` (module docstring; no header) as a flat
    torch.uint8 tensor on the key's device: dealing on a GPU never leaves it."""
    check_key(key)
    _check_layout(kind, key.n, key.N)
    if isinstance(key, TableKey):
        table_kind = "lt" if kind == "lt" else "point"
        if key.kind != table_kind:
            raise ValueError(f"a {key.kind!r} truth table cannot be written as a {kind!r} key")
        return sstable.to_payload(key)
    D, N, dev = key.depth, key.N, key.device
    blocks = torch.cat([key.seed[None], key.cw, key.leaf])  # scw levels, then l0, l1
    if kind == "evalall":
        shifts = torch.arange(D - 1, dtype=INT64, device=dev)[:, None]
        tr = pack((key.tr << shifts).sum(0), 32, type_bytes=4)
    else:
        # D levels of ceil(N/32) words: pad each level to whole words, level 0 zero
        levels = torch.zeros(D, _words32(N) * 32, dtype=INT64, device=dev)
        levels[1:, :N] = key.tr
        tr = pack(levels.reshape(-1), 1)
    return torch.cat([pack(blocks.reshape(-1), 64), tr])


def to_bytes(key: Key, kind: str = "point") -> bytes:
    """`to_payload` as bytes."""
    return to_payload(key, kind).cpu().numpy().tobytes()


def _words32(N: int) -> int:
    return -(-N // 32)


def from_payload(buf, n: int, N: int, party: int, kind: str = "point", device="cpu") -> Key:
    """Inverse of `to_payload`: N keys of `party` for n-bit inputs, placed on `device`.  buf: a
    flat torch.uint8 tensor (read, never written) or bytes-like."""
    raw = _byte_tensor(buf)
    _check_layout(kind, n, N)
    check_party(party)
    size = payload_size(kind, n, N)
    if raw.numel() != size:
        raise ValueError(f"key payload has {raw.numel()} bytes, expected {size} for N={N} "
                         f"{kind!r} keys of n={n} bits")
    raw = raw.to(device)
    if n <= LEAF_BITS:
        return sstable.from_payload(raw, n, N, party, "lt" if kind == "lt" else "point")
    D = n - LEAF_BITS
    nb = 16 * (D + 2) * N
    blocks = unpack(raw[:nb], 64, 2 * (D + 2) * N).reshape(D + 2, N, 2)
    rest = raw[nb:]
    if kind == "evalall":
        words = unpack(rest, 32, N, type_bytes=4)
        # key files are checksummed: scanning the payload (a device sync) is for debug mode
        if debug_checks() and bool((words >> (D - 1)).any()):
            raise ValueError(f"eval-all tR words have bits set beyond the {D - 1} levels")
        tr = (words[None] >> torch.arange(D - 1, dtype=INT64, device=raw.device)[:, None]) & 1
    else:
        width = _words32(N) * 32
        levels = unpack(rest, 1, D * width).view(D, width)[:, :N]
        if debug_checks() and bool(levels[0].any()):
            raise ValueError("the unused tR level 0 is not zero (corrupt key payload)")
        tr = levels[1:].contiguous()
    return DPFKey(n, party, blocks[0], blocks[1:D], tr, blocks[D:])


def from_bytes(buf, n: int, N: int, party: int, kind: str = "point", device="cpu") -> Key:
    """`from_payload` (kept under the name the byte-oriented callers use)."""
    return from_payload(buf, n, N, party, kind, device)


def _byte_tensor(buf) -> torch.Tensor:
    if isinstance(buf, torch.Tensor):
        if buf.dtype != torch.uint8 or buf.dim() != 1:
            raise TypeError("a key payload tensor must be flat torch.uint8")
        return buf
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f"key payload must be bytes or a uint8 tensor, got {type(buf).__name__}")
    return torch.from_numpy(np.frombuffer(buf, dtype=np.uint8).copy())
