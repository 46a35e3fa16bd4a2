"""Training tricks: each hook checked against a hand computation on tiny models, config rules, and an
end-to-end run with tricks that resumes from a mid-epoch checkpoint to the identical result."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import make_texts, write_config
from textsift.engines.batching import pad_batch
from textsift.engines.checkpoint import CheckpointDir
from textsift.errors import ConfigError, TextsiftError
from textsift.losses import build_loss
from textsift.models import build_model
from textsift.registry import TRICKS
from textsift.tricks import build_tricks
from textsift.tricks.awp import AWP, AWPParams
from textsift.tricks.ema import EMA, EMAParams
from textsift.tricks.fgm import FGM, FGMParams
from textsift.tricks.freelb import FreeLB, FreeLBParams
from textsift.tricks.multisample_dropout import MultiSampleDropout, MultiSampleDropoutParams
from textsift.tricks.noisytune import NoisyTune, NoisyTuneParams
from textsift.tricks.pgd import PGD, PGDParams
from textsift.tricks.rdrop import RDrop, RDropParams
from textsift.tricks.swa import SWA, SWAParams

VOCAB, LABELS = 40, 3
ALL = ["awp", "ema", "fgm", "freelb", "multisample_dropout", "noisytune", "pgd", "rdrop", "swa"]
CLASSIC = {"textcnn": {"embedding_dim": 8, "num_filters": 4, "kernel_sizes": [1, 2], "dropout": 0.5},
           "fasttext": {"embedding_dim": 8, "dropout": 0.5}}


# ------------------------------------------------------------------------------------------ helpers
def classic(name="textcnn", **params):
    torch.manual_seed(0)
    return build_model(name, {**CLASSIC[name], **params}, VOCAB, LABELS, pad_id=0)


def make_batch(n=6, seq=7, seed=0, multi=False):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, seq + 1, (n,), generator=g)
    lengths[0] = seq
    mask = torch.arange(seq)[None, :] < lengths[:, None]  # (batch, seq)
    ids = torch.randint(1, VOCAB, (n, seq), generator=g).masked_fill(~mask, 0)
    targets = (torch.rand(n, LABELS, generator=g) > 0.5).float() if multi else \
        torch.randint(0, LABELS, (n,), generator=g)
    return {"input_ids": ids, "mask": mask, "targets": targets}


def ce():
    return build_loss("ce", {}, LABELS, torch.zeros(1, dtype=torch.long))


def bce():
    return build_loss("bce", {}, LABELS, torch.zeros(1, LABELS))


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    from hf_tiny import make_tiny_model

    texts = [r["text"] for r in make_texts(60, seed=0)]
    return make_tiny_model("bert", tmp_path_factory.mktemp("hf") / "bert", texts)


def hf_setup(folder):
    """A tiny BERT ``hf`` model (sparse word-embedding gradients) and a batch of its token ids."""
    from textsift.models.hf import HFParams
    from textsift.tokenizers.hf import HFTextEncoder

    p = HFParams(pretrained=str(folder))
    enc = HFTextEncoder.from_params(p)
    torch.manual_seed(0)
    model = build_model("hf", p, enc.vocab_size, LABELS, enc.pad_id)
    assert model.embedding_layer().sparse
    ids, mask = pad_batch(enc.encode_batch([r["text"] for r in make_texts(5, seed=3)], 16), enc.pad_id)
    other, other_mask = pad_batch(enc.encode_batch([r["text"] for r in make_texts(4, seed=4)], 16), enc.pad_id)
    return (model, {"input_ids": ids, "mask": mask, "targets": torch.tensor([0, 1, 2, 0, 1])},
            {"input_ids": other, "mask": other_mask, "targets": torch.tensor([2, 1, 0, 2])})


def setup_for(kind, hf_folder):
    """(model, batch, another batch): textcnn has a dense embedding gradient, fasttext and hf sparse ones."""
    if kind == "hf":
        return hf_setup(hf_folder)
    return classic(kind), make_batch(seed=0), make_batch(n=4, seed=1)


def dense(g):
    return g.to_dense() if g.is_sparse else g


def grads(model):
    """Every parameter's gradient as a dense tensor (zeros where there is none)."""
    return {n: dense(p.grad).clone() if p.grad is not None else torch.zeros_like(p)
            for n, p in model.named_parameters()}


def loss_of(model, batch, loss_fn):
    return loss_fn(model(batch["input_ids"], batch["mask"]).logits.float(), batch["targets"])


def grads_at(model, batch, loss_fn, scale=1.0, weights=None):
    """Gradients of ``scale * loss`` with the given parameter values swapped in (then put back)."""
    named = dict(model.named_parameters())
    saved = {n: named[n].detach().clone() for n in (weights or {})}
    with torch.no_grad():
        for n, v in (weights or {}).items():
            named[n].copy_(v)
    model.zero_grad(set_to_none=True)
    (loss_of(model, batch, loss_fn) * scale).backward()
    out = grads(model)
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for n, v in saved.items():
            named[n].copy_(v)
    return out


def emb_name(model):
    weight = model.embedding_layer().weight
    return next(n for n, p in model.named_parameters() if p is weight)


def accumulate_earlier(model, other, loss_fn, scale):
    """Leave an earlier micro-batch's gradients in ``.grad`` (gradient accumulation); return them."""
    model.zero_grad(set_to_none=True)
    (loss_of(model, other, loss_fn) * scale).backward()
    return grads(model)


def assert_grads(model, *parts):
    """The model's gradients (or a ``grads`` dict) equal the sum of ``parts``."""
    got = model if isinstance(model, dict) else grads(model)
    for name in got:
        want = sum(part[name] for part in parts)
        assert torch.allclose(got[name], want, atol=1e-5, rtol=1e-4), name


def capture_weight(layer):
    seen = []
    return seen, layer.register_forward_hook(lambda m, i, o: seen.append(m.weight.detach().clone()))


def state_round_trip(tmp_path, state):
    """A trick state through the checkpoint format (safetensors + JSON skeleton) and back."""
    ckpt = CheckpointDir(tmp_path / "ckpt")
    ckpt.save({"tricks": [state]}, step=1)
    return ckpt.load_latest()["tricks"][0]


# ------------------------------------------------------------------------------------------ registry
def test_every_trick_is_registered_with_documented_params():
    assert set(ALL) <= set(TRICKS.names())
    for name in ALL:
        entry = TRICKS.entry(name)
        assert "(" in entry.summary and entry.summary.endswith(".")  # one line, citing the paper
        for field in entry.params.model_fields.values():
            assert field.description
        with pytest.raises(Exception):
            entry.params(no_such_param=1)  # extra="forbid"


# ------------------------------------------------------------------------------------------ FGM / PGD
@pytest.mark.parametrize("kind", ["textcnn", "fasttext", "hf"])
def test_fgm_attacks_along_this_batch_gradient_and_restores_exactly(kind, hf_folder):
    model, batch, other = setup_for(kind, hf_folder)
    model.eval()  # no dropout: every pass below is reproducible by hand
    loss_fn, name = ce(), emb_name(model)
    trick = FGM(FGMParams(epsilon=0.5))
    trick.setup(model)
    trick.loss_scale = 0.5
    w = trick.weight
    w0 = w.detach().clone()
    clean = grads_at(model, batch, loss_fn, 0.5)
    earlier = accumulate_earlier(model, other, loss_fn, 0.5)
    loss = loss_of(model, batch, loss_fn) * 0.5
    seen, hook = capture_weight(model.embedding_layer())
    trick.backward(model, batch, loss, loss_fn)
    hook.remove()
    got = grads(model)
    sparse_grad = w.grad.is_sparse

    assert torch.equal(w.detach(), w0)  # copied back bit for bit
    [attacked] = seen
    r, g = attacked - w0, clean[name]
    assert torch.allclose(r, 0.5 * g / g.norm(), atol=1e-6)  # this micro-batch's gradient, not the accumulated one
    assert float(r.norm()) == pytest.approx(0.5, rel=1e-4)
    untouched = g.abs().sum(1) == 0
    assert untouched.any() and (r[untouched] == 0).all()  # only the batch's rows move
    assert_grads(got, earlier, clean, grads_at(model, batch, loss_fn, 0.5, {name: attacked}))
    assert sparse_grad == (kind != "textcnn")  # the optimizer still gets sparse gradients


def _project(r, eps):
    return r * (eps / r.norm()) if r.norm() > eps else r


@pytest.mark.parametrize("kind", ["textcnn", "fasttext", "hf"])
def test_pgd_stays_in_the_ball_and_trains_on_clean_plus_last_adversarial_gradients(kind, hf_folder):
    model, batch, other = setup_for(kind, hf_folder)
    model.eval()
    loss_fn, name = ce(), emb_name(model)
    trick = PGD(PGDParams(steps=3, alpha=0.3, epsilon=0.4))
    trick.setup(model)
    trick.loss_scale = 0.25
    w = trick.weight
    w0 = w.detach().clone()
    clean = grads_at(model, batch, loss_fn, 0.25)
    earlier = accumulate_earlier(model, other, loss_fn, 0.25)
    loss = loss_of(model, batch, loss_fn) * 0.25
    seen, hook = capture_weight(model.embedding_layer())
    trick.backward(model, batch, loss, loss_fn)
    hook.remove()
    got = grads(model)

    assert torch.equal(w.detach(), w0)
    assert len(seen) == 3
    # step by step: r_t = project(r_{t-1} + alpha * g / ||g||), g the gradient at the previous point
    r, g = torch.zeros_like(w0), clean[name]
    for attacked in seen:
        r = _project(r + 0.3 * g / g.norm(), 0.4)
        assert torch.allclose(attacked - w0, r, atol=1e-5)
        assert float((attacked - w0).norm()) <= 0.4 * (1 + 1e-5)
        g = grads_at(model, batch, loss_fn, 1.0, {name: attacked})[name]
    assert float(r.norm()) == pytest.approx(0.4, rel=1e-4)  # the projection was needed
    # the backed-up (pre-attack) gradients of every parameter are back, plus the last attack's
    assert_grads(got, earlier, clean, grads_at(model, batch, loss_fn, 0.25, {name: seen[-1]}))


def test_adversarial_tricks_need_an_embedding_layer():
    model = build_model("tfidf_linear", {"solver": "sgd"}, VOCAB, LABELS)
    for trick in (FGM(), PGD(), FreeLB()):
        with pytest.raises(TextsiftError, match="no token embedding layer"):
            trick.setup(model)
    frozen = classic()
    frozen.embedding.weight.requires_grad_(False)
    with pytest.raises(TextsiftError, match="frozen"):
        FGM().setup(frozen)
    FreeLB().setup(frozen)  # perturbs outputs: a frozen table is fine


# ------------------------------------------------------------------------------------------ FreeLB
@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("init", [0.0, 0.05])
def test_freelb_ascends_on_embedding_outputs_within_max_norm(sparse, init):
    model = classic("fasttext", sparse=sparse)  # no hidden layer: the head reads the embedding output
    model.eval()
    batch, other, loss_fn = make_batch(seed=0), make_batch(n=4, seed=1), ce()
    trick = FreeLB(FreeLBParams(steps=3, adv_lr=0.1, adv_init_mag=init, max_norm=0.15))
    trick.setup(model)
    trick.loss_scale = 0.5
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        clean = model.embedding(batch["input_ids"].masked_fill(~batch["mask"], 0))  # (batch, dim)
    earlier = accumulate_earlier(model, other, loss_fn, 0.5)
    loss = loss_of(model, batch, loss_fn) * 0.5
    seen = []
    hook = model.head.register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
    torch.manual_seed(1)
    trick.backward(model, batch, loss, loss_fn)
    hook.remove()
    got = grads(model)

    assert all(torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
    deltas = [s - clean for s in seen]  # (batch, dim) each
    assert len(deltas) == 3
    first = deltas[0].norm(dim=1)
    assert (first <= init + 1e-6).all() and bool((first > 0).all()) == (init > 0)

    def loss_at(delta):
        pooled = (clean + delta).requires_grad_()
        loss_fn(model.head(pooled), batch["targets"]).backward()
        return pooled.grad

    for prev, nxt in zip(deltas, deltas[1:]):
        g = loss_at(prev)
        want = prev + 0.1 * g / g.norm(dim=1, keepdim=True)
        norm = want.norm(dim=1, keepdim=True)
        want = torch.where(norm > 0.15, want * 0.15 / norm, want)
        assert torch.allclose(nxt, want, atol=1e-5)
        assert (nxt.norm(dim=1) <= 0.15 + 1e-5).all()
    model.zero_grad(set_to_none=True)
    parts = []
    for delta in deltas:  # each of the K losses, divided by K, at its own perturbation
        hook = model.embedding.register_forward_hook(lambda m, i, o, d=delta: o + d)
        parts.append(grads_at(model, batch, loss_fn, 0.5 / 3))
        hook.remove()
    assert_grads(got, earlier, *parts)


def test_freelb_per_token_init_skips_padding_and_leaves_textcnn_weights_alone():
    model, batch = classic("textcnn"), make_batch(seed=0)
    trick = FreeLB(FreeLBParams(adv_init_mag=0.1))
    trick.setup(model)
    layer = model.embedding
    out = layer(batch["input_ids"])
    delta = trick._initial(layer, batch["input_ids"], out)  # (batch, seq, dim)
    assert (delta[~batch["mask"]] == 0).all() and (delta[batch["mask"]] != 0).all()
    assert (delta.flatten(1).norm(dim=1) <= 0.1 + 1e-6).all()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trick.backward(model, batch, loss_of(model, batch, ce()), ce())
    assert all(torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
    assert all(p.grad is not None and torch.isfinite(dense(p.grad)).all() for p in model.parameters())


# ------------------------------------------------------------------------------------------ AWP
@pytest.mark.parametrize("kind", ["textcnn", "hf"])
def test_awp_perturbs_matching_weights_within_eps_and_restores_exactly(kind, hf_folder):
    model, batch, other = setup_for(kind, hf_folder)
    model.eval()
    loss_fn = ce()
    trick = AWP(AWPParams(adv_lr=1.0, adv_eps=0.01, start_step=2))
    trick.setup(model)
    trick.loss_scale = 0.5
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    clean = grads_at(model, batch, loss_fn, 0.5)
    seen = []
    hook = model.register_forward_pre_hook(
        lambda m, i: seen.append({n: p.detach().clone() for n, p in m.named_parameters()}))

    earlier = accumulate_earlier(model, other, loss_fn, 0.5)
    seen.clear()
    trick.backward(model, batch, loss_of(model, batch, loss_fn) * 0.5, loss_fn)  # before start_step: plain
    assert len(seen) == 1
    assert_grads(model, earlier, clean)

    trick.after_step(model, 2)
    earlier = accumulate_earlier(model, other, loss_fn, 0.5)
    seen.clear()
    trick.backward(model, batch, loss_of(model, batch, loss_fn) * 0.5, loss_fn)
    hook.remove()
    got = grads(model)
    assert len(seen) == 2  # the clean forward above, then the adversarial one
    attacked = seen[1]
    assert all(torch.equal(p.detach(), before[n]) for n, p in model.named_parameters())
    moved = 0
    for n, w in attacked.items():
        diff = (w - before[n]).abs()
        if "weight" not in n or clean[n].abs().sum() == 0:
            assert torch.equal(w, before[n]), n  # biases and weights without gradient stay
            continue
        assert (diff <= 0.01 * before[n].abs() + 1e-6).all(), n  # up to float32 rounding
        moved += int(diff.sum() > 0)
        if kind == "hf" and n == emb_name(model):
            untouched = clean[n].abs().sum(1) == 0
            assert untouched.any() and (diff[untouched] == 0).all()  # sparse: only the batch's rows
    assert moved >= 3
    # the step uses the gradient at the perturbed weights (the clean one is dropped)
    assert_grads(got, earlier, grads_at(model, batch, loss_fn, 0.5, attacked))
    assert state_round_trip_value(trick) == 2


def state_round_trip_value(trick):
    fresh = AWP(trick.params)
    fresh.load_state_dict(json.loads(json.dumps(trick.state_dict())))
    return fresh.step


# ------------------------------------------------------------------------------------------ EMA / SWA
@pytest.mark.parametrize("warmup", [True, False])
def test_ema_matches_a_hand_computed_average_and_swaps_exactly(warmup, tmp_path):
    model = classic()
    trick = EMA(EMAParams(decay=0.9, decay_warmup=warmup))
    trick.setup(model)
    trick.before_training(model)
    shadow = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    for u in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)  # an "optimizer step"
        trick.after_step(model, u + 1)
        d = min(0.9, (1 + u) / (10 + u)) if warmup else 0.9
        shadow = {n: d * shadow[n] + (1 - d) * p.detach() for n, p in model.named_parameters()}
    raw = {n: p.detach().clone() for n, p in model.named_parameters()}
    trick.swap_in(model)
    for n, p in model.named_parameters():
        assert torch.allclose(p, shadow[n], atol=1e-6), n
        assert not torch.equal(p, raw[n])
    trick.restore(model)
    assert all(torch.equal(p.detach(), raw[n]) for n, p in model.named_parameters())

    other = classic()  # a resumed run: a new model and trick, the state from a checkpoint
    resumed = EMA(trick.params)
    resumed.setup(other)
    resumed.load_state_dict(state_round_trip(tmp_path, trick.state_dict()))
    assert resumed.updates == 3
    resumed.swap_in(other)
    assert all(torch.allclose(p, shadow[n], atol=1e-6) for n, p in other.named_parameters())


def test_swa_averages_end_of_epoch_weights_from_start_epoch(tmp_path):
    model = classic()
    trick = SWA(SWAParams(start_epoch=2))
    trick.setup(model)
    snapshots = []
    torch.manual_seed(0)
    for epoch in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        raw = {n: p.detach().clone() for n, p in model.named_parameters()}
        if epoch >= 2:
            snapshots.append(raw)
        trick.swap_in(model)
        for n, p in model.named_parameters():
            want = torch.stack([s[n] for s in snapshots]).mean(0) if snapshots else raw[n]
            assert torch.allclose(p, want, atol=1e-6), (epoch, n)
        trick.restore(model)
        assert all(torch.equal(p.detach(), raw[n]) for n, p in model.named_parameters())
    assert trick.n_averaged == 2 and trick.epochs == 3

    resumed = SWA(trick.params)
    resumed.setup(classic())
    resumed.load_state_dict(state_round_trip(tmp_path, trick.state_dict()))
    assert (resumed.epochs, resumed.n_averaged) == (3, 2)
    assert all(torch.equal(a, b) for a, b in zip(resumed.average, trick.average))
    empty = SWA(trick.params)
    empty.setup(classic())
    empty.load_state_dict(state_round_trip(tmp_path / "e", SWA(trick.params).state_dict()))
    assert empty.average is None


# ------------------------------------------------------------------------------------------ losses
def _kl(p_log, q_log):
    """KL(P || Q) from log-probabilities, summed over labels, mean over the batch."""
    return F.kl_div(q_log, p_log, log_target=True, reduction="batchmean")


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("multi", [False, True])
def test_rdrop_loss_equals_the_hand_formula(train, multi):
    model = classic()
    model.train(train)
    batch, loss_fn = make_batch(seed=0, multi=multi), (bce() if multi else ce())
    trick = RDrop(RDropParams(alpha=0.7))
    torch.manual_seed(5)
    got = trick.compute_loss(model, batch, loss_fn)
    torch.manual_seed(5)
    with torch.no_grad():
        a = model(batch["input_ids"], batch["mask"]).logits
        b = model(batch["input_ids"], batch["mask"]).logits
    task = (loss_fn(a, batch["targets"]) + loss_fn(b, batch["targets"])) / 2
    if multi:  # per-label Bernoulli: KL(p || q) = p log p/q + (1 - p) log (1 - p)/(1 - q)
        p, q = torch.sigmoid(a), torch.sigmoid(b)
        kl_pq = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum(1).mean()
        kl_qp = (q * (q / p).log() + (1 - q) * ((1 - q) / (1 - p)).log()).sum(1).mean()
    else:
        la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
        kl_pq, kl_qp = _kl(la, lb), _kl(lb, la)
    want = task + 0.7 * (kl_pq + kl_qp) / 2
    assert torch.allclose(got.detach(), want, atol=1e-6)
    if train:
        assert float(kl_pq) > 1e-4  # dropout differs between the passes
    else:
        assert float(kl_pq + kl_qp) < 1e-10 and torch.allclose(got.detach(), loss_fn(a, batch["targets"]))
    got.backward()


def test_multisample_dropout_loss_is_the_mean_over_head_samples():
    model = classic()
    model.train()
    batch, loss_fn = make_batch(seed=0), ce()
    trick = MultiSampleDropout(MultiSampleDropoutParams(samples=4))
    trick.setup(model)
    torch.manual_seed(3)
    got = trick.compute_loss(model, batch, loss_fn)
    torch.manual_seed(3)
    out = model(batch["input_ids"], batch["mask"])
    samples = [model.classify(out.pooled) for _ in range(4)]
    assert not torch.equal(samples[0], samples[1])  # each sample has its own dropout mask
    want = torch.stack([loss_fn(s, batch["targets"]) for s in samples]).mean()
    assert torch.allclose(got, want)
    with pytest.raises(TextsiftError, match="no separate head"):
        trick.setup(build_model("tfidf_linear", {"solver": "sgd"}, VOCAB, LABELS))


# ------------------------------------------------------------------------------------------ NoisyTune
@pytest.mark.parametrize("skip_head", [True, False])
def test_noisytune_noise_is_bounded_by_lambda_std_and_spares_the_head(skip_head):
    model = classic()
    with torch.no_grad():
        model.convs[0].bias.zero_()  # std 0: nothing to scale the noise by
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    NoisyTune(NoisyTuneParams(noise_lambda=0.2, skip_head=skip_head)).before_training(model)
    changed = set()
    for n, p in model.named_parameters():
        diff = (p.detach() - before[n]).abs()
        assert (diff <= 0.1 * before[n].std() + 1e-7).all(), n  # lambda/2 * std
        if diff.sum() > 0:
            changed.add(n)
    head = {n for n, _ in model.named_parameters() if n.startswith("head.")}
    assert "embedding.weight" in changed and any(n.startswith("convs.") for n in changed)
    assert (not head & changed) == skip_head
    assert "convs.0.bias" not in changed and "convs.1.bias" in changed
    assert torch.equal(model.embedding.weight[0], before["embedding.weight"][0])  # the padding row


# ------------------------------------------------------------------------------------------ config
def _raw(tricks):
    return {"data": {"train": "train.jsonl"}, "model": {"name": "textcnn"}, "train": {"tricks": tricks}}


def test_config_rejects_two_backward_owners_conflicts_unknown_names_and_bad_params():
    from textsift.config import validate

    with pytest.raises(ConfigError) as err:
        validate(_raw([{"name": "fgm"}, {"name": "pgd", "steps": 2}]), check_files=False)
    assert "train.tricks[1]: 'fgm' and 'pgd' both take over the backward pass" in str(err.value)
    with pytest.raises(ConfigError, match=r"train.tricks\[0\].name: 'fmg' is not a trick; did you mean 'fgm'\?"):
        validate(_raw([{"name": "fmg"}]), check_files=False)
    with pytest.raises(ConfigError, match="'swa' cannot be combined with 'ema'"):
        validate(_raw([{"name": "ema"}, {"name": "swa"}]), check_files=False)
    with pytest.raises(ConfigError, match="'freelb' cannot be combined with 'rdrop'"):
        validate(_raw([{"name": "rdrop"}, {"name": "freelb"}]), check_files=False)
    with pytest.raises(ConfigError) as err:
        validate(_raw([{"name": "pgd", "steps": 0, "epsilonn": 1}]), check_files=False)
    assert "train.tricks[0].steps" in str(err.value) and "train.tricks[0].epsilonn" in str(err.value)
    cfg = validate(_raw([{"name": "pgd", "steps": 2}, {"name": "ema"}, {"name": "rdrop"}]), check_files=False)
    assert [t.name for t in build_tricks(cfg.train.tricks)] == ["pgd", "ema", "rdrop"]


def test_build_tricks_runs_noisytune_first_and_checks_conflicts():
    tricks = build_tricks([{"name": "ema"}, {"name": "noisytune", "noise_lambda": 0.1}, {"name": "rdrop"}])
    assert [t.name for t in tricks] == ["noisytune", "ema", "rdrop"]
    assert tricks[0].params.noise_lambda == 0.1
    with pytest.raises(ConfigError, match="cannot be combined"):
        build_tricks([{"name": "swa"}, {"name": "ema"}])


# ------------------------------------------------------------------------------------------ end to end
def _config(tmp_path, tiny_data, tricks, loss=None, **train):
    from textsift.config.load import load_config

    path = write_config(tmp_path / "c.yaml", tiny_data, model_name="textcnn",
                        model={"num_filters": 8, "kernel_sizes": [1, 2]},
                        train={"epochs": 3, "checkpoint_every": 4, "early_stopping": {"patience": None},
                               "tricks": tricks, **train},
                        report={"plots": False, "tensorboard": False}, **({"loss": loss} if loss else {}))
    return load_config(str(path))


def _history(run):
    return [{k: v for k, v in row.items() if k != "train_seconds"}
            for row in json.loads((run / "history.json").read_text())]


class _Killed(Exception):
    pass


def test_run_with_tricks_resumes_from_a_mid_epoch_checkpoint_identically(tmp_path, tiny_data, monkeypatch):
    from safetensors.torch import load_file

    from textsift.engines.train_run import train_run

    tricks = [{"name": "pgd", "steps": 2}, {"name": "ema", "decay": 0.9}, {"name": "rdrop", "alpha": 0.5}]
    cfg = _config(tmp_path, tiny_data, tricks, loss={"name": "focal", "gamma": 2.0})  # PGD + EMA + R-Drop + focal
    full, killed = tmp_path / "full", tmp_path / "killed"
    a = train_run(cfg, full)
    assert a["dev"]["accuracy"] > 0.6  # three separable topics

    save = CheckpointDir.save

    def save_then_die(self, state, step):  # a crash right after the step-20 (mid epoch 2) checkpoint
        path = save(self, state, step)
        if step == 20:
            raise _Killed
        return path

    monkeypatch.setattr(CheckpointDir, "save", save_then_die)
    with pytest.raises(_Killed):
        train_run(cfg, killed)
    monkeypatch.setattr(CheckpointDir, "save", save)
    state = CheckpointDir(killed / "checkpoints").load_latest()
    assert state["progress"]["step"] == 20 and state["progress"]["batch_in_epoch"] == 5
    assert state["tricks"][1]["updates"] == 20  # EMA state rides along

    b = train_run(cfg, killed, resume=True)
    for split in ("dev", "test"):
        assert a[split] == b[split]
    assert _history(full) == _history(killed)
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("tricks", [[{"name": "fgm"}, {"name": "swa", "start_epoch": 1}],
                                    [{"name": "freelb"}, {"name": "noisytune"}],
                                    [{"name": "awp", "start_step": 5}, {"name": "multisample_dropout"}]])
def test_other_tricks_train_end_to_end(tmp_path, tiny_data, tricks):
    from textsift.engines.train_run import train_run

    cfg = _config(tmp_path, tiny_data, tricks, epochs=2, checkpoint_every=None)
    metrics = train_run(cfg, tmp_path / "run")
    assert metrics["dev"]["accuracy"] > 0.5
