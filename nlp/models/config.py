"""Typed configuration of the models package (one place for every training knob)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config_files import Strict
from nlp.models import PACKAGED_MINILM


class FinetuneConfig(Strict):
    """Everything that decides a fine-tuning run; stored verbatim in the artifact's metadata.

    Defaults are the recipe of the shipped default model (see nlp/default_model/MODEL_CARD.md).
    """

    base: str = PACKAGED_MINILM
    # Keep only these encoder layers of the base (in this order), e.g. [0, 2, 4] for a 3-layer
    # student initialised from a 6-layer base; None keeps them all.
    base_layers: list[int] | None = None
    method: Literal["full", "lora"] = "lora"
    train_sets: list[str] = Field(default_factory=lambda: ["fpb:50agree:train", "tfns:train"])
    # Validation drives early stopping and temperature scaling; test sets are never read here.
    val_sets: list[str] = Field(default_factory=lambda: ["fpb:50agree:validation", "tfns:validation"])
    model_id: str = "altsignal-minilm-sentiment"
    sources: list[str] = Field(default_factory=list)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(64, ge=8, le=512)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    # "weighted": inverse-frequency class weights in the loss; "sampling": class-balanced
    # batches drawn with replacement; "none": plain cross-entropy.
    balance: Literal["none", "weighted", "sampling"] = "weighted"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    # BERT-style module names: attention projections plus every dense layer (attention
    # output, FFN in/out, pooler). The classifier head is always fully trained.
    lora_targets: list[str] = Field(default_factory=lambda: ["query", "key", "value", "dense"])
    # Distillation (nlp.models.distill): artifact folders whose averaged calibrated probabilities
    # are soft targets, and unlabeled in-domain text they label ("news:8000", "social:20000",
    # "transcripts:5000"). Loss = (1 - distill_alpha) * CE(true labels) + distill_alpha * CE(soft).
    teachers: list[str] = Field(default_factory=list)
    unlabeled: list[str] = Field(default_factory=list)
    distill_alpha: float = Field(0.5, ge=0, le=1)
    patience: int = Field(2, ge=1)  # evaluations without a macro-F1 gain before stopping
    evals_per_epoch: int = Field(1, ge=1)
    bf16: bool = False  # bf16 autocast on CPU (AMX); fp32 master weights either way
    seed: int = 13
    threads: int | None = None  # torch intra-op threads; None = torch default
    calibrate: bool = True
    max_train_examples: int | None = None  # take a seeded subsample (quick trials, tests)

    @model_validator(mode="after")
    def _distillation_needs_teachers(self) -> "FinetuneConfig":
        if self.unlabeled and not self.teachers:
            raise ValueError("unlabeled text needs teachers to label it (--teacher)")
        if self.teachers and self.balance == "sampling":
            raise ValueError("balance='sampling' resamples labeled rows only; use 'weighted' or 'none' when distilling")
        return self

    @field_validator("base_layers")
    @classmethod
    def _layers_distinct(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):
            raise ValueError(f"base_layers must be distinct non-negative layer indices, got {v}")
        return v

    @field_validator("train_sets")
    @classmethod
    def _no_test_sets(cls, v: list[str]) -> list[str]:
        for name in v:
            if name.endswith(":test") or name in ("tfns:valid",):
                raise ValueError(f"refusing to train on a test split: {name!r}")
        if not v:
            raise ValueError("at least one training set is required")
        return v
