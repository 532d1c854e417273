"""The ``compile`` numeric path (torch.compile, inductor, bf16): same answers as fp32, batch-invariant."""
from __future__ import annotations

import numpy as np
import pytest
from _models_tiny import _one_torch_thread  # noqa: F401 (autouse fixture)
from scoring_support import tiny_model  # noqa: F401 (fixture)

# Same token-length bucket: one compiled shape, so the test pays for one compilation.
TEXTS = ["Profit rose sharply this quarter .", "Sales fell sharply this quarter .",
         "The board met on Tuesday morning .", "Shares jumped after the results ."]


@pytest.mark.slow
def test_compiled_path_matches_fp32_and_is_batch_invariant(tiny_model):  # noqa: F811
    from nlp.scorer import Scorer

    fp32 = Scorer.load(tiny_model, numeric="fp32", threads=1)
    compiled = Scorer.load(tiny_model, numeric="compile", threads=1)
    assert compiled.numeric == "compile"
    want, got = fp32.predict_proba(TEXTS), compiled.predict_proba(TEXTS)
    np.testing.assert_allclose(got, want, atol=2e-2)  # bf16 arithmetic
    assert (got.argmax(1) == want.argmax(1)).all()
    # A text scored alone gives exactly what it got among neighbours (fixed shapes, fixed kernels).
    alone = Scorer.load(tiny_model, numeric="compile", threads=1).predict_proba(TEXTS[2:3])
    np.testing.assert_array_equal(alone[0], got[2])
