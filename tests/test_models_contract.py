"""The contract every registered model passes (thinc ``test_layers_api.py``, AllenNLP ``ModelTestCase``).

Cases are built from ``MODELS.names()``, so a newly registered model is covered without touching this file;
``OVERRIDES`` only shrinks models to test size (an unknown model runs with its defaults) and ``VARIANTS``
adds option combinations that take different code paths.
"""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from textsift.errors import TextsiftError
from textsift.models import ModelOutput, build_model
from textsift.registry import MODELS

VOCAB, LABELS, PAD = 50, 3, 0
LENGTHS = [9, 1, 4, 2, 7, 3]  # varied, including a single token and lengths that pool unevenly
SMALL = {"embedding_dim": 16, "dropout": 0.1}  # every model's params extend ModelParams
OVERRIDES = {
    "fasttext": {"hidden_dim": 8},
    "textcnn": {"kernel_sizes": [2, 3, 5], "num_filters": 4},
    "textrnn": {"hidden_size": 8},
    "textrcnn": {"hidden_size": 8, "projection_dim": 8},
    "dpcnn": {"num_filters": 6},
    "transformer": {"num_heads": 2, "ffn_dim": 32, "max_positions": 32},
}
VARIANTS = [
    ("fasttext", {"hidden_dim": None}),
    ("fasttext", {"sparse": False}),
    ("textrnn", {"hidden_size": 8, "pooling": "attention"}),
    ("textrnn", {"hidden_size": 8, "pooling": "mean", "cell": "gru", "num_layers": 2}),
    ("textrnn", {"hidden_size": 8, "pooling": "max", "bidirectional": False}),
    ("textrnn", {"hidden_size": 8, "pooling": "last", "cell": "gru", "bidirectional": False}),
    ("textrcnn", {"hidden_size": 8, "projection_dim": 8, "cell": "gru"}),
    ("transformer", {"num_heads": 2, "ffn_dim": 32, "max_positions": 32, "pooling": "cls"}),
    ("transformer", {"num_heads": 2, "ffn_dim": 32, "max_positions": 32, "pooling": "max", "activation": "relu"}),
]
# Pretrained encoders need a checkpoint folder and their own tokenizer: tests/test_hf.py holds their contract.
CLASSIC = [n for n in MODELS.names() if not MODELS.get(n).pretrained_tokenizer]
CASES = [(n, OVERRIDES.get(n, {})) for n in CLASSIC] + VARIANTS
# Test ids name only what a variant changes: "textrnn", "textrnn-pooling=attention", ...
IDS = ["-".join([n] + [f"{k}={v}" for k, v in o.items() if OVERRIDES.get(n, {}).get(k, "?") != v]) for n, o in CASES]
INVALID = {  # model-specific bad params, on top of the generic ones every model must reject
    "textcnn": [{"kernel_sizes": "3"}, {"kernel_sizes": []}, {"kernel_sizes": [3, 0]}, {"num_filters": 0}],
    "textrnn": [{"cell": "rnn"}, {"pooling": "sum"}, {"hidden_size": 0}],
    "textrcnn": [{"cell": "transformer"}, {"projection_dim": 0}],
    "dpcnn": [{"num_filters": 0}],
    "fasttext": [{"hidden_dim": 0}],
    "transformer": [{"embedding_dim": 10, "num_heads": 3}, {"pooling": "first"}, {"max_positions": 0}],
}
GENERIC_INVALID = [{"embeding_dim": 16}, {"dropout": 1.0}, {"embedding_dim": 0}, {"init": "orthogonal"}]


def make(name: str, overrides: dict, seed: int = 0, pad_id: int = PAD, **extra):
    torch.manual_seed(seed)
    return build_model(name, {**SMALL, **overrides, **extra}, vocab_size=VOCAB, num_labels=LABELS, pad_id=pad_id)


def batch(model, lengths=LENGTHS, seed: int = 1, pad_id: int = PAD):
    """Right-padded random ids (never the pad id at real positions) and the matching mask."""
    gen = torch.Generator().manual_seed(seed)
    seq = max(max(lengths), model.min_length())
    ids = torch.randint(0, VOCAB - 1, (len(lengths), seq), generator=gen)
    ids = ids + (ids >= pad_id).long()  # skip pad_id
    mask = torch.arange(seq).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return ids.masked_fill(~mask, pad_id), mask


def token_embeddings(model) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.num_embeddings == VOCAB]


@pytest.mark.parametrize("name,overrides", CASES, ids=IDS)
def test_output_record(name, overrides):
    model = make(name, overrides).eval()
    ids, mask = batch(model)
    with torch.no_grad():
        out = model(ids, mask)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (len(LENGTHS), LABELS)
    assert out.pooled.dim() == 2 and out.pooled.size(0) == len(LENGTHS)
    assert out.mask is mask
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.pooled).all()
    for h in out.hidden_states or ():
        assert h.shape[:2] == ids.shape, "hidden states must align with the input ids and mask"


@pytest.mark.parametrize("name,overrides", CASES, ids=IDS)
def test_gradients_reach_every_parameter(name, overrides):
    model = make(name, overrides).train()
    ids, mask = batch(model)
    labels = torch.arange(len(LENGTHS)) % LABELS
    torch.nn.functional.cross_entropy(model(ids, mask).logits, labels).backward()
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{pname} got no gradient"
        grad = p.grad.to_dense() if p.grad.is_sparse else p.grad  # sparse embedding tables (fasttext)
        assert torch.isfinite(grad).all(), f"{pname} has non-finite gradient"
        assert grad.abs().sum() > 0, f"{pname} has an all-zero gradient"
    for emb in token_embeddings(model):
        assert emb.padding_idx == PAD
        grad = emb.weight.grad.to_dense() if emb.weight.grad.is_sparse else emb.weight.grad
        assert grad[PAD].abs().sum() == 0, "the pad embedding must not be trained"


@pytest.mark.parametrize("name,overrides", CASES, ids=IDS)
def test_batch_equals_examples_one_by_one(name, overrides):
    model = make(name, overrides).eval()
    ids, mask = batch(model)
    with torch.no_grad():
        together = model(ids, mask).logits
        for i, length in enumerate(LENGTHS):
            seq = max(length, model.min_length())  # a lone text is padded only up to min_length()
            alone = model(ids[i:i + 1, :seq], mask[i:i + 1, :seq]).logits
            torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-4,
                                       msg=lambda m: f"example {i} (length {length}): {m}")


@pytest.mark.parametrize("name,overrides", CASES, ids=IDS)
def test_save_load_gives_identical_logits(name, overrides, tmp_path):
    model = make(name, overrides, seed=0).eval()
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = make(name, overrides, seed=123).eval()  # different init, so loading must matter
    fresh.load_state_dict(load_file(str(path)))
    ids, mask = batch(model)
    with torch.no_grad():
        assert torch.equal(model(ids, mask).logits, fresh(ids, mask).logits)


@pytest.mark.parametrize("init", ["default", "xavier", "kaiming", "normal"])
@pytest.mark.parametrize("name", CLASSIC)
def test_each_init_keeps_pad_row_zero(name, init):
    pad_id = 3  # not 0, to catch models that hard-code the pad id
    model = make(name, OVERRIDES.get(name, {}), pad_id=pad_id, init=init).eval()
    assert token_embeddings(model), "the token embedding must have vocab_size rows"
    for emb in token_embeddings(model):
        assert emb.padding_idx == pad_id
        assert emb.weight[pad_id].abs().sum() == 0
    ids, mask = batch(model, pad_id=pad_id)
    with torch.no_grad():
        assert torch.isfinite(model(ids, mask).logits).all()


@pytest.mark.parametrize("name,bad", [(n, bad) for n in CLASSIC for bad in GENERIC_INVALID + INVALID.get(n, [])])
def test_invalid_params_rejected(name, bad):
    with pytest.raises(ValidationError):
        MODELS.entry(name).params(**{**SMALL, **OVERRIDES.get(name, {}), **bad})


def test_validation_messages_name_the_field():
    params_cls = MODELS.entry("textcnn").params
    with pytest.raises(ValidationError, match=r"kernel_sizes\n  Input should be a valid list"):
        params_cls(kernel_sizes="3")
    with pytest.raises(ValidationError, match=r"kernel_sizes\n  List should have at least 1 item"):
        params_cls(kernel_sizes=[])
    with pytest.raises(ValidationError, match=r"divisible by num_heads \(3\); .* num_heads=2"):
        MODELS.entry("transformer").params(embedding_dim=10, num_heads=3)


@pytest.mark.parametrize("name", MODELS.names())
def test_registry_entry_is_documented(name):
    entry = MODELS.entry(name)
    assert entry.summary, "first docstring line is shown by `textsift ls`"
    for field, info in entry.params.model_fields.items():
        assert info.description, f"{name}.{field} needs a description"


def test_textcnn_pads_itself_to_min_length():
    model = make("textcnn", OVERRIDES["textcnn"]).eval()
    ids, mask = torch.tensor([[5, 6]]), torch.tensor([[True, True]])
    with torch.no_grad():
        short = model(ids, mask).logits
        padded = model(torch.tensor([[5, 6, PAD, PAD, PAD]]), torch.tensor([[True, True] + [False] * 3])).logits
    torch.testing.assert_close(short, padded)


def test_transformer_rejects_too_long_input():
    model = make("transformer", OVERRIDES["transformer"]).eval()
    ids = torch.ones(1, 40, dtype=torch.long)
    with pytest.raises(TextsiftError, match="exceeds max_positions=32"):
        model(ids, torch.ones_like(ids, dtype=torch.bool))


RECURRENT = [(case, i) for case, i in zip(CASES, IDS) if case[0] in ("textrnn", "textrcnn")]


@pytest.mark.parametrize("name,overrides", [c for c, _ in RECURRENT], ids=[i for _, i in RECURRENT])
def test_padded_inference_path_equals_the_packed_one(name, overrides, monkeypatch):
    """Under CPU autocast an eval-mode recurrent model runs each direction padded (oneDNN's bf16 kernels)
    instead of packed; in fp32 the two paths must agree to rounding, texts of every length included."""
    from textsift.models import textrnn

    model = make(name, overrides).eval()
    ids, mask = batch(model)
    x = model.embedding(ids)
    lengths = mask.sum(1).clamp(min=1)
    with torch.no_grad():
        packed = textrnn.run_rnn(model.rnn, x, mask)
        padded = textrnn._run_rnn_padded(model.rnn, x, lengths)
        for a, b in zip(packed, padded):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        fp32 = model(ids, mask).logits

    def no_packing(*args, **kwargs):
        raise AssertionError("packed path taken")

    monkeypatch.setattr(textrnn, "pack_padded_sequence", no_packing)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model(ids, mask).logits.float()
        alone = [model(ids[i:i + 1, :n], mask[i:i + 1, :n]).logits.float() for i, n in enumerate(LENGTHS)]
    torch.testing.assert_close(bf16, fp32, atol=0.05, rtol=0.05)   # bf16 keeps ~3 significant digits
    torch.testing.assert_close(torch.cat(alone), bf16, atol=0.05, rtol=0.05)   # padding still changes nothing
    model.train()   # training keeps the packed path (its backward is the one PyTorch implements for packing)
    with pytest.raises(AssertionError, match="packed path taken"), torch.autocast("cpu", dtype=torch.bfloat16):
        model(ids, mask)


@pytest.mark.parametrize("name,overrides", [c for c, _ in RECURRENT], ids=[i for _, i in RECURRENT])
def test_bf16_weight_cache_follows_weight_changes(name, overrides):
    """The padded bf16 path keeps its own bf16 copy of the recurrent weights between calls; loading other
    weights into the model (in place) or training it must show in the next prediction, never the stale copy."""
    model, other = make(name, overrides).eval(), make(name, overrides, seed=1).eval()
    ids, mask = batch(model)

    def bf16(m):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return m(ids, mask).logits.float()

    first, expected = bf16(model), bf16(other)
    assert not torch.allclose(first, expected, atol=0.05)   # the two models really differ
    torch.testing.assert_close(bf16(model), first)   # cached copy reused: same answer
    model.load_state_dict(other.state_dict())   # copies into the same tensors (in place)
    torch.testing.assert_close(bf16(model), expected)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model(ids, mask).logits.sum().backward()
    opt.step()
    model.eval()
    stepped = bf16(model)
    model.rnn.__dict__.pop("_textsift_cast")   # a cold cast of the updated weights
    torch.testing.assert_close(stepped, bf16(model))
    assert not torch.allclose(stepped, expected, atol=0.05)
