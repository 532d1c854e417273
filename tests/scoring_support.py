"""Shared fixtures of the scoring tests: an untrained-head MiniLM artifact and a tiny random one.

An untrained classification head is enough for what these tests check (invariance, resume,
streaming, Ray equality, row bookkeeping); accuracy is the benchmark's and the numeric check's job.
"""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory) -> Path:
    """The packaged MiniLM encoder with a fresh (seeded) 3-class head: real shapes and kernels."""
    import torch

    from nlp.models.artifact import PACKAGED_MINILM, ModelMeta, load_base_for_classification, save_classifier

    torch.manual_seed(0)
    tok, model = load_base_for_classification(PACKAGED_MINILM)
    out = tmp_path_factory.mktemp("minilm")
    save_classifier(model, tok, ModelMeta(model_id="test-minilm-untrained-head", base=PACKAGED_MINILM), out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide BERT with MiniLM's tokenizer: same code paths, a fraction of the time."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from nlp.contracts import LABELS
    from nlp.models.artifact import PACKAGED_MINILM, ModelMeta, resolve_base, save_classifier

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(resolve_base(PACKAGED_MINILM))
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                        label2id={l: i for i, l in enumerate(LABELS)})
    model = BertForSequenceClassification(config).eval()
    out = tmp_path_factory.mktemp("tiny")
    save_classifier(model, tok, ModelMeta(model_id="test-tiny", base=PACKAGED_MINILM, max_length=64), out)
    return out
