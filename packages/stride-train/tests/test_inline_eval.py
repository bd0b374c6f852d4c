import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_core.cli import EXIT_PREEMPTED
from stride_model import load_weights
from stride_train.cli import main
from stride_train.inline_eval import InlineEvaluator

STEPS = ["--steps", "4", "--set", "training.val_every=2"]
SMALL_INLINE = [
    "--set",
    "inline_eval.every=2",
    "--set",
    "inline_eval.members=2",
    "--set",
    "inline_eval.dates=1",
]


def test_inline_evaluation_logs_scores_and_never_changes_training(
    tiny_args: list[str], tmp_path: Path
) -> None:
    inline = [
        "--set",
        "inline_eval.every=2",
        "--set",
        "inline_eval.members=3",
        "--set",
        "inline_eval.dates=2",
        "--set",
        "inline_eval.sampler_steps=3",
        "--set",
        'inline_eval.perturbations=[{"variable": "t2m", "add": 2.0}]',
    ]
    assert main([*tiny_args, *STEPS, "--out", str(tmp_path / "plain" / "ckpt")]) == 0
    assert main([*tiny_args, *STEPS, *inline, "--out", str(tmp_path / "inline" / "ckpt")]) == 0

    plain = read_manifest_folder(tmp_path / "plain" / "ckpt", CheckpointManifest)
    with_inline = read_manifest_folder(tmp_path / "inline" / "ckpt", CheckpointManifest)
    assert (with_inline.best_step, with_inline.best_val_loss) == (plain.best_step, plain.best_val_loss)
    for name in ("weights.pt", "ema_weights.pt", "best_ema_weights.pt"):
        a, b = (
            load_weights(tmp_path / "plain" / "ckpt" / name),
            load_weights(tmp_path / "inline" / "ckpt" / name),
        )
        assert all(torch.equal(a[key], b[key]) for key in a), name

    client = MlflowClient(f"sqlite:///{tmp_path / 'inline' / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("stride").experiment_id])[0]
    crps = client.get_metric_history(run.info.run_id, "inline.t2m.crps")
    assert [m.step for m in crps] == [2, 4] and all(0 < m.value < 50 for m in crps)
    assert "inline.t2m.spread_skill" in run.data.metrics
    # The perturbation diagnostic imposes exactly +2 K on the LR input and logs the HR response beside it.
    assert abs(run.data.metrics["perturb.t2m.imposed"] - 2.0) < 1e-3
    assert math.isfinite(run.data.metrics["perturb.t2m.response"])
    metrics = run.data.metrics
    assert math.isclose(
        metrics["perturb.t2m.ratio"], metrics["perturb.t2m.response"] / metrics["perturb.t2m.imposed"]
    )
    # And a quicklook of the first validation date is recorded against the run at each evaluation.
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "inline/step_0000004")}
    assert artifacts == {"inline/step_0000004/quicklook_t2m.png"}


def test_inline_evaluation_samples_a_larger_domain_in_training_patches(tmp_path: Path) -> None:
    # A model trained on 16 x 24 patches, evaluated on a 32 x 48 validation domain: every network call sees
    # tiles of the patch (never the whole domain), and the scores come out finite.
    from stride_contracts import FeatureSpec, ModelSpec
    from stride_contracts.checkpoint import TransformSet, VariableTransform, ZScoreSpec
    from stride_core.testing import write_synthetic_dataset
    from stride_core.transforms import VariableTransforms
    from stride_model import build_model
    from stride_model.adapter import DownscalingDataset
    from stride_train.config import InlineEvalConfig
    from stride_train.inline_eval import InlineEvaluator

    write_synthetic_dataset(tmp_path / "d.zarr", height=32, width=48)
    spec = ModelSpec(
        kind="edm", in_dynamic_channels=1, in_static_channels=2, out_channels=1, lr_shape=(4, 6),
        hr_shape=(16, 24), model_channels=8, channel_mult=(1, 2), attn_resolutions=(),
    )  # fmt: skip
    z = ZScoreSpec(mean=280.0, std=3.0)
    transforms = VariableTransforms(
        TransformSet(
            target=[VariableTransform(variable="t2m", transform=z)],
            dynamic=[VariableTransform(variable="t2m", transform=z)],
            static=[
                VariableTransform(variable=name, transform=ZScoreSpec(mean=0, std=1))
                for name in ("orography", "lsm")
            ],
        )
    )
    model = build_model(spec).eval()
    seen: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    val = DownscalingDataset(tmp_path / "d.zarr", "val", transforms, FeatureSpec(), in_memory=True)
    config = InlineEvalConfig(every=1, dates=2, members=2, sampler_steps=2)
    evaluator = InlineEvaluator(val, spec, transforms, config, torch.device("cpu"))
    assert evaluator.tiling is not None and evaluator.tiling.tile == (16, 24)
    scores, _ = evaluator.evaluate(model)
    assert seen and set(seen) == {(16, 24)}
    assert math.isfinite(scores["inline.t2m.crps"]) and math.isfinite(scores["inline.t2m.spread_skill"])


def test_a_stop_signal_during_inline_evaluation_stops_at_once_and_resumes_exactly(
    tiny_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A radar stride-train held on to SIGTERM for the whole inline evaluation at step 300 (minutes on a CPU),
    # past any pre-emption grace period. Now the evaluation is abandoned at once and the state saved.
    assert main([*tiny_args, *STEPS, *SMALL_INLINE, "--out", str(tmp_path / "straight")]) == 0

    original = InlineEvaluator._members
    finished_sleeping: list[bool] = []

    def pre_empted_while_sampling(self: InlineEvaluator, *args: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # a long sampler: the handler must end it
        finished_sleeping.append(True)
        return original(self, *args)

    monkeypatch.setattr(InlineEvaluator, "_members", pre_empted_while_sampling)
    assert main([*tiny_args, *STEPS, *SMALL_INLINE, "--out", str(tmp_path / "resumed")]) == EXIT_PREEMPTED
    assert not finished_sleeping  # the sleep was cut short by the handler's exception
    state = torch.load(tmp_path / ".resumed.inprogress" / "state.pt", weights_only=True)
    assert state["step"] == 2  # the first inline evaluation's step, not one later
    monkeypatch.setattr(InlineEvaluator, "_members", original)
    assert main([*tiny_args, *STEPS, *SMALL_INLINE, "--out", str(tmp_path / "resumed")]) == 0
    for name in ("weights.pt", "ema_weights.pt"):
        straight, resumed = (load_weights(tmp_path / run / name) for run in ("straight", "resumed"))
        for key, value in straight.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=f"{name}:{key}")
