"""CPU and CUDA deal identical keys and compute identical outputs from the same seeds
(skipped without a GPU; run on the device machine)."""
import pytest
import torch

from harness import masked, run_gate
from suf.runtime.gate_specs import make_spec
from suf.keys import MemoryKeys
from suf.prg import Stream
from suf.mpc.core import Dealer

pytestmark = pytest.mark.cuda
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

SEED = b"\x5a" * 32


def _deal(spec, device):
    stores = [MemoryKeys(p, spec.ring_bits, bytes(16), bytes(32)) for p in (0, 1)]
    dealer = Dealer(Stream(SEED, device=device), stores, device)
    masks = [dealer.mask(i.shape, i.bits) for i in spec.inputs]
    r_out = spec.keygen(dealer, masks)
    for s in stores:
        s.close()
    chunks = []
    for p, s in enumerate(stores):
        s.open(p)
        while s.remaining:
            info = s.peek()
            chunks.append((p, info.op, bytes(s.next_tensor(info.op).cpu().numpy())))
    return [m.cpu() for m in masks], r_out.cpu(), chunks


@pytest.mark.parametrize("gate,shift", [("trfloor", 12), ("trws", 12), ("relu", 12), ("lut", 8),
                                        ("matmul", 12)])
def test_same_keys_and_outputs_on_cpu_and_cuda(gate, shift):
    spec = make_spec(gate, bits=50, count=512, shift=shift)
    cpu, cuda = _deal(spec, "cpu"), _deal(spec, "cuda")
    assert all(torch.equal(a, b) for a, b in zip(cpu[0], cuda[0]))
    assert torch.equal(cpu[1], cuda[1])
    assert cpu[2] == cuda[2], "CPU and CUDA dealt different keys"

    values = spec.draw(Stream(b"\x33" * 32))
    outs = {}
    for device in ("cpu", "cuda"):
        ctx = {}

        def deal(d):
            ctx["masks"] = [d.mask(i.shape, i.bits) for i in spec.inputs]
            ctx["r_out"] = spec.keygen(d, ctx["masks"])
            return ctx

        def ev(p, c):
            hats = [masked(v.to(p.device), m, i.bits)
                    for v, m, i in zip(values, c["masks"], spec.inputs)]
            return spec.eval(p, hats)

        run = run_gate(deal, ev, device=device, seed=SEED)
        outs[device] = [o.cpu() for o in run.outputs]
    assert torch.equal(outs["cpu"][0], outs["cuda"][0]) and torch.equal(outs["cpu"][1], outs["cuda"][1])
