"""The models: BERT and GPT-2 from `transformers` configs and state dicts, written once as a graph
(suf.models.transformer.forward) that every backend of suf.graph runs.  docs/models.md describes
the API.

    from suf.models import load_model, mean_pool
    from suf.runtime import run_secure
    model = load_model("all-MiniLM-L6-v2")            # or "bert-tiny", "gpt2", a directory
    batch = model.tokenize(["a sentence"], length=8)  # GPT-2: model.batch(token_ids, length)
    ref = model.reference(batch)                      # cleartext fixed point (ring values)
    run = run_secure(model, batch)                    # dealer + P0 + P1 in one process
    assert torch.equal(run.output, ref)
    emb = mean_pool(model.decode(run.output), batch.real)

Your own model: `load_model(DIR)` (a local Hugging Face BERT / GPT-2 directory: config.json, the
weights, its tokenizer if any) or `from_config(config, state_dict, tokenizer=...)`.  Every
refusal is a suf.core.errors.InputError (a ValueError) that says what is supported.
"""
from suf.models.bundle import BUNDLE_FILE, bundle_contents, read_bundle, write_bundle
from suf.models.loading import ModelSpec, check_state_dict, param_shapes, spec_from_config
from suf.models.transformer import (Batch, ClientModel, Model, forward, from_config,
                                    has_tokenizer, load_model, mean_pool, model_config,
                                    model_spec, pad_bias)

__all__ = ["BUNDLE_FILE", "Batch", "ClientModel", "Model", "ModelSpec", "bundle_contents",
           "read_bundle", "write_bundle", "check_state_dict", "forward", "from_config",
           "has_tokenizer", "load_model", "mean_pool", "model_config", "model_spec", "pad_bias",
           "param_shapes", "spec_from_config"]
