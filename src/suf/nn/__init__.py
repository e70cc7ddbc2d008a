"""The model layer: BERT and GPT-2 from `transformers`, one graph run by three backends
(reference, dealer, party).  docs/models.md describes the API; docs/security.md the roles.

    from suf.nn import load_model, run_secure, mean_pool
    model = load_model("all-MiniLM-L6-v2")            # or "bert-tiny", "gpt2", a directory
    batch = model.tokenize(["a sentence"], length=8)  # GPT-2: model.batch(token_ids, length)
    ref = model.reference(batch)                      # cleartext fixed point (ring values)
    run = run_secure(model, batch)                    # dealer + P0 + P1 in one process
    assert torch.equal(run.output, ref)
    emb = mean_pool(model.decode(run.output), batch.real)
"""
from suf.nn.backend import Backend, DealerBackend, PartyBackend, ReferenceBackend
from suf.nn.loading import ModelSpec, param_shapes, spec_from_config
from suf.nn.models import Batch, Model, forward, from_config, load_model, mean_pool, pad_bias
from suf.nn.runtime import (DealReport, Deployment, SecureRun, deal, publish_weights, run_secure,
                            serve)

__all__ = ["Backend", "Batch", "DealReport", "DealerBackend", "Deployment", "Model", "ModelSpec",
           "PartyBackend", "ReferenceBackend", "SecureRun", "deal", "forward", "from_config",
           "load_model", "mean_pool", "pad_bias", "param_shapes", "publish_weights",
           "run_secure", "serve", "spec_from_config"]
