"""Knowledge distillation: a student trained on its teachers' soft targets, in an ordinary run directory.

The ``Distiller`` is the ``Trainer`` with another ``compute_loss`` (STYLE.md: a distiller only changes
how the loss is computed). Everything else — batching, optimizers, checkpoints and exact resume,
dev selection, reports, the run directory — is the trainer's and ``train_run``'s.

* Teachers are finished runs (any model type, a K-fold run counts as its K models). Each encodes the
  texts with its own tokenizer, so any teacher can teach any student (an ``hf`` encoder → TextCNN).
  Several teachers' logits are averaged, optionally weighted.
* Teacher logits for the training texts are computed once, before training, and cached on disk keyed
  by the teachers' weights and the texts, so epochs and later runs reuse them.
* Extra texts (``distill.transfer_data`` lines, augmented copies of the training texts) are labelled
  by the teachers only: they train on the soft-target loss, never on the hard-label loss.
* Between transformers with the same tokenizer, intermediate matches add hidden-state and attention
  losses; the teacher then runs live on each batch. ``distill.student_layers`` builds the student from
  the teacher itself, keeping some of its layers (e.g. 6 → 2, DistilBERT / TinyBERT initialisation).

* Multi-task (``distill.tasks``, TextBrewer's MultiTaskDistiller): teachers trained on different label
  sets, each with its own data, teach one student with one output block per task. Every teacher labels
  every training text (its own task's and the others'), so each text trains every block on soft targets,
  and its own task's block on its gold label too.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import re
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from textsift.config.schema import Config, DistillConfig
from textsift.engines.trainer import Trainer
from textsift.errors import TextsiftError
from textsift.losses.kd import Projections, feature_loss, kd_loss, pooled_loss, schedule_weight, temperature

log = logging.getLogger("textsift")


# ---------------------------------------------------------------- teachers
class Teachers:
    """Teacher runs whose (weighted) average logits, in the first teacher's label order, are the soft targets."""

    def __init__(self, paths: Sequence[str], weights: Optional[Sequence[float]] = None):
        from textsift.rundir import load_bundle

        self.paths = [Path(p) for p in paths]
        self.bundles = [load_bundle(p) for p in self.paths]
        first = self.bundles[0].scheme
        self.task, self.labels = first.task, list(first.labels)
        self.order = []
        for path, b in zip(self.paths, self.bundles):
            if b.scheme.task != self.task or sorted(b.scheme.labels) != sorted(self.labels):
                raise TextsiftError(f"distill.teacher: {path} is a {b.scheme.task} model over labels "
                                    f"{b.scheme.labels[:5]}..., unlike {self.paths[0]} ({self.task}, "
                                    f"{self.labels[:5]}...); teachers must share task and label set")
            self.order.append([b.scheme.labels.index(label) for label in self.labels])
        w = np.asarray(weights if weights is not None else [1.0] * len(paths), dtype=np.float64)
        self.weights = w / w.sum()

    def logits(self, texts: Sequence[str], batch_size: int, pooled: bool = False):
        """Averaged teacher logits ``(n, labels)`` for ``texts`` (each teacher encodes them its own way).
        ``pooled=True`` (one teacher, not K-fold): ``(logits, pooled vectors (n, width))`` from one pass."""
        from textsift.engines.batching import predict_logits

        if pooled and (len(self.bundles) != 1 or getattr(self.bundles[0].model, "members", None) is not None):
            raise TextsiftError(f"distill.pooled_match needs one teacher model; {self.paths[0]} and the others "
                                "given are several (a K-fold run is K models): remove pooled_match or name one "
                                "single-model teacher run")
        total, vectors = np.zeros((len(texts), len(self.labels)), dtype=np.float64), None
        for b, order, w in zip(self.bundles, self.order, self.weights):
            if getattr(b.model, "members", None) is not None:  # a K-fold run: its members' mean
                out = b.model.logits(list(texts), batch_size)
            else:
                out = predict_logits(b.model, b.encoder.encode_batch(list(texts), b.max_length), batch_size,
                                     b.encoder.pad_id, pooled=pooled)
                if pooled:  # the one teacher's vectors, from the pass that gave its logits
                    out, vectors = out
            total += w * out[:, order]
        return (total.astype(np.float32), vectors) if pooled else total.astype(np.float32)

    def fingerprint(self) -> str:
        """Identifies the teachers' weights (path, size and modification time of every weight file)."""
        parts = []
        for path in self.paths:
            for f in sorted(path.rglob("model.safetensors")):
                st = f.stat()
                parts.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
        parts.append(",".join(f"{w:.6f}" for w in self.weights))
        return "\n".join(parts)


class TaskTeachers:
    """The teachers of a multi-task student (``distill.tasks``): one ``Teachers`` per task, their logits side by
    side in the student's ``task/label`` order (``scheme``, a ``MultiTaskScheme``; each task's labels sorted)."""

    task = "multi_task"

    def __init__(self, specs):
        from textsift.data.labels import MultiTaskScheme

        self.names = [spec.name for spec in specs]
        self.per_task = [Teachers(spec.teacher if isinstance(spec.teacher, list) else [spec.teacher],
                                  spec.teacher_weights) for spec in specs]
        for name, t in zip(self.names, self.per_task):
            if t.task != "single_label":
                raise TextsiftError(f"distill.tasks[{name}]: the teacher {t.paths[0]} is a {t.task} model; "
                                    "multi-task distillation takes single-label teachers")
        self.scheme = MultiTaskScheme.build({name: t.labels for name, t in zip(self.names, self.per_task)})
        self.labels = self.scheme.labels
        self.paths = [p for t in self.per_task for p in t.paths]
        self.bundles = [b for t in self.per_task for b in t.bundles]
        self._order = [[t.labels.index(label) for label in sorted(t.labels)] for t in self.per_task]

    def logits(self, texts: Sequence[str], batch_size: int, pooled: bool = False) -> np.ndarray:
        if pooled:  # refused at validation (DistillConfig): each task's teacher has its own vector space
            raise TextsiftError("distill.pooled_match is not available to a multi-task student")
        return np.ascontiguousarray(np.concatenate(
            [t.logits(texts, batch_size)[:, order] for t, order in zip(self.per_task, self._order)], axis=1))

    def fingerprint(self) -> str:
        return "|".join(f"{name}={t.fingerprint()}" for name, t in zip(self.names, self.per_task))


def cached_teacher_logits(teachers: Teachers, texts: Sequence[str], dcfg: DistillConfig, pooled: bool = False):
    """``teachers.logits(texts)``, read from / written to the cache when ``distill.cache`` is on.
    ``pooled=True``: ``(logits, pooled vectors)``, cached together in their own file."""
    if not dcfg.cache:
        return teachers.logits(texts, dcfg.teacher_batch_size, pooled=pooled)
    from safetensors.numpy import load_file, save_file

    what = "logits and pooled vectors" if pooled else "logits"
    key = hashlib.sha256(teachers.fingerprint().encode() + (b"\0pooled" if pooled else b""))
    for text in texts:
        key.update(text.encode("utf-8") + b"\0")
    folder = Path(dcfg.cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                 "textsift", "teacher_logits")).expanduser()
    path = folder / f"{key.hexdigest()[:32]}.safetensors"
    if path.is_file():
        try:
            arrays = load_file(str(path))
            if arrays["logits"].shape == (len(texts), len(teachers.labels)) and \
                    (not pooled or arrays["pooled"].shape[0] == len(texts)):
                log.info("teacher %s for %d texts read from the cache %s", what, len(texts), path)
                return (arrays["logits"], arrays["pooled"]) if pooled else arrays["logits"]
        except Exception:  # a damaged cache file is recomputed, never trusted
            pass
    started = time.perf_counter()
    result = teachers.logits(texts, dcfg.teacher_batch_size, pooled=pooled)
    arrays = {"logits": result[0], "pooled": result[1]} if pooled else {"logits": result}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    # safetensors.numpy writes an array's buffer as it lies in memory and reads it back as C order: a
    # column-major array (a column-reordered slice, as multi-task teachers build) would come back scrambled
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))
    os.replace(tmp, path)
    log.info("teacher %s for %d texts computed in %.1f s, cached in %s", what, len(texts),
             time.perf_counter() - started, path)
    return result


def _teacher_outputs(teachers, texts: list[str], sizes: tuple[int, ...], dcfg: DistillConfig, pooled: bool):
    """``cached_teacher_logits`` of ``texts`` cut into parts of ``sizes`` (and the rest), each part its own
    cache entry: the gold rows, the transfer texts and the augmented copies, so a run that changes only the
    augmentation (another seed, ``replace``, more copies) computes only its copies and reads the rest."""
    bounds = np.cumsum([0, *sizes, len(texts) - sum(sizes)])
    outs = [cached_teacher_logits(teachers, texts[a:b], dcfg, pooled=pooled)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if pooled:
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
    return np.concatenate(outs)


# ---------------------------------------------------------------- extra texts
MASK = "\ue000"  # a private-use character standing for a masked token until each model's own form is chosen
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def _tokens(text: str) -> tuple[list[str], str]:
    """Characters for unspaced CJK text, else whitespace words (joined by spaces again)."""
    if _CJK.search(text) and not re.search(r"\s", text.strip()):
        return list(text), ""
    return text.split(), " "


def augment_texts(texts: Sequence[str], cfg, seed: int,
                  neighbours: Optional[dict[str, list[str]]] = None) -> list[str]:
    """``cfg.copies`` augmented copies of each text (Tang et al. 2019): per token, masking (``MASK``),
    deletion or (``cfg.replace``, TinyBERT) one of its ``neighbours`` drawn at random; or, for a whole copy,
    a random n-gram of the text. A token without neighbours is kept where it would have been replaced."""
    rng = random.Random(seed)
    out = []
    for _ in range(cfg.copies):
        for text in texts:
            tokens, joiner = _tokens(text)
            if len(tokens) > 1 and rng.random() < cfg.ngram:
                n = rng.randint(1, min(cfg.ngram_max, len(tokens)))
                start = rng.randint(0, len(tokens) - n)
                tokens = tokens[start:start + n]
            else:
                kept = []
                for tok in tokens:
                    r = rng.random()
                    if r < cfg.mask:
                        kept.append(MASK)
                    elif r < cfg.mask + cfg.delete:
                        continue
                    elif r < cfg.mask + cfg.delete + cfg.replace and neighbours and tok in neighbours:
                        kept.append(rng.choice(neighbours[tok]))
                    else:
                        kept.append(tok)
                tokens = kept or tokens[:1]
            out.append(joiner.join(tokens))
    return out


def mask_form(tok) -> str:
    """How a masked token is written for a model with tokenizer ``tok``: a pretrained tokenizer's mask (or
    unknown) token; for textsift's own vocabularies ``MASK`` itself, an unknown token to them (Tang et al.
    give the BERT teacher [MASK] and the student its unknown token)."""
    for name in ("mask_token", "unk_token"):
        value = getattr(tok, name, None)
        if isinstance(value, str) and hasattr(tok, "convert_tokens_to_ids"):
            return value
    return MASK


# ---------------------------------------------------------------- the distiller
class Distiller(Trainer):
    """The trainer, with the loss computed from the teachers' soft targets (+ hard labels, + features).

    Extra args: ``teacher_logits`` (n, labels) for every training row, ``labelled`` (n,) bool (rows with
    gold labels), the ``distill`` config, whether the task is multi-label, and for intermediate matches
    the live ``teacher`` model and the ``Projections``.
    """

    def __init__(self, *args, teacher_logits: torch.Tensor, labelled: torch.Tensor, dcfg: DistillConfig,
                 multi_label: bool, teacher=None, projections: Optional[Projections] = None, scheme=None,
                 pooled_targets: Optional[torch.Tensor] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher_logits, self.labelled, self.dcfg = teacher_logits, labelled, dcfg
        # a multi-task student: soft-target loss per task block (mean over tasks), gold loss in the gold's block
        self.scheme = scheme if scheme is not None and scheme.multi_task else None
        self.blocks = [slice(s[0], s[-1] + 1) for s in self.scheme.segments] if self.scheme else [slice(None)]
        self.kind = dcfg.kd_loss if dcfg.kd_loss != "auto" else ("bce" if multi_label else "kl")
        self.teacher, self.projections = teacher, projections
        # pooled_match: the teacher's pooled vector of every training row, and the learned student -> teacher map
        self.pooled_targets, self.pooled_projection = pooled_targets, None
        if pooled_targets is not None:
            self.pooled_projection = torch.nn.Linear(self.model.pooled_width(), pooled_targets.shape[1])
        self.total_steps = self.steps_per_epoch * self.cfg.epochs
        extra = [m for m in (projections, self.pooled_projection)
                 if m is not None and any(p.requires_grad for p in m.parameters())]
        if extra:
            from textsift.engines.trainer import build_scheduler

            for m in extra:
                m.to(self.device)
            optimizer = torch.optim.AdamW([p for m in extra for p in m.parameters()], lr=self.cfg.lr)
            self.optimizers.append(optimizer)
            self.schedulers.append(build_scheduler(optimizer, self.cfg, self.total_steps))

    def _batch(self, idx: np.ndarray) -> dict:
        batch = super()._batch(idx)
        batch["index"] = torch.as_tensor(idx)
        return batch

    def compute_loss(self, batch: dict) -> torch.Tensor:
        progress = self.step / max(1, self.total_steps)
        out = self.model(batch["input_ids"], batch["mask"])
        student = out.logits  # (batch, labels)
        teacher = self.teacher_logits[batch["index"]].to(student.device)
        d = self.dcfg
        kd = 0.0
        for block in self.blocks:
            s, t = student[:, block], teacher[:, block]
            tau = temperature(d.temperature_schedule, d.temperature, s, t, d.temperature_beta, d.temperature_gamma)
            kd = kd + kd_loss(self.kind, s, t, tau) / len(self.blocks)
        total = schedule_weight(d.kd_weight_schedule, d.kd_weight, progress) * kd
        parts = {"kd_loss": kd.item()}
        hard_weight = schedule_weight(d.hard_weight_schedule, d.hard_weight, progress)
        rows = self.labelled[batch["index"]].to(student.device)
        if hard_weight > 0 and bool(rows.any()):
            logits, targets = student[rows].float(), batch["targets"][rows]
            if self.scheme is not None:  # the other tasks' labels are no candidates for this gold label
                logits = logits.masked_fill(~self.scheme.gold_mask(targets.cpu()).to(logits.device), float("-inf"))
            hard = self.loss_fn(logits, targets)
            total = total + hard_weight * hard
            parts["hard_loss"] = hard.item()
        if d.intermediate:
            total = total + self._intermediate(batch, out, parts, rows if d.intermediate_rows == "labelled" else None)
        if self.pooled_projection is not None:
            target = self.pooled_targets[batch["index"]].to(student.device)
            pooled = pooled_loss(d.pooled_match.loss, self.pooled_projection(out.pooled.float()), target)
            parts["pooled_loss"] = pooled.item()
            total = total + d.pooled_match.weight * pooled
        self.loss_parts = parts
        return total

    def _intermediate(self, batch: dict, out, parts: dict, rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The intermediate-match losses over the batch, or over its ``rows`` (bool) alone
        (``intermediate_rows: labelled``: the teacher then runs on those rows only)."""
        from textsift.precision import autocast

        ids, mask = batch["input_ids"], batch["mask"]
        if rows is not None:
            if not bool(rows.any()):  # no gold row here: a zero that still gives the projections a gradient,
                # so every rank all-reduces the same gradient list (distributed.average_gradients)
                return sum((p.sum() * 0.0 for p in self.projections.parameters()), torch.zeros((), device=ids.device))
            ids, mask = ids[rows], mask[rows]
        pick = (lambda x: x) if rows is None else (lambda x: x[rows])  # noqa: E731
        with torch.no_grad(), autocast(self.teacher, self.device):
            t_out = self.teacher(ids, mask)
        total, proj = 0.0, 0
        for match in self.dcfg.intermediate:
            if match.feature == "hidden":
                s = self.projections(proj, pick(out.hidden_states[match.student_layer]).float())
                t = t_out.hidden_states[match.teacher_layer]
                proj += 1
            else:
                s = pick(out.attentions[match.student_layer - 1])
                t = t_out.attentions[match.teacher_layer - 1]
            loss = feature_loss(match.loss, s, t, mask)
            parts[f"{match.feature}_{match.teacher_layer}_{match.student_layer}_{match.loss}"] = loss.item()
            total = total + match.weight * loss
        return total

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.projections is not None:
            state["projections"] = self.projections.state_dict()
        if self.pooled_projection is not None:
            state["pooled_projection"] = self.pooled_projection.state_dict()
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        if self.projections is not None and state.get("projections"):
            self.projections.load_state_dict(state["projections"])
        if self.pooled_projection is not None and state.get("pooled_projection"):
            self.pooled_projection.load_state_dict(state["pooled_projection"])


# ---------------------------------------------------------------- the recipe
def distill_run(cfg: Config, run_dir, resume: bool = False, student=None) -> dict:
    """Distil ``cfg.distill.teacher`` into the student ``cfg.model`` (or into the given ``student`` model,
    e.g. a pruned copy of the teacher); returns ``metrics.json``'s content."""
    from textsift.engines import distributed
    from textsift.engines.train_run import _assemble, _finish, _fit, _write_run_json, load_datasets, run_session
    from textsift.rundir import write_json

    d = cfg.distill
    with run_session(cfg, run_dir, resume) as (run_dir, started):
        _check_tricks(cfg)
        if d.tasks:
            _check_multi_task_loss(cfg)
            teachers = TaskTeachers(d.tasks)
            task, train, dev, test = _multi_task_datasets(cfg, teachers)
        else:
            teachers = Teachers(d.teacher if isinstance(d.teacher, list) else [d.teacher], d.teacher_weights)
            task, train, dev, test = load_datasets(cfg)
            _check_dev_split(cfg, teachers)
        if task != teachers.task:
            raise TextsiftError(f"distill: the data is a {task} task but the teachers are {teachers.task} models")
        transfer, augmented = _extra_texts(cfg, [ex.text for ex in train], teachers.paths[0])
        student_form = _student_mask_form(cfg)
        # teachers see masked tokens their way (e.g. BERT's [MASK]); the student sees them its own way
        teacher_texts = [ex.text for ex in train] + transfer + _masked(augmented, mask_form(
            getattr(teachers.bundles[0].encoder, "tokenizer", None)))
        extra = transfer + _masked(augmented, student_form)
        texts = [ex.text for ex in train] + extra
        # rank 0 runs (or reads the cache of) the teachers; every rank trains on the same soft targets
        pooled = d.pooled_match is not None
        outputs = distributed.broadcast_object(
            _teacher_outputs(teachers, teacher_texts, (len(train), len(transfer)), d, pooled)
            if distributed.is_main() else None)
        logits = torch.from_numpy(outputs[0] if pooled else outputs)
        labelled = torch.arange(len(texts)) < len(train)
        teacher_model, projections = _live_teacher(cfg, teachers)
        factory = functools.partial(Distiller, teacher_logits=logits, labelled=labelled, dcfg=d,
                                    multi_label=teachers.task in ("multi_label", "hierarchical"),
                                    teacher=teacher_model, projections=None,
                                    scheme=getattr(teachers, "scheme", None),
                                    pooled_targets=torch.from_numpy(outputs[1]) if pooled else None)
        model_factory = functools.partial(_student_from_teacher, teachers, d.student_layers) if d.student_layers \
            else None
        if student is not None:
            model_factory = lambda *_: student  # noqa: E731
        run = _assemble(cfg, run_dir, resume, (task, train, dev, test), teachers.labels, extra, model_factory,
                        _with_projections(factory, cfg, teachers, teacher_model),
                        vocab_texts=[ex.text for ex in train] + transfer)  # masks never enter the vocabulary
        _check_student(cfg, run, teachers)
        main = distributed.is_main()
        if main:
            _write_run_json(run_dir, "running", started)
        run.trainer.clock_start = started
        _fit(run, resume)
        if main:  # reports and metrics: rank 0's alone
            metrics = _finish(run)
            metrics["distill"] = _teacher_report(teachers, run, d)
            write_json(run_dir / "metrics.json", metrics)
            _write_run_json(run_dir, "finished", started)
        return distributed.broadcast_object(metrics if main else None)


def _multi_task_datasets(cfg: Config, teachers: TaskTeachers):
    """Every task's train/dev/test (dev split per task as ``data`` says), labels prefixed ``task/``; returns
    ``("multi_task", train, dev, test)`` with the tasks' examples one after the other."""
    from textsift.data.labels import MultiTaskScheme
    from textsift.engines.train_run import load_datasets

    train, dev, test = [], [], []
    for spec, t in zip(cfg.distill.tasks, teachers.per_task):
        data = cfg.data.model_copy(update={"train": spec.train, "dev": spec.dev, "test": spec.test,
                                           "split_seed": cfg.data.split_seed if spec.split_seed is None
                                           else spec.split_seed})
        task_cfg = cfg.model_copy(update={"task": "single_label", "data": data})
        _, tr, dv, te = load_datasets(task_cfg)
        _check_dev_split(task_cfg, t, f"distill.tasks[{spec.name}].")
        unknown = sorted({ex.labels[0] for ex in tr} - set(t.labels))
        if unknown:
            raise TextsiftError(f"distill.tasks[{spec.name}]: {len(unknown)} label(s) of {spec.train} are not labels "
                                f"of its teacher {t.paths[0]}: {unknown[:5]} (teacher: {t.labels[:8]}); give the "
                                "task the teacher that was trained on these labels")
        MultiTaskScheme.prefix(tr + dv + (te or []), spec.name)
        log.info("task %s: %d train / %d dev%s examples, %d labels", spec.name, len(tr), len(dv),
                 f" / {len(te)} test" if te else "", len(t.labels))
        train, dev, test = train + tr, dev + dv, test + (te or [])
    return "multi_task", train, dev, test or None


def _check_multi_task_loss(cfg: Config) -> None:
    """A multi-task student's gold-label loss is a softmax loss inside the gold task's block (the other
    blocks masked out), which ce, focal and poly allow; label smoothing would spread mass onto the masked
    labels of other tasks."""
    extra = cfg.loss.model_extra or {}
    if cfg.loss.name not in (None, "ce", "focal", "poly") or extra.get("label_smoothing"):
        raise TextsiftError(f"loss: a multi-task student (distill.tasks) trains its gold labels with a softmax loss "
                            f"inside each task's block: ce, focal or poly without label_smoothing; found "
                            f"{cfg.loss.model_dump()}")


def _check_dev_split(cfg: Config, teachers: "Teachers", seed_key: str = "data.") -> None:
    """Warn when the student holds out dev from the same training file as a teacher but splits it another
    way, or as a K-fold teacher (which trained on all of it): the student's dev then holds texts that teacher
    trained on, and choosing on it favours copying."""
    from textsift.data import split_seed

    if cfg.data.dev:
        return
    split = (split_seed(cfg), cfg.data.dev_size, cfg.data.limit)
    for path, bundle in zip(teachers.paths, teachers.bundles):
        t = bundle.config.data
        if Path(t.train).resolve() != Path(cfg.data.train).resolve():
            continue
        if bundle.config.train.kfold:  # its K models together trained on every text of the file
            log.warning("distill: the teacher %s is a %d-fold run: its models together trained on every text of %s, "
                        "so any dev split the student holds out from that file holds texts the teacher trained on. "
                        "Give %sdev a file the teacher never trained on", path, bundle.config.train.kfold,
                        cfg.data.train, seed_key)
            continue
        if t.dev:
            continue
        theirs = (split_seed(bundle.config), t.dev_size, t.limit)
        if theirs != split:
            log.warning("distill: the student holds out dev from %s with (split seed, dev_size, limit) = %s, the "
                        "teacher %s with %s: the student's dev holds texts that teacher trained on. Set "
                        "%ssplit_seed=%s, data.dev_size=%s and data.limit=%s as the teacher did, or give a "
                        "%sdev file", cfg.data.train, split, path, theirs, seed_key,
                        *("null" if v is None else v for v in theirs), seed_key)


def _check_tricks(cfg: Config) -> None:
    from textsift.registry import TRICKS
    from textsift.tricks.base import Trick

    for spec in cfg.train.tricks:
        cls = TRICKS.entry(spec.name).obj
        if getattr(cls, "owns_backward", False) or cls.compute_loss is not Trick.compute_loss:
            raise TextsiftError(f"train.tricks: '{spec.name}' computes its own loss or backward pass on the gold "
                                "labels, which distillation replaces; remove it (ema, swa, noisytune and "
                                "multisample_dropout combine with distillation)")


def _extra_texts(cfg: Config, train_texts: list[str], first_teacher: Path) -> tuple[list[str], list[str]]:
    """Transfer texts and augmented copies (with ``MASK`` placeholders) of the training texts."""
    d, transfer, augmented = cfg.distill, [], []
    if d.transfer_data:
        from textsift.data import iter_texts

        transfer = [text for _, text in iter_texts(d.transfer_data, cfg.data) if text.strip()]
        log.info("transfer data: %d unlabelled texts from %s", len(transfer), d.transfer_data)
    if d.augment.copies:
        augmented = augment_texts(train_texts, d.augment, cfg.train.seed, _neighbours(d, train_texts, first_teacher))
        log.info("augmentation: %d copies of the training texts", len(augmented))
    return transfer, augmented


def _neighbours(d: DistillConfig, train_texts: list[str], first_teacher: Path) -> Optional[dict[str, list[str]]]:
    """The replacement pool of ``augment.replace``: each training word's nearest words in
    ``augment.vectors`` (default: ``first_teacher``'s own input embeddings)."""
    a = d.augment
    if not a.replace:
        return None
    from textsift.engines.kfold import FOLDS_DIR
    from textsift.models.vectors import nearest_words

    source = a.vectors or str(first_teacher)
    if not a.vectors and (first_teacher / FOLDS_DIR / "fold-0").is_dir():  # a K-fold teacher: the embeddings
        source = str(first_teacher / FOLDS_DIR / "fold-0")                 # of its first fold
    words = {tok for text in train_texts for tok in _tokens(text)[0]}
    started = time.perf_counter()
    try:
        table = nearest_words(source, words, a.neighbours, a.candidates)
    except TextsiftError as e:
        how = ("" if a.vectors else " (the default: the teacher's own input embeddings, which needs a "
               "pretrained-encoder teacher)")
        raise TextsiftError(f"distill.augment.replace needs word vectors{how}; reading {source} failed: {e}. "
                            "Set distill.augment.vectors to a word2vec/GloVe file or an encoder folder, or "
                            "set distill.augment.replace: 0") from e
    log.info("augmentation: nearest words of %d of %d training words from %s (%d each, %.1f s)", len(table),
             len(words), source, a.neighbours, time.perf_counter() - started)
    return table


def _masked(texts: list[str], form: str) -> list[str]:
    return [t.replace(MASK, form) for t in texts] if form != MASK else texts


def _student_mask_form(cfg: Config) -> str:
    if cfg.model.name != "hf":
        return MASK
    from textsift.tokenizers.hf import load_hf_tokenizer

    return mask_form(load_hf_tokenizer((cfg.model.model_extra or {})["pretrained"]))


def _student_from_teacher(teachers: Teachers, layers: list[int], encoder, scheme, params: dict):
    """The teacher's own encoder and head, at full depth with the teacher's weights, then only the
    ``student_layers`` kept. The student's model.json then describes the smaller model."""
    from textsift.models import build_model

    t = teachers.bundles[0]
    if type(t.model).__name__ != "HFClassifier":
        raise TextsiftError("distill.student_layers: the teacher must be an `hf` encoder run")
    # the teacher's parameters (pooling, dropout, ...), except what the student's `model` section sets
    merged = {**t.model.params.model_dump(), **params, "pretrained": str(teachers.paths[0] / "hf")}
    student = build_model("hf", merged, encoder.vocab_size, scheme.num_labels, encoder.pad_id,
                          pretrained_weights=False)
    missing, unexpected = student.load_state_dict(t.model.state_dict(), strict=False)
    if unexpected or [k for k in missing if not k.startswith("encoder.")]:
        raise TextsiftError("distill.student_layers: the student's `model` parameters describe a different model "
                            "than the teacher's; leave them out (only `name: hf` is needed)")
    depth = student.num_layers
    student.keep_layers(layers)
    log.info("student: the teacher's embeddings, head and layers %s (%d of %d)", layers, len(layers), depth)
    return student


def _live_teacher(cfg: Config, teachers: Teachers):
    """The teacher model run on every batch (intermediate matches only), with features switched on."""
    if not cfg.distill.intermediate:
        return None, None
    t = teachers.bundles[0]
    if not hasattr(t.model, "output_features") or getattr(t.model, "members", None) is not None:
        raise TextsiftError("distill.intermediate: the teacher must be a single `hf` encoder run (not K-fold)")
    feats = {m.feature for m in cfg.distill.intermediate}
    t.model.output_features("hidden" in feats, "attention" in feats)
    t.model.eval()
    for p in t.model.parameters():
        p.requires_grad_(False)
    return t.model, None


def _with_projections(factory, cfg: Config, teachers: Teachers, teacher_model):
    """Wrap the Distiller factory so it gets the student↔teacher width projections (built once the
    student exists) and the student emits the features the matches need."""
    if teacher_model is None:
        return factory

    def build(model, *args, **kwargs):
        if not hasattr(model, "output_features"):
            raise TextsiftError("distill.intermediate: the student must be an `hf` encoder (model.name: hf)")
        feats = {m.feature for m in cfg.distill.intermediate}
        model.output_features("hidden" in feats, "attention" in feats)
        width = lambda m: m.encoder.config.hidden_size  # noqa: E731
        pairs = [(width(model), width(teacher_model)) for m in cfg.distill.intermediate if m.feature == "hidden"]
        for m in cfg.distill.intermediate:
            for who, layer, net in (("teacher", m.teacher_layer, teacher_model), ("student", m.student_layer, model)):
                if layer > net.num_layers:
                    raise TextsiftError(f"distill.intermediate: {who}_layer {layer} is beyond the {who}'s "
                                        f"{net.num_layers} layers")
        return factory.func(model, *args, **{**factory.keywords, **kwargs, "projections": Projections(pairs)})
    return build


def _check_student(cfg: Config, run, teachers: Teachers) -> None:
    """Intermediate matches compare token positions: teacher and student must tokenize alike."""
    if not cfg.distill.intermediate:
        return
    t = teachers.bundles[0].encoder
    probe = [ex.text for ex in run.train[:20]]
    if t.encode_batch(probe, cfg.train.max_length) != run.encoder.encode_batch(probe, cfg.train.max_length):
        raise TextsiftError("distill.intermediate: teacher and student tokenize the training texts differently; "
                            "intermediate matches need the same tokenizer (use the teacher's pretrained "
                            "folder for the student, or distill.student_layers)")


def _teacher_report(teachers: Teachers, run, d: DistillConfig) -> dict:
    """The teachers' own dev/test metrics on the same examples, for the teacher-vs-student comparison."""
    from textsift.engines.evaluation import split_metrics

    report = {"teachers": [str(p) for p in teachers.paths], "kd_loss": d.kd_loss, "temperature": d.temperature,
              "extra_texts": int((~run.trainer.labelled).sum())}
    for split, examples in (("dev", run.dev), ("test", run.test)):
        if not examples:
            continue
        logits = torch.from_numpy(cached_teacher_logits(teachers, [ex.text for ex in examples], d))
        own = getattr(teachers, "scheme", None) or teachers.bundles[0].scheme  # its thresholds (multi-label)
        probs = own.probabilities(logits).numpy()
        report[f"teacher_{split}"] = split_metrics(run.scheme, run.scheme.gold([ex.labels for ex in examples]),
                                                   own.decide(probs))
    return report
