"""Running jobs between a dealer and two parties: one inference of a model at (batch B, length L),
or one registered gate on its example (suf.runtime.jobs).

The life of an inference (roles: docs/security.md; P0 the model owner, P1 the client, the dealer
trusted):
  1. Deployment, once per model (deployment.py): the dealer draws a mask r_W for every
     parameter; the model owner keeps them (deployment.p0.suk).
  2. Dealing, once per inference and before any text exists (dealing.py): the keys of
     (model, B, L) for both parties, on top of r_W; the client's start with its input masks and
     end with its output mask.  Key files are one-time.
  3. Serving (serving.py): P0 listens, P1 connects; the handshake checks both hold keys of the
     same dealing.  Setup (counted apart): P0 publishes W^ = W + r_W, then a sync.  Online: the
     client sends x^ = x + r_x, both walk the model graph on masked values, each gate reading its
     key and exchanging masked shares; the client unmasks y = y^ - r_out.  Only it learns y.
A gate job runs the same way with its own inputs (masked by their owners at setup) in place of
the model.

Where the roles run:
  deal(job, dir)                       the dealer alone, key files (`suf deal`)
  serve(party, job, keys, peer, ...)   one party, a process of its own (`suf serve`)
  run(job, source)                     all three on this machine, the parties as two processes
                                       over TCP (`suf run`, `suf gate`; processes.py)
  run_locally(model, batch)            all three in one process, in-memory keys, the parties on
                                       two threads (local.py; also known as `run_secure`)
"""
from suf.runtime.dealing import DealReport, check_fits, deal, deal_keys
from suf.runtime.deployment import Deployment, publish_weights
from suf.runtime.jobs import GateJob, ModelJob, from_keys, input_shapes
from suf.runtime.local import SecureRun, key_store_device, run_locally
from suf.runtime.processes import run
from suf.runtime.serving import run_party, serve

run_secure = run_locally  # the name tests, benchmarks and docs use

__all__ = ["DealReport", "Deployment", "GateJob", "ModelJob", "SecureRun", "check_fits", "deal",
           "deal_keys", "from_keys", "input_shapes", "key_store_device", "publish_weights", "run",
           "run_locally", "run_party", "run_secure", "serve"]
