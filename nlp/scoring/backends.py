"""Numeric paths that turn token ids into logits: torch fp32 / bf16 / fp16 and ONNX Runtime int8.

Every backend takes fixed-shape ``int64`` arrays ``(batch, length)`` and returns float32 logits.

Decisions:

- bf16 runs through ``torch.autocast`` and only where the CPU has AMX or AVX512-BF16 (read from
  ``/proc/cpuinfo``); elsewhere bf16 is emulated and slower than fp32, so ``auto`` skips it.
- int8 is ONNX Runtime **static** quantization (QDQ, per-channel int8 weights, activation scales
  calibrated once on labeled validation sentences), applied to the weight matmuls only. Dynamic
  int8 (torch or ORT) computes activation scales per batch, so a text's prediction moves with its
  batch neighbours; static scales are constants, so the row result depends on the row alone.
- The exported and quantized graphs are cached under ``$ALTSIGNAL_CACHE`` (default
  ``~/.cache/altsignal``) keyed by the artifact's content hash, never inside the model folder
  (the shipped default model may sit in a read-only site-packages).
- On a GPU (``device="cuda"``) the model runs in fp16 (``model.half()``): same code path.
"""
from __future__ import annotations

import copy
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True when bf16 matmuls run natively (AMX tiles or AVX512-BF16 dot products)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


class TorchBackend:
    """A transformers classifier in eval mode under ``torch.inference_mode``."""

    def __init__(self, model, numeric: str = "fp32", device: str = "cpu") -> None:
        import torch

        if numeric not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"TorchBackend runs fp32/bf16/fp16, not {numeric!r}")
        self.name = numeric
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if numeric == "fp16":
            if self.device.type != "cuda":
                raise ValueError("fp16 is the GPU path; on CPU use bf16 or fp32")
            self.model = self.model.half()
        self._autocast = numeric == "bf16" and self.device.type == "cpu"

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        ids = torch.from_numpy(input_ids).to(self.device)
        mask = torch.from_numpy(attention_mask).to(self.device)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._autocast):
            out = self.model(input_ids=ids, attention_mask=mask).logits
        return out.float().cpu().numpy()


class CompiledBackend(TorchBackend):
    """bf16 autocast through ``torch.compile`` (inductor, CPU), weights frozen into the graph.

    Why: eager bf16 pays per-op fixed costs on small matrices (separate bias, GELU, LayerNorm and
    softmax kernels, a bf16 copy of every weight per call under autocast). Freezing constant-folds
    the weight casts and prepacks the weights for oneDNN; inductor fuses the elementwise ops.
    One graph per (rows, length) shape the engine uses (``dynamic=False``: shapes are fixed by
    design); the first batch of each shape compiles (seconds each, cached on disk by inductor).
    """

    def __init__(self, model) -> None:
        import torch
        import torch._dynamo.config as dynamo
        import torch._inductor.config as inductor

        super().__init__(model, "bf16")
        self.name = "compile"
        inductor.freezing = True  # process-wide; only affects graphs compiled under no_grad
        # One recompile per engine shape (8 length buckets at the default max length of 64).
        dynamo.recompile_limit = max(dynamo.recompile_limit, 64)
        self.model = torch.compile(self.model, dynamic=False)


class OnnxBackend:
    """An ONNX Runtime session over an exported (optionally quantized) graph."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None, name: str = "int8") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.name = name
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(out, dtype=np.float32)


def export_onnx(model, out: Path) -> Path:
    """fp32 ONNX graph of a classifier (inputs ``input_ids``, ``attention_mask``; output ``logits``)."""
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    # A copy: exporting in place changed the live model's own outputs afterwards (fp32 and bf16,
    # measured on a 2-layer BERT), so a process that built the int8 graph scored differently.
    model = copy.deepcopy(model).float().eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)

    class _Logits(torch.nn.Module):  # plain tuple output for the TorchScript exporter
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    tmp = out.with_suffix(".tmp.onnx")
    # dynamo=False: the TorchScript exporter handles the HF attention masks; the dynamo one did not
    # (see MEASURED.md).
    torch.onnx.export(
        _Logits(model), (ids, mask), str(tmp), input_names=["input_ids", "attention_mask"],
        output_names=["logits"], dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                               "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    os.replace(tmp, out)
    return out


class _Calibration:
    """ORT CalibrationDataReader over pre-tokenized fixed-shape batches."""

    def __init__(self, batches: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self._it = iter(batches)

    def get_next(self):
        nxt = next(self._it, None)
        return None if nxt is None else {"input_ids": nxt[0], "attention_mask": nxt[1]}


def quantize_static_int8(fp32_onnx: Path, out: Path, calibration: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """Static int8 QDQ graph: per-channel weights, MinMax-calibrated activations, weight matmuls only.

    Only MatMuls with a constant (weight) operand are quantized; the attention score/value
    matmuls multiply two activations and stay fp32. The FFN down-projections (``output/dense``
    outside ``attention``) stay fp32 too: their input is the GELU output, whose rare large
    values make one static activation scale too coarse. Measured on 1,454 validation sentences
    (PhraseBank 50-agree + TFNS validation, MiniLM-L6 + trained head): all 36 weight matmuls int8
    -3.8 points vs fp32; these 30 int8 -0.14 points.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_onnx), str(pre), skip_symbolic_shape=True)
    graph = onnx.load(str(pre)).graph
    weights = {i.name for i in graph.initializer}
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and any(x in weights for x in n.input)
             and not _is_ffn_down_projection(n.name)]
    tmp = out.with_suffix(".tmp.onnx")
    quantize_static(
        str(pre), str(tmp), _Calibration(calibration), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
        nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.MinMax,
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )
    os.replace(tmp, out)
    pre.unlink(missing_ok=True)
    log.info("int8: quantized %d weight matmuls -> %s", len(nodes), out)
    return out


def _is_ffn_down_projection(node_name: str) -> bool:
    return "/output/dense/" in node_name and "/attention/" not in node_name


