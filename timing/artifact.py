"""Save and load a fitted network forecaster: safetensors weights + a JSON of everything else.

Layout of the folder: ``seed_<i>.safetensors`` (one per seed) and ``meta.json`` (the timer's
parameters and chosen hyperparameters, target and feature scaling statistics, the panel spec);
a member fitted on a shorter training window (``network.windows``) has the same layout in
``member_<j>/``, its meta nested under ``members``. Nothing is pickled.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.torch import load_file, save_file

from core.atomic import atomic_path, atomic_write_text
from timing.dataset import FeatureScaler, PanelSpec
from timing.forecaster import WindowForecaster
from timing.network import MultiTaskNet, MultiTaskTimer


def _timer_meta(timer: MultiTaskTimer, folder: Path) -> dict:
    """Write the timer's nets to ``folder`` (window members in ``member_<j>/``); return the rest."""
    for i, net in enumerate(timer.models_):
        with atomic_path(folder / f"seed_{i}.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    return {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in timer.get_params().items()},
        "best_params": timer.best_params_, "y_mean": timer.y_mean_.tolist(), "y_std": timer.y_std_.tolist(),
        "core_coef": timer.core_coef_.tolist(), "core_intercept": timer.core_intercept_.tolist(),
        "shrink_weight": timer.shrink_weight_.tolist(), "shrink_target": timer.shrink_target_.tolist(),
        "n_inputs": timer.n_features_in_,
        "members": [_timer_meta(m, folder / f"member_{j}") for j, m in enumerate(timer.members_)],
    }


def _load_timer(meta: dict, folder: Path, spec: PanelSpec) -> MultiTaskTimer:
    tuples = ("seeds", "fixed_weights", "shrinkage", "windows")
    params = dict(meta["params"], **{k: tuple(meta["params"][k]) for k in tuples if k in meta["params"]})
    timer = MultiTaskTimer(**params)
    timer.best_params_ = meta["best_params"]
    for key in ("y_mean", "y_std", "core_coef", "core_intercept", "shrink_weight", "shrink_target"):
        setattr(timer, key + "_", np.array(meta[key]))
    timer.n_features_in_ = meta["n_inputs"]
    timer.models_ = []
    for i in range(len(params["seeds"])):
        net = MultiTaskNet(meta["n_inputs"], spec.lookback, len(spec.factors), params["encoder"],
                           int(meta["best_params"]["hidden"]), meta["best_params"]["dropout"],
                           params["vol_head"], params["sign_head"], params["separate_trunks"])
        net.load_state_dict(load_file(str(folder / f"seed_{i}.safetensors")))
        net.eval()
        timer.models_.append(net)
    timer.members_ = [_load_timer(m, folder / f"member_{j}", spec) for j, m in enumerate(meta.get("members", []))]
    return timer


def save_forecaster(model: WindowForecaster, folder: Path) -> None:
    folder = Path(folder)
    meta = _timer_meta(model.estimator, folder) | {
        "scaler_center": model.scaler_.center.tolist(), "scaler_scale": model.scaler_.scale.tolist(),
        "scaler_live": model.scaler_.live.tolist(), "bounds": [b.tolist() for b in model.bounds_],
        "guard_center": model.center_.tolist(), "linear_shrink_weight": model.shrink_weight_.tolist(),
        "guard_limit": None if model.limit_ is None else model.limit_.tolist(),
        "spec": {"features": list(model.spec.features), "factors": list(model.spec.factors),
                 "lookback": model.spec.lookback, "horizon": model.spec.horizon, "clip": model.spec.clip,
                 "scaling": model.spec.scaling, "guard_k": model.spec.guard_k},
        "train_end": str(model.train_dates_[-1].date()),
    }
    atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))


def load_forecaster(folder: Path) -> WindowForecaster:
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    saved = meta["spec"]
    # a model saved before the stability keys existed (issue 24) loads as it was fitted: mean/std
    # scaling at the old clip, every feature alive, no guard, no shrinkage outside the timer
    spec = PanelSpec(tuple(saved["features"]), tuple(saved["factors"]), saved["lookback"], saved["horizon"],
                     clip=saved.get("clip", 5.0), scaling=saved.get("scaling", "standard"), guard_k=saved.get("guard_k"))
    timer = _load_timer(meta, folder, spec)
    model = WindowForecaster("network", timer, spec, tabular=False)
    model.estimator = timer  # keep the fitted instance (the constructor clones)
    center = np.array(meta.get("scaler_center", meta.get("scaler_mean")))
    model.scaler_ = FeatureScaler(center, np.array(meta.get("scaler_scale", meta.get("scaler_std"))),
                                  np.array(meta.get("scaler_live", [True] * len(center)), dtype=bool))
    model.bounds_ = tuple(np.array(b) for b in meta["bounds"])
    k = len(spec.factors)
    model.center_ = np.array(meta.get("guard_center", [0.0] * k))
    model.shrink_weight_ = np.array(meta.get("linear_shrink_weight", [1.0] * k))
    model.limit_ = None if meta.get("guard_limit") is None else np.array(meta["guard_limit"])
    model.guarded_ = 0
    # Only the last training date is kept (what the refit schedule and the point-in-time check need).
    model.train_dates_ = pd.DatetimeIndex([meta["train_end"]])
    return model
