"""Fine-tune a transformer encoder for 3-class financial sentiment (full or LoRA).

Decisions the issue left open:
- Batches are built from token-length-sorted buckets (padding overhead ~1.03x instead of
  ~1.4x), and the *order of batches* is shuffled each epoch with the run's seed.
- Early stopping watches validation macro-F1 (``evals_per_epoch`` times per epoch); the
  weights of the best evaluation are restored before calibration and saving.
- Temperature scaling is fitted on the same validation rows after training (nlp.models.calibration).
- The artifact is rewritten at each new best evaluation and SIGTERM/SIGINT stop the loop
  cleanly, so a run cut short on a busy machine still leaves its best model.
- Speed on CPU: one torch thread per run is fastest when other jobs share the cores (two
  threads on a loaded 2-core box ran 3-5x slower per step); bf16 autocast uses AMX.
- Only names that are not test splits are accepted as training data (see FinetuneConfig).
"""
from __future__ import annotations

import hashlib
import logging
import math
import shlex
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from core import lifecycle
from core.errors import UsageError
from core.paths import SPLITS_DIR
from core.threads import set_threads
from nlp.contracts import LABELS
from nlp.entity_input import is_entity_frame, marked_texts
from nlp.models.artifact import ModelMeta, load_base_for_classification, save_classifier
from nlp.models.config import FinetuneConfig
from nlp.models.distill import joined_period, labeled_keys, load_unlabeled, teacher_fingerprints, teacher_probs
from nlp.models.metrics import accuracy, macro_f1
from nlp.models.training import UNLABELED, TokenizedSet, encode_labels, predict_logits, seed_everything
from nlp.splits import ENTITY_SETS

log = logging.getLogger(__name__)


def frame_hash(df: pd.DataFrame) -> str:
    """Order-independent sha256 of a labeled frame's (text, label) rows."""
    rows = sorted(f"{t}\t{l}" for t, l in zip(df["text"], df["label"]))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def split_manifest_hashes() -> dict[str, str]:
    """sha256 of every split manifest in corpora/splits (what defines train/validation/test)."""
    if not SPLITS_DIR.is_dir():
        return {}
    return {
        str(p.relative_to(SPLITS_DIR)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(SPLITS_DIR.rglob("*"))
        if p.is_file()
    }


def load_sets(names: list[str], mark_entities: bool = True) -> pd.DataFrame:
    """Concatenate labeled sets by name (nlp.labeled_sets) into one text/label frame.

    Rows of entity-level sets (FinEntity, SEntFiN) come as an entity-aware model reads them: the
    text with the entity marked (nlp.entity_input); ``mark_entities=False`` gives the plain text
    (what a sentence model or a baseline reads).
    """
    from nlp.labeled_sets import load_labeled_set

    frames = []
    for name in names:
        df = load_labeled_set(name)
        text = marked_texts(df) if mark_entities and is_entity_frame(df) else df["text"]
        frames.append(pd.DataFrame({"text": list(text), "label": df["label"].to_numpy(), "set": name}))
    return pd.concat(frames, ignore_index=True)


def training_loss(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None,
                  hard_loss: torch.nn.Module, alpha: float) -> torch.Tensor:
    """Cross-entropy on the labeled rows, mixed with cross-entropy to ``soft`` targets if given.

    Rows without a label (``UNLABELED``) contribute only through ``soft``.
    """
    labeled = labels != UNLABELED
    hard = hard_loss(logits, labels) if labeled.any() else logits.sum() * 0.0
    if soft is None:
        return hard
    soft_ce = -(soft * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
    return (1 - alpha) * hard + alpha * soft_ce


def class_weights(labels: np.ndarray, n_classes: int = len(LABELS)) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get weight 0)."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An epoch of the same size drawn with replacement so each class is equally likely."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(float)
    p = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)[labels]
    return rng.choice(len(labels), size=len(labels), replace=True, p=p / p.sum())


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over trainable params; no decay on biases/LayerNorm; fused kernel when available."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # fused kernel missing for this device/dtype
        return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(opt, total_steps: int, cfg: FinetuneConfig):
    from transformers import get_scheduler

    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.schedule]
    return get_scheduler(name, opt, num_warmup_steps=int(cfg.warmup_ratio * total_steps), num_training_steps=total_steps)


@dataclass
class TrainResult:
    model: torch.nn.Module
    tokenizer: object
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    val_logits: torch.Tensor | None = None
    seconds: float = 0.0


def _prepare_model(cfg: FinetuneConfig):
    tokenizer, model = load_base_for_classification(cfg.base, cfg.base_layers)
    if cfg.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        lcfg = LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_targets,
        )
        model = get_peft_model(model, lcfg)  # SEQ_CLS keeps the classifier head fully trainable
    return tokenizer, model


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


@contextmanager
def _graceful_stop():
    """SIGTERM/SIGINT ask the loop to stop after the current step (best weights still saved)."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag["stop"] = True
        lifecycle.record(signum)  # the CLI still exits 143/130 once the best weights are saved

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def train_classifier(
    train: pd.DataFrame,
    val: pd.DataFrame,
    cfg: FinetuneConfig,
    progress: bool = True,
    on_best: Callable[["TrainResult"], None] | None = None,
    soft: np.ndarray | None = None,
) -> TrainResult:
    """Train on ``train`` (text/label), early-stop on ``val`` macro-F1; returns the best model.

    ``soft`` (distillation) holds target probabilities for every ``train`` row, whose label may
    then be missing (unlabeled text).

    ``on_best`` is called with the current state at each new best evaluation (checkpointing),
    so a run that is stopped (SIGTERM/SIGINT, or killed) still leaves its best model behind.
    """
    from core.progress import Progress

    t0 = time.perf_counter()
    if cfg.threads:
        set_threads(cfg.threads)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if len(train) == 0:
        raise UsageError("empty training set")
    if soft is not None and len(soft) != len(train):
        raise ValueError(f"soft targets for {len(soft)} rows but {len(train)} training rows")
    if cfg.max_train_examples and len(train) > cfg.max_train_examples:
        pick = train.reset_index(drop=True).sample(cfg.max_train_examples, random_state=cfg.seed).index.to_numpy()
        train = train.iloc[pick]
        soft = soft[pick] if soft is not None else None
    y_train = encode_labels(train["label"], allow_missing=soft is not None)
    y_val = encode_labels(val["label"])

    tokenizer, model = _prepare_model(cfg)
    tr = TokenizedSet.build(tokenizer, train["text"].tolist(), y_train, cfg.max_length, soft)
    va = TokenizedSet.build(tokenizer, val["text"].tolist(), y_val, cfg.max_length)

    weights = class_weights(y_train[y_train != UNLABELED]) if cfg.balance == "weighted" else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    steps_per_epoch = math.ceil(len(tr) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    sched = make_scheduler(opt, total, cfg)
    # Evaluate at evenly spaced steps of each epoch, the last one at the epoch's end.
    eval_at = {math.ceil(k * steps_per_epoch / cfg.evals_per_epoch) for k in range(1, cfg.evals_per_epoch + 1)}

    history: list[dict] = []
    best = {"macro_f1": -1.0}
    best_state = None
    stale = 0
    step = 0
    stop = False
    bar = Progress(total=total, desc=f"finetune {cfg.method}", enabled=progress)
    running = []
    with _graceful_stop() as interrupted:
        for epoch in range(cfg.epochs):
            order = balanced_order(y_train, rng) if cfg.balance == "sampling" else None
            for i, rows in enumerate(tr.batches(cfg.batch_size, rng, order)):
                model.train()
                batch = tr.collate(tokenizer, rows)
                labels, targets = batch.pop("labels"), batch.pop("soft", None)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                    logits = model(**batch).logits
                loss = training_loss(logits.float(), labels, targets, loss_fn, cfg.distill_alpha)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                running.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}", best_f1=f"{best['macro_f1']:.3f}")
                if i + 1 in eval_at:
                    val_logits = predict_logits(model, tokenizer, va, bf16=cfg.bf16)
                    pred = val_logits.argmax(-1).numpy()
                    rec = {
                        "epoch": epoch + (i + 1) / steps_per_epoch,
                        "step": step,
                        "train_loss": float(np.mean(running)),
                        "val_accuracy": accuracy(y_val, pred),
                        "val_macro_f1": macro_f1(y_val, pred, len(LABELS)),
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                    running = []
                    history.append(rec)
                    log.info("eval %s", rec)
                    bar.write(
                        f"epoch {rec['epoch']:.2f} step {step}: loss {rec['train_loss']:.4f} "
                        f"val acc {rec['val_accuracy']:.4f} macro-F1 {rec['val_macro_f1']:.4f} ({rec['seconds']} s)"
                    )
                    if rec["val_macro_f1"] > best["macro_f1"]:
                        best = {"macro_f1": rec["val_macro_f1"], "accuracy": rec["val_accuracy"], "step": step, "epoch": rec["epoch"]}
                        best_state = _trainable_state(model)
                        stale = 0
                        if on_best is not None:
                            on_best(TrainResult(model, tokenizer, history, best, val_logits, time.perf_counter() - t0))
                    else:
                        stale += 1
                        if stale >= cfg.patience:
                            stop = True
                            break
                if step >= total or interrupted["stop"]:
                    break
            if stop:
                bar.write(f"early stop: no macro-F1 gain in {cfg.patience} evaluations")
                break
            if interrupted["stop"]:
                bar.write("stopped on request: restoring the best evaluation so far")
                best["stopped_on_request_at_step"] = step
                break
    bar.close()
    if best_state is not None:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for k, v in best_state.items():
                params[k].copy_(v)
    val_logits = predict_logits(model, tokenizer, va, bf16=False)
    return TrainResult(model, tokenizer, history, best, val_logits, time.perf_counter() - t0)


def _save_atomically(model, tokenizer, meta: ModelMeta, out: Path) -> Path:
    """Write the artifact beside ``out`` and swap it in, so ``out`` is never half-written."""
    tmp = out.with_name(f".{out.name}.partial")
    old = out.with_name(f".{out.name}.old")
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    save_classifier(model, tokenizer, meta, tmp)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return out


def finetune(
    cfg: FinetuneConfig,
    out: str | Path,
    train: pd.DataFrame | None = None,
    val: pd.DataFrame | None = None,
    command: str | None = None,
    progress: bool = True,
    extra: dict | None = None,
    checkpoint: bool = True,
) -> Path:
    """Load the configured sets (or use the given frames), train, calibrate, write an artifact.

    Given ``train``/``val`` frames replace loading; ``cfg.train_sets``/``cfg.val_sets`` must then
    name what the frames are, because they are recorded in the artifact as its data. With
    ``checkpoint`` the artifact is (re)written at every new best validation score, marked
    ``"final": false`` until training ends.
    """
    from nlp.models.calibration import fit_temperature

    out = Path(out)
    train = load_sets(cfg.train_sets) if train is None else train
    val = load_sets(cfg.val_sets) if val is None else val
    y_val = torch.from_numpy(encode_labels(val["label"]))
    fixed = {
        "config": cfg.model_dump(),
        "command": command if command is not None else shlex.join(sys.argv),
        "data": {
            "train_sets": cfg.train_sets,
            "val_sets": cfg.val_sets,
            "train_rows": len(train),
            "val_rows": len(val),
            "train_sha256": frame_hash(train),
            "val_sha256": frame_hash(val),
        },
        "split_manifests_sha256": split_manifest_hashes(),
        # The names the scoring engine's numeric-path check reads (nlp.scoring.numeric): every
        # validation set, joined by "+", since one PhraseBank split (495 rows) is too few.
        "validation_set": "+".join(cfg.val_sets),
        "calibration_set": cfg.train_sets[0],
        "torch": torch.__version__,
        **(extra or {}),
    }
    # A model trained on marked entity rows reads marked input at scoring time too.
    entity_markers = any(n.split(":")[0] in ENTITY_SETS for n in cfg.train_sets)
    soft = None
    if cfg.teachers:
        train, soft, fixed["distillation"] = _distillation_data(train, cfg, progress)

    def write(res: TrainResult, final: bool) -> Path:
        temperature = fit_temperature(res.val_logits, y_val) if cfg.calibrate else 1.0
        meta = ModelMeta(
            model_id=cfg.model_id,
            base=cfg.base,
            kind=cfg.method,
            temperature=float(temperature),
            max_length=cfg.max_length,
            base_layers=cfg.base_layers,
            sources=list(cfg.sources),
            entity_markers=entity_markers,
            extra={**fixed, "history": res.history, "best": res.best,
                   "train_seconds": round(res.seconds, 1), "final": final},
        )
        return _save_atomically(res.model, res.tokenizer, meta, out)

    on_best = (lambda r: write(r, final=False)) if checkpoint else None
    res = train_classifier(train, val, cfg, progress=progress, on_best=on_best, soft=soft)
    return write(res, final=True)


def _distillation_data(train: pd.DataFrame, cfg: FinetuneConfig, progress: bool) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Labeled rows plus unlabeled text, the teachers' soft targets for all of them, and a record."""
    if cfg.threads:
        set_threads(cfg.threads)
    unl = load_unlabeled(cfg.unlabeled, cfg.seed, exclude=labeled_keys()) if cfg.unlabeled else None
    if unl is not None and len(unl):
        train = pd.concat([train, unl.drop(columns="published_at").assign(label=None)], ignore_index=True)
    soft = teacher_probs(cfg.teachers, train["text"].tolist(), cfg.max_length, progress)
    record = {
        "teachers": teacher_fingerprints(cfg.teachers),
        "alpha": cfg.distill_alpha,
        "unlabeled_rows": {} if unl is None else unl["set"].value_counts().to_dict(),
        "unlabeled_sha256": None if unl is None else hashlib.sha256("\n".join(unl["text"]).encode()).hexdigest(),
        "text_period": joined_period(unl, cfg.teachers),
    }
    return train, soft, record
