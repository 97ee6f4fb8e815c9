"""`lsdt train` ends with a summary: how it ended, final train/val loss, tokens, elapsed, the last
checkpoint and the one at the best val loss (issue 17: it ended with no summary)."""

from __future__ import annotations


from engine.runtime.train import rundir
from tests.runtime.train_helpers import base_args, run_train


def test_a_finished_run_prints_its_summary(tmp_path):
    out = run_train(*base_args(tmp_path, "run"))
    assert out.returncode == 0, out.stderr
    tail = out.stdout.strip().splitlines()[-3:]
    run = tmp_path / "run"
    metrics = rundir.read_metrics(run)
    last_val = [m for m in metrics if m.get("val_loss") is not None][-1]
    end = rundir.read_events(run)[-1]
    assert tail[0].startswith("lsdt train: ended (completed) at step 12 after ")
    assert tail[0].endswith(f" · {end['tokens']:,} tokens")
    assert f"train loss {metrics[-1]['loss']:.4f} (step 12)" in tail[1]
    assert f"val loss {last_val['val_loss']:.4f} (step {last_val['step']})" in tail[1]
    last_ckpt = rundir.list_checkpoints(run)[-1]
    assert f"checkpoint last {last_ckpt}" in tail[2]
