import math
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

from stride_contracts import CheckpointManifest
from stride_core.artifacts import read_manifest_folder
from stride_model import load_weights
from stride_train.cli import main

STEPS = ["--steps", "4", "--set", "training.val_every=2"]


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
