"""The config schema: plain data, validated before anything is built.

Sections: ``task``, ``data``, ``tokenizer``, ``model``, ``loss``, ``train``, ``calibration``, ``report``,
``distill``. Only
``data.train`` and ``model.name`` are required; everything else has a default. Model and loss
hyperparameters are validated against the parameter class their registry entry declares.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """Base for config sections: unknown keys are errors (no ``**kwargs`` sinks that swallow typos)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    train: Optional[str] = Field(None, description="Training file (.jsonl, .csv, .tsv). Required for training.")
    dev: Optional[str] = Field(None, description="Dev file; when absent, a stratified `dev_size` split of train.")
    test: Optional[str] = Field(None, description="Test file, evaluated after training.")
    format: Literal["auto", "jsonl", "csv", "tsv"] = Field("auto", description="File format; auto = by extension.")
    text_field: Union[str, list[str]] = Field("text", description="Text field, or several joined by `text_joiner`.")
    text_joiner: str = Field(" ", description="Separator used when several text fields are joined.")
    label_field: Optional[str] = Field(None, description="Label field; auto = `label`, else `labels`.")
    label_delimiter: str = Field(",", description="Splits a string label into several (multi-label only).")
    hierarchy_separator: str = Field("/", description="Separator of hierarchical label paths (`A/B/C`).")
    hierarchy: Optional[str] = Field(None, description="task hierarchical: an edges file, one `parent<TAB>child` per "
                                     "line (trees and DAGs); default: the hierarchy implied by the label paths.")
    empty_text: Literal["error", "skip"] = Field("error", description="What to do with empty texts.")
    dev_size: float = Field(0.1, gt=0, lt=1, description="Fraction of train held out when there is no dev file.")
    split_seed: Optional[int] = Field(None, description="Seed of that held-out dev split; default: train.seed. Set it "
                                      "to vary train.seed over runs on one and the same split (seed averages, or a "
                                      "distilled student whose dev must stay out of its teacher's training texts).")
    limit: Optional[int] = Field(None, gt=0, description="Use only the first N training examples (quick runs).")
    streaming: bool = Field(False, description="Read the training file line by line every epoch instead of loading it "
                            "(data larger than memory); needs data.dev. See Distributed training and large data.")
    shuffle_buffer: int = Field(10000, ge=1, description="streaming: examples held in the seeded shuffle buffer "
                                "(larger = closer to a full shuffle, more memory).")


class TokenizerConfig(Section):
    name: str = Field("char", description="`char` (Chinese per character, Latin runs as words) or `word`.")
    lowercase: bool = Field(True, description="Lowercase before tokenizing.")
    normalize: Literal["none", "nfkc"] = Field("nfkc", description="Unicode normalisation (NFKC folds full-width forms).")
    split_runs: bool = Field(False, description="char: split letter/digit runs (Latin words, numbers) into single characters too.")
    keep_spaces: bool = Field(False, description="char: keep each whitespace run as a `▁` token, so n-grams see word boundaries.")
    min_freq: int = Field(1, ge=1, description="Drop tokens seen fewer times in train.")
    max_size: Optional[int] = Field(50000, ge=1, description="Keep at most this many tokens (most frequent first).")
    ngrams: int = Field(1, ge=1, le=5, description="Add hashed token n-grams up to this order (fastText style).")
    ngram_buckets: int = Field(200000, ge=1, description="Hash buckets for n-grams (and for `word_ngrams`).")
    token_pattern: Optional[str] = Field(
        None, description="word: a regular expression whose matches are the tokens, instead of the built-in rules "
                          "(PTB clitics, punctuation kept as tokens). `\\b\\w\\w+\\b` is scikit-learn's TfidfVectorizer "
                          "default: words of two or more letters/digits, punctuation and one-character tokens dropped. "
                          "Matches made only of Chinese characters are still segmented by jieba.")
    word_ngrams: int = Field(
        0, ge=0, le=5, description="char: also add the `word` tokenizer's words (jieba for Chinese) and their n-grams "
                                   "up to this order as hashed features in the `ngram_buckets` (for n-gram models: "
                                   "`tfidf_linear`, `fasttext`); 0 = off. `word_ngrams: 2` = word 1-2-grams.")

    @field_validator("token_pattern")
    @classmethod
    def _compiles(cls, v):
        if v is None:
            return v
        import re

        try:
            pattern = re.compile(v)
        except re.error as err:
            raise ValueError(f"expected a Python regular expression, found {v!r} ({err}); "
                             "e.g. '\\b\\w\\w+\\b' for words of two or more characters") from None
        if pattern.fullmatch(""):
            raise ValueError(f"the pattern {v!r} matches the empty string, so it would produce empty tokens; "
                             "use + instead of * (e.g. '\\w+')")
        return v

    @model_validator(mode="after")
    def _options_of_their_tokenizer(self):
        if self.token_pattern is not None and self.name == "char":
            raise ValueError("token_pattern is an option of the `word` tokenizer, found name: char; "
                             "set name: word or remove token_pattern")
        if self.word_ngrams and self.name == "word":
            raise ValueError("word_ngrams adds word n-grams to the `char` tokenizer, found name: word; "
                             "with the word tokenizer use ngrams instead")
        return self


class ModelConfig(BaseModel):
    """`name` picks a registered model; the other keys are that model's parameters (validated later)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(..., description="A registered model name (`textsift ls`).")


class LossConfig(BaseModel):
    """`name` picks a registered loss (default: `ce` for single-label, `bce` for multi-label)."""

    model_config = ConfigDict(extra="allow")
    name: Optional[str] = None


class TrickConfig(BaseModel):
    """`name` picks a registered trick (`textsift ls tricks`); the other keys are its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(..., description="A registered trick name.")


class EarlyStopping(Section):
    metric: Optional[str] = Field(None, description="Dev metric to select on; default accuracy (single) / micro_f1 (multi).")
    patience: Optional[int] = Field(3, ge=1, description="Epochs without improvement before stopping; null = never.")


class TrainConfig(Section):
    epochs: int = Field(10, ge=1, description="Passes over the training data (early stopping may end sooner).")
    batch_size: int = Field(64, ge=1, description="Examples per micro-batch.")
    eval_batch_size: Optional[int] = Field(None, ge=1, description="Default: 4 x batch_size.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay (not applied to biases and norms).")
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="Optimizer.")
    momentum: float = Field(0.9, ge=0, description="SGD momentum.")
    scheduler: Literal["linear", "cosine", "constant"] = Field("linear", description="Learning-rate decay after warmup.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Fraction of optimizer steps spent warming up.")
    warmup_steps: Optional[int] = Field(None, ge=0, description="Overrides warmup_ratio when set.")
    max_grad_norm: Optional[float] = Field(1.0, gt=0, description="Gradient clipping; null = off.")
    grad_accum_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    seed: int = Field(42, description="Seeds initialisation, shuffling, dropout and the dev split.")
    max_length: int = Field(128, ge=1, description="Tokens kept per text (head truncation; `hf` models: see "
                                                   "model.truncation and model.chunk_size).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Autocast precision of forward passes. auto = bf16 for pretrained encoders (`hf`) "
                            "on CPUs with AVX-512 BF16 or GPUs with bf16, else fp32. fp16 needs a CUDA GPU.")
    bucket_by_length: Optional[bool] = Field(
        None, description="Batch texts of similar length together (shuffled pools of 50 batches; less padding). "
                          "Default: on for `hf` models, off otherwise.")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto = cuda, else mps, else cpu.")
    threads: Optional[int] = Field(None, ge=1, description="torch CPU threads; default: all cores.")
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    thresholds: Literal["per_label", "global"] = Field(
        "per_label", description="Multi-label decision thresholds tuned on dev: per label to maximise each "
                                 "label's F1 (favours macro-F1), or one shared threshold maximising micro-F1.")
    refit: bool = Field(False, description="One-pass models (tfidf_linear): after choosing settings on dev, fit again on "
                                           "train + dev. Dev metrics are measured before the refit.")
    checkpoint_every: Optional[int] = Field(None, ge=1, description="Also checkpoint every N optimizer steps (resume mid-epoch).")
    kfold: Optional[int] = Field(None, ge=2, description="Train K models on stratified folds of train: out-of-fold "
                                 "metrics, suspect-label ranking, and an averaged-logit ensemble (see K-fold).")
    tricks: list[TrickConfig] = Field(default_factory=list, description="Training tricks, each `{name: ..., params...}` "
                                      "(e.g. `[{name: fgm, epsilon: 1.0}, {name: ema, decay: 0.999}]`); see Tricks.")
    progress: bool = Field(True, description="Show progress bars.")


class CalibrationConfig(Section):
    """Probability calibration fitted on dev after training (single-label models)."""

    method: Optional[Literal["temperature", "none"]] = Field(
        None, description="temperature = temperature scaling (Guo et al. 2017): one scalar T > 0 divides the "
                          "logits before the softmax, fitted on dev by minimising NLL; the predicted label never "
                          "changes, only the probabilities. none = off. Default (null): temperature for "
                          "single_label, skipped for multi_label/hierarchical (sigmoid outputs with tuned "
                          "thresholds), where setting it explicitly is an error.")
    bins: int = Field(15, ge=2, le=100, description="Equal-width confidence bins of the expected calibration error "
                                                    "(ECE) and the reliability diagram.")


class ReportConfig(Section):
    bad_cases: int = Field(500, ge=0, description="Misclassified examples kept in the bad-case file.")
    plots: bool = Field(True, description="Write training-curve and confusion-matrix PNGs.")
    tensorboard: bool = Field(True, description="Write TensorBoard event files under tensorboard/.")


class FeatureMatch(Section):
    """One intermediate-layer match between teacher and student transformers (TinyBERT / TextBrewer's
    ``intermediate_matches``)."""

    teacher_layer: int = Field(..., ge=0, description="Teacher layer: hidden 0 = embeddings, i = output of "
                                                      "layer i; attention i = layer i's attention (1-based).")
    student_layer: int = Field(..., ge=0, description="Student layer, numbered the same way.")
    feature: Literal["hidden", "attention"] = Field("hidden", description="Hidden states or attention maps.")
    loss: Literal["hidden_mse", "cos", "nst_mmd", "attention_mse", "attention_ce"] = Field(
        "hidden_mse", description="hidden: hidden_mse, cos or nst_mmd; attention: attention_mse or attention_ce.")
    weight: float = Field(1.0, ge=0, description="Weight of this loss in the total.")

    @model_validator(mode="after")
    def _check(self):
        attention_loss = self.loss.startswith("attention")
        if (self.feature == "attention") != attention_loss:
            raise ValueError(f"feature {self.feature!r} cannot use loss {self.loss!r}: hidden states take "
                             "hidden_mse, cos or nst_mmd; attention maps take attention_mse or attention_ce")
        if self.feature == "attention" and (self.teacher_layer < 1 or self.student_layer < 1):
            raise ValueError("attention layers are numbered from 1 (layer i's attention)")
        return self


class PooledMatch(Section):
    """The student's pooled vector (what its head reads), mapped by a learned linear projection to the
    teacher's width, matched to the teacher's pooled vector on every training text (representation transfer,
    Mukherjee & Awadallah 2020, "XtremeDistil"). Works across architectures and tokenizers: the teacher's
    vectors are computed once with its logits and cached with them."""

    weight: float = Field(1.0, gt=0, description="Weight of this loss in the total.")
    loss: Literal["cos", "mse"] = Field("cos", description="cos = 1 - cosine similarity; mse = mean squared "
                                                           "error over the teacher's dimensions.")


class AugmentConfig(Section):
    """Augmented copies of the training texts, labelled by the teacher only (Tang et al. 2019, "Distilling
    Task-Specific Knowledge from BERT into Simple Neural Networks": masking and n-gram sampling; Jiao et al.
    2020, TinyBERT: replacing words by their nearest neighbours in a word-vector space)."""

    copies: int = Field(0, ge=0, description="Augmented copies per training text (0 = off).")
    mask: float = Field(0.1, ge=0, le=1, description="Probability of replacing a token by the teacher's mask "
                                                     "(unknown) token.")
    delete: float = Field(0.1, ge=0, le=1, description="Probability of deleting a token.")
    ngram: float = Field(0.25, ge=0, le=1, description="Probability that a copy is a random n-gram of the text.")
    ngram_max: int = Field(5, ge=1, description="Longest sampled n-gram, in tokens.")
    replace: float = Field(0.0, ge=0, le=1, description="Probability of replacing a word by one of its "
                                                        "`neighbours` nearest words in `vectors` (TinyBERT: 0.4).")
    neighbours: int = Field(15, ge=1, description="How many nearest words (cosine similarity) a replacement is "
                                                  "drawn from (TinyBERT: 15).")
    vectors: Optional[str] = Field(None, description="Word vectors whose neighbours replace words: a file or "
                                   "folder as for model.vectors; default the (first) teacher run's own input "
                                   "embeddings (a pretrained-encoder teacher).")
    candidates: int = Field(30000, ge=1, description="Replacement words: the first N words of `vectors` (a "
                                                     "file's frequent words; an encoder's whole-word pieces).")

    @model_validator(mode="after")
    def _probabilities(self):
        if self.mask + self.delete + self.replace > 1:
            raise ValueError(f"mask + delete + replace is {self.mask + self.delete + self.replace:g}, but they are "
                             "the shares of one draw per token: expected at most 1; lower one of them")
        return self


class DistillTask(Section):
    """One task of a multi-task student (``distill.tasks``): its teacher(s) and its own data files."""

    name: str = Field(..., description="Task name: the prefix of its labels (`name/label`) and of its report files.")
    teacher: Union[str, list[str]] = Field(..., description="This task's teacher run directory (single-label), "
                                           "or a list of them (averaged logits).")
    teacher_weights: Optional[list[float]] = Field(None, description="Weights of this task's teachers' logits.")
    train: str = Field(..., description="This task's training file (its labels are the task's gold labels).")
    dev: Optional[str] = Field(None, description="This task's dev file; default: a data.dev_size split of its train.")
    test: Optional[str] = Field(None, description="This task's test file.")
    split_seed: Optional[int] = Field(None, description="Seed of this task's held-out dev split (no dev file); "
                                      "default data.split_seed. Set it to the seed its teacher split with.")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not v or "/" in v or v != v.strip():
            raise ValueError(f"expected a task name without '/' or surrounding spaces, got {v!r}")
        return v


class DistillConfig(Section):
    teacher: Optional[Union[str, list[str]]] = Field(
        None, description="Teacher run directory, or a list of them (averaged logits); a K-fold run counts as its K "
                          "models. Required unless `tasks` is given.")
    tasks: list[DistillTask] = Field(default_factory=list, description="Multi-task distillation instead of "
                                     "`teacher`: one student, one output block per task, each task with its own "
                                     "teacher and data files (then leave data.train/dev/test out); see Distillation.")
    teacher_weights: Optional[list[float]] = Field(None, description="Weights of the teachers' logits "
                                                   "(normalised); default equal.")
    kd_loss: Literal["auto", "kl", "mse", "bce"] = Field("auto", description="Soft-target loss: auto = kl "
                                                         "(single-label) or bce (multi-label, per-label sigmoid).")
    temperature: float = Field(4.0, gt=0, description="Softmax/sigmoid temperature of the soft targets.")
    temperature_schedule: Literal["constant", "flsw", "cwsm"] = Field(
        "constant", description="Per-example temperature: constant, flsw (Wen et al. 2019) or cwsm (TextBrewer).")
    temperature_beta: float = Field(1.0, ge=0, description="flsw/cwsm: how far temperatures spread.")
    temperature_gamma: float = Field(2.0, gt=0, description="flsw: exponent of the disagreement weight.")
    kd_weight: float = Field(1.0, ge=0, description="Weight of the soft-target loss.")
    kd_weight_schedule: Literal["constant", "linear_decay", "linear_growth"] = Field(
        "constant", description="How kd_weight changes over the training steps.")
    hard_weight: float = Field(0.0, ge=0, description="Weight of the ordinary loss on gold labels (labelled "
                                                      "examples only).")
    hard_weight_schedule: Literal["constant", "linear_decay", "linear_growth"] = Field(
        "constant", description="How hard_weight changes over the training steps.")
    intermediate: list[FeatureMatch] = Field(default_factory=list, description="Intermediate matches between "
                                             "transformer teacher and student (same tokenizer); see Distillation.")
    intermediate_rows: Literal["all", "labelled"] = Field(
        "all", description="Training rows the intermediate matches cover: all, or labelled = only the texts "
                           "with gold labels (not transfer_data or augmented copies, which then train on the "
                           "soft targets alone). The teacher's live forward pass then runs on those rows only, "
                           "which saves its cost on the extra texts.")
    pooled_match: Optional[PooledMatch] = Field(None, description="Also match the student's pooled vector to the "
                                                "teacher's (any student; one teacher run, not K-fold); see "
                                                "Distillation.")
    student_layers: Optional[list[int]] = Field(None, description="Build the student from the teacher itself, "
                                                "keeping these teacher layers (0-based), e.g. [1, 4] for 6 -> 2; "
                                                "`model` is then `{name: hf}` (plus optional hf parameters).")
    transfer_data: Optional[str] = Field(None, description="Extra unlabelled texts (.txt lines, or .jsonl/.csv "
                                         "with the text field) labelled by the teacher only.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    cache: bool = Field(True, description="Cache teacher logits on disk (keyed by teachers and texts) and reuse them.")
    cache_dir: Optional[str] = Field(None, description="Where cached teacher logits live; default "
                                     "~/.cache/textsift/teacher_logits.")
    teacher_batch_size: int = Field(64, ge=1, description="Batch size of the teachers' forward passes.")

    @field_validator("teacher")
    @classmethod
    def _teachers(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("expected at least one teacher run directory")
        return v

    @model_validator(mode="after")
    def _check(self):
        if (self.teacher is None) == (not self.tasks):
            raise ValueError("expected either teacher (one task) or tasks (multi-task), "
                             f"found {'both' if self.tasks else 'neither'}")
        if self.tasks:
            names = [t.name for t in self.tasks]
            if len(self.tasks) < 2 or len(set(names)) != len(names):
                raise ValueError(f"tasks: expected at least two tasks with distinct names, found {names}")
            if self.teacher_weights is not None or self.intermediate or self.student_layers or self.pooled_match:
                raise ValueError("tasks: teacher_weights go in each task; intermediate matches, pooled_match and "
                                 "student_layers need one teacher and are not available to a multi-task student")
            for t in self.tasks:
                k = len(t.teacher) if isinstance(t.teacher, list) else 1
                if t.teacher_weights is not None and len(t.teacher_weights) != k:
                    raise ValueError(f"tasks[{t.name}].teacher_weights has {len(t.teacher_weights)} values for "
                                     f"{k} teacher(s)")
            return self
        n = len(self.teacher) if isinstance(self.teacher, list) else 1
        if self.teacher_weights is not None and len(self.teacher_weights) != n:
            raise ValueError(f"teacher_weights has {len(self.teacher_weights)} values for {n} teacher(s)")
        if self.teacher_weights is not None and (min(self.teacher_weights) < 0 or sum(self.teacher_weights) <= 0):
            raise ValueError("teacher_weights must be non-negative with a positive sum")
        if (self.intermediate or self.student_layers or self.pooled_match) and n > 1:
            raise ValueError("intermediate matches, pooled_match and student_layers need exactly one teacher")
        if self.student_layers is not None and (not self.student_layers or min(self.student_layers) < 0):
            raise ValueError("student_layers: expected a non-empty list of 0-based teacher layer indices")
        return self


class HierarchyConfig(Section):
    """How ``task: hierarchical`` scores and decodes (see Hierarchical classification)."""

    method: Literal["flat", "max_constraint", "conditional"] = Field(
        "flat", description="flat = BCE over every node; max_constraint = C-HMCNN (a node's probability is the "
                            "max over its descendants', trained with MCLoss); conditional = each node's sigmoid "
                            "given its parents, trained where the parents are gold, chained into probabilities.")
    decoding: Literal["top_down", "threshold_closure"] = Field(
        "top_down", description="top_down = a node is predicted only if its parents are; threshold_closure = "
                                "threshold, then add every ancestor. Outputs are always ancestor-closed.")


class Config(Section):
    task: Optional[Literal["single_label", "multi_label", "hierarchical", "multi_task"]] = Field(
        None, description="Inferred from the training labels when absent (multi_task: set by distill.tasks).")
    data: DataConfig = Field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    model: ModelConfig
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    hierarchy: HierarchyConfig = Field(default_factory=HierarchyConfig)
    distill: Optional[DistillConfig] = Field(None, description="Knowledge distillation from teacher runs "
                                             "(`textsift distill`); see Distillation.")

    @field_validator("task", mode="before")
    @classmethod
    def _task_alias(cls, v):
        return {"single": "single_label", "multi": "multi_label", "multilabel": "multi_label"}.get(v, v)

    @model_validator(mode="after")
    def _hierarchy_needs_hierarchical(self):
        # values, not fields set: a resolved config.yaml writes every default out
        defaults = HierarchyConfig()
        changed = [f"hierarchy.{k}" for k in HierarchyConfig.model_fields
                   if getattr(self.hierarchy, k) != getattr(defaults, k)] + \
                  (["data.hierarchy"] if self.data.hierarchy else []) + \
                  (["loss.name: mcloss"] if self.loss.name == "mcloss" else [])
        if self.distill is not None and self.train.kfold:  # kfold_run would train plain folds, silently
            raise ValueError("train.kfold cannot be combined with distill: K-fold trains its folds on gold labels "
                             "alone; remove train.kfold (a K-fold run can be the teacher: distill.teacher: RUN)")
        tasks = bool(self.distill and self.distill.tasks)
        if tasks and (self.data.train or self.data.dev or self.data.test):
            raise ValueError("distill.tasks: each task names its own train/dev/test files; remove data.train, "
                             "data.dev and data.test (data's other settings apply to every task)")
        if tasks and self.task not in (None, "multi_task") or self.task == "multi_task" and not tasks:
            raise ValueError(f"task: multi_task goes with distill.tasks (found task {self.task} and "
                             f"{'' if tasks else 'no '}distill.tasks); leave task out")
        if self.task in ("single_label", "multi_label", "multi_task") and changed:
            raise ValueError(f"{', '.join(changed)} only apply to task: hierarchical, but task is {self.task}; "
                             "set task: hierarchical or remove them")
        return self


def calibration_task_error(task: str) -> str:
    """Why ``calibration.method: temperature`` is refused for ``task`` (config validation and, for a task
    inferred from the data, the train recipe's check)."""
    how = "one softmax per task" if task == "multi_task" else "per-label sigmoids with thresholds tuned on dev"
    return (f"calibration.method: temperature scaling applies to single_label models (softmax over one label), "
            f"but the task is {task} ({how}); remove calibration.method or set it to none")
