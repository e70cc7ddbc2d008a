"""CPU and CUDA deal identical keys and compute identical outputs from the same seeds, for every
registered gate on its own example (what `suf gate NAME` runs).  Marked `cuda`: the conftest hook
skips the module without a GPU; it runs on the device machine."""
import pytest
import torch

import suf.compiler  # noqa: F401  (registers SUF mode's gates)
import suf.gates  # noqa: F401  (registers every gate)
from harness import masked, run_gate
from suf.keys import MemoryKeys
from suf.mpc import gate as gates
from suf.mpc.dealer import Dealer
from suf.prg import Stream

pytestmark = pytest.mark.cuda

SEED = b"\x5a" * 32
BITS, COUNT = 50, 512


def _secret(ex):
    return [i for i, inp in enumerate(ex.inputs) if inp.owner >= 0]


def _keygen(g, ex, name, dealer):
    masks = {i: dealer.mask(ex.inputs[i].shape, ex.inputs[i].bits) for i in _secret(ex)}
    r_out = g.keygen(dealer, *masks.values(), op=name, **ex.params)
    return masks, r_out


def _deal(name, device):
    """The masks, the output mask and every key chunk's bytes, dealt on `device`."""
    g, ex = gates.get(name), gates.get(name).example(BITS, COUNT)
    stores = [MemoryKeys(p, BITS, bytes(16), bytes(32)) for p in (0, 1)]
    masks, r_out = _keygen(g, ex, name, Dealer(Stream(SEED, device=device), stores, device))
    for s in stores:
        s.close()
    chunks = []
    for p, s in enumerate(stores):
        s.open(p)
        while s.remaining:
            info = s.peek()
            chunks.append((p, info.op, bytes(s.next_tensor(info.op).cpu().numpy())))
    return [m.cpu() for m in masks.values()], r_out.cpu(), chunks


def _outputs(name, device):
    g, ex = gates.get(name), gates.get(name).example(BITS, COUNT)
    xs = ex.draw(Stream(b"\x33" * 32))

    def deal(dealer):
        return _keygen(g, ex, name, dealer)

    def evaluate(party, ctx):
        masks = ctx[0]
        hats = [masked(x.to(party.device), masks[i], ex.inputs[i].bits) if i in masks
                else x.to(party.device) for i, x in enumerate(xs)]
        return g.eval(party, *hats, op=name, **ex.params)

    run = run_gate(deal, evaluate, ring_bits=BITS, device=device, seed=SEED)
    return [o.cpu() for o in run.outputs]


@pytest.mark.parametrize("name", sorted(gates.REGISTRY))
def test_same_keys_and_outputs_on_cpu_and_cuda(name):
    cpu, cuda = _deal(name, "cpu"), _deal(name, "cuda")
    assert all(torch.equal(a, b) for a, b in zip(cpu[0], cuda[0]))
    assert torch.equal(cpu[1], cuda[1])
    assert cpu[2] == cuda[2], "CPU and CUDA dealt different keys"
    outs = {device: _outputs(name, device) for device in ("cpu", "cuda")}
    assert torch.equal(outs["cpu"][0], outs["cuda"][0])
    assert torch.equal(outs["cpu"][1], outs["cuda"][1])
