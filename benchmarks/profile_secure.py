"""Where the time of one secure inference goes: cProfile of the dealer and of P0 (the main thread
of `run_secure`), and the wall time of each gate scope of both parties.

    HF_HUB_OFFLINE=1 python benchmarks/profile_secure.py bert-base --layers 1 --device cuda

--layers cuts the model to its first layers (random weights) so one layer's cost can be read
without running all of them; costs per layer are the same in every layer.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch

from suf.models import transformer as models
from suf.runtime import run_secure, serving as runtime
from suf.models.transformer import from_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", choices=("bert-tiny", "bert-base", "bert-large", "gpt2"))
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--online-only", action="store_true", help="profile P0's online phase only")
    args = ap.parse_args()
    cfg = models.model_config(args.model)
    setattr(cfg, "n_layer" if args.model == "gpt2" else "num_hidden_layers", args.layers)
    model = from_config(cfg, name=args.model)
    gen = torch.Generator().manual_seed(0)
    batch = model.batch(torch.randint(1, model.spec.vocab, (args.batch, args.length),
                                      generator=gen), args.length)
    want = model.reference(batch)
    prof = cProfile.Profile()
    if args.online_only:  # profile P0's online phase only (it runs in this thread)
        serve = runtime.run_party

        def profiled_serve(party, *a, **k):
            if party.id != 0:
                return serve(party, *a, **k)
            prof.enable()
            try:
                return serve(party, *a, **k)
            finally:
                prof.disable()

        runtime.run_party = profiled_serve
    t0 = time.perf_counter()
    if not args.online_only:
        prof.enable()
    run = run_secure(model, batch, device=args.device)
    prof.disable()
    total = time.perf_counter() - t0
    print(f"{args.model} L={args.length} B={args.batch} layers={args.layers} {args.device}: "
          f"equal={torch.equal(run.output.cpu(), want)} keygen {run.deal.keygen_s:.2f} s, "
          f"online {run.online_s[0]:.2f}/{run.online_s[1]:.2f} s, total {total:.2f} s, "
          f"key bytes {run.deal.key_bytes[0]:,}")
    for p, st in enumerate(run.stats):
        rows = [s for s in st.to_dict()["scopes"] if s["phase"] == "online" and s["depth"] <= 2]
        print(f"P{p} scopes (wall s, comm s, exchanges):")
        for s in rows:
            print(f"  {'  ' * (s['depth'] - 1)}{s['layer']}/{s['op']}: {s['wall_s']:.3f} "
                  f"{s['total']['comm_s']:.3f} {s['total']['exchanges']}")
    for key in ("tottime", "cumtime"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
