"""The Monitor's readers on files written by the real writers (torch's SummaryWriter, the HF
Trainer's TrainerState, Lightning's CSVLogger), grown while the reader tails them, and on bad input:
each problem is one line and the reader keeps going with the rest."""

from __future__ import annotations

import json
import os
import time

import pytest

from engine.errors import UserError
from engine.runtime.monitor.runs import detect_source, open_run, recent_runs
from engine.runtime.monitor.tags import series_name


def tb_writer(path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(path), flush_secs=3600)  # flushed by hand: the test says when data lands


def test_tag_names_map_to_lsdt_series():
    assert [series_name(t) for t in ("train/loss", "eval_loss", "learning_rate", "lr-AdamW", "grad_norm",
                                     "val/loss", "num_input_tokens_seen", "my/custom")] == \
        ["loss", "val_loss", "lr", "lr", "grad_norm", "val_loss", "tokens", "my/custom"]


def test_tensorboard_grown_while_tailed(tmp_path):
    w = tb_writer(tmp_path / "tb")
    for step in range(5):
        w.add_scalar("train/loss", 4.0 - step * 0.1, step)
        w.add_scalar("train/learning_rate", 1e-3, step)
    w.flush()
    reader = open_run(tmp_path / "tb")
    assert reader.source == "tensorboard" and detect_source(tmp_path / "tb") == "tensorboard"
    first = reader.poll()
    assert [r["loss"] for r in first if "loss" in r] == pytest.approx([4.0, 3.9, 3.8, 3.7, 3.6])
    assert all(r["lr"] == pytest.approx(1e-3) for r in first if "lr" in r)
    assert all(isinstance(r["time"], float) for r in first)
    assert reader.poll() == []  # nothing new
    for step in range(5, 8):
        w.add_scalar("train/loss", 3.0, step)
        w.add_scalar("custom/throughput", 123.0, step)
    w.flush()
    new = reader.poll()
    assert [r["step"] for r in new if "loss" in r] == [5, 6, 7]  # only what was appended
    assert [r["custom/throughput"] for r in new if "custom/throughput" in r] == [123.0] * 3
    assert reader.status().state == "running" and reader.last["step"] == 7
    w.close()


def test_tensorboard_in_slices_and_new_event_files(tmp_path):
    w = tb_writer(tmp_path / "tb")
    for step in range(50):
        w.add_scalar("loss", 1.0, step)
    w.close()
    reader = open_run(tmp_path / "tb")
    assert len(reader.poll(max_records=20)) == 20 and reader.backlog
    assert len(reader.read_all()) == 30 and not reader.backlog
    time.sleep(1.1)  # SummaryWriter names its file by the second
    w2 = tb_writer(tmp_path / "tb" / "restart")  # a second file below the first: followed too
    w2.add_scalar("loss", 0.5, 50)
    w2.close()
    assert [r["loss"] for r in reader.poll()] == [0.5]


def test_tensorboard_truncated_and_corrupt_files_one_line_keep_the_rest(tmp_path):
    w = tb_writer(tmp_path / "tb")
    for step in range(10):
        w.add_scalar("loss", float(step), step)
    w.close()
    (event_file,) = (tmp_path / "tb").glob("events.out.tfevents.*")
    data = event_file.read_bytes()
    event_file.write_bytes(data[:-7])  # a record cut mid-write
    reader = open_run(tmp_path / "tb")
    assert [r["step"] for r in reader.read_all()] == list(range(9))
    for _ in range(3):
        reader.poll()
    assert len(reader.problems) == 1 and "unreadable record at byte" in reader.problems[0]
    assert "\n" not in reader.problems[0] and "showing the" in reader.problems[0]

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF  # a flipped byte in the middle: a CRC mismatch
    (corrupt / event_file.name).write_bytes(bytes(bad))
    reader = open_run(corrupt)
    got = reader.read_all()
    for _ in range(3):
        reader.poll()
    assert 0 < len(got) < 10 and reader.problems and "truncated or corrupt" in reader.problems[0]


def test_hf_trainer_state_grown_while_tailed(tmp_path):
    from transformers.trainer_callback import TrainerState

    out = tmp_path / "hf-out"
    (out / "checkpoint-2").mkdir(parents=True)
    state = TrainerState(max_steps=4, global_step=2, log_history=[
        {"loss": 3.2, "grad_norm": 1.5, "learning_rate": 5e-5, "epoch": 0.5, "step": 1},
        {"loss": 3.0, "grad_norm": 1.2, "learning_rate": 4e-5, "epoch": 1.0, "step": 2},
        {"eval_loss": 3.1, "eval_runtime": 0.1, "epoch": 1.0, "step": 2}])
    state.save_to_json(str(out / "checkpoint-2" / "trainer_state.json"))
    (out / "checkpoint-2" / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    reader = open_run(out)
    assert reader.source == "hf"
    first = reader.poll()
    assert [(r["step"], r.get("loss"), r.get("val_loss")) for r in first] == [(1, 3.2, None), (2, 3.0, None), (2, None, 3.1)]
    assert first[0]["lr"] == 5e-5 and first[0]["grad_norm"] == 1.5 and first[0]["time"] is None
    assert reader.status().state == "running"
    # the end of training: the output dir's state, two more steps and the run summary
    time.sleep(0.01)
    state.global_step = 4
    state.log_history += [{"loss": 2.8, "learning_rate": 2e-5, "step": 3}, {"loss": 2.7, "learning_rate": 1e-5, "step": 4},
                          {"train_runtime": 12.5, "train_loss": 2.9, "total_flos": 1e12, "step": 4}]
    state.save_to_json(str(out / "trainer_state.json"))
    new = reader.poll()
    assert [r["step"] for r in new] == [3, 4] and reader.status().state == "ended"
    cfg = reader.config()
    assert cfg["trainer_state"]["max_steps"] == 4 and cfg["summary"]["train_runtime"] == 12.5
    assert cfg["model_config"]["model_type"] == "gpt2"


def test_lightning_csvlogger_grown_while_tailed(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(tmp_path), name="lit")
    logger.log_hyperparams({"lr": 3e-4, "n_layer": 2})
    logger.log_metrics({"train_loss": 2.5}, step=0)
    logger.log_metrics({"train_loss": 2.4}, step=1)
    logger.save()
    run = tmp_path / "lit"  # the logger's name dir: the newest version_N is read
    reader = open_run(run)
    assert reader.source == "lightning"
    assert [(r["step"], r["loss"]) for r in reader.poll()] == [(0, 2.5), (1, 2.4)]
    assert reader.config()["n_layer"] == 2
    # a new metric makes CSVLogger rewrite the file with a wider header: no row is returned twice
    logger.log_metrics({"train_loss": 2.3, "lr-AdamW": 1e-4}, step=2)
    logger.log_metrics({"val_loss": 2.6}, step=2)
    logger.save()
    new = reader.poll()
    assert [r["step"] for r in new] == [2, 2]
    assert new[0]["loss"] == 2.3 and new[0]["lr"] == 1e-4 and new[1]["val_loss"] == 2.6
    assert reader.poll() == []


def test_generic_csv_and_jsonl_with_a_column_mapping(tmp_path):
    csv_file = tmp_path / "log.csv"
    csv_file.write_text("iter,train_loss,note\n10,2.0,a\n20,1.5,b\n")
    reader = open_run(csv_file, columns={"step": "iter"})
    assert reader.source == "table"
    assert [(r["step"], r["loss"]) for r in reader.poll()] == [(10, 2.0), (20, 1.5)]
    with open(csv_file, "a") as fh:
        fh.write("30,1.2,c\n40,1.")  # a row still being written is held back
    assert [r["step"] for r in reader.poll()] == [30]
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text(json.dumps({"it": 1, "loss": 3.0, "time": 1.7e9}) + "\n")
    assert open_run(jsonl, columns={"step": "it"}).poll() == [{"step": 1, "time": 1.7e9, "loss": 3.0}]


@pytest.mark.parametrize("make, columns, words", [
    (lambda p: p / "nope", None, "no such file or directory"),
    (lambda p: p, None, "not a run of any known kind; accepted:"),
    (lambda p: (p / "m.csv").write_text("a,b\n1,2\n") and p / "m.csv", None, "no 'step' column; columns: a, b"),
    (lambda p: (p / "m.csv").write_text("a,b\n1,2\n") and p / "m.csv", {"step": "iter"},
     "column 'iter' (for step) not found; columns: a, b"),
])
def test_bad_runs_one_line(tmp_path, make, columns, words):
    with pytest.raises(UserError) as err:
        open_run(make(tmp_path), columns=columns)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_forced_source_that_does_not_fit(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss\n1,2\n")
    with pytest.raises(UserError, match="not a TensorBoard events .*detected: lightning"):
        open_run(tmp_path, source="tensorboard")
    with pytest.raises(UserError, match="--source nope: unknown; accepted: lsdt, hf"):
        open_run(tmp_path, source="nope")


def test_run_deleted_while_watched(tmp_path):
    import shutil

    w = tb_writer(tmp_path / "tb")
    w.add_scalar("loss", 1.0, 0)
    w.close()
    reader = open_run(tmp_path / "tb")
    assert len(reader.poll()) == 1
    shutil.rmtree(tmp_path / "tb")
    assert reader.poll() == []
    status = reader.status()
    assert status.state == "gone" and "deleted while watched" in status.message
    assert status.last_metrics["loss"] == 1.0  # what was read stays shown


def test_a_run_watched_before_its_directory_exists_is_not_started_not_deleted(tmp_path):
    """The Train tab watches a run from its launch, before the trainer has made the directory: that
    read 'deleted while watched' for the whole run (found in a tmux walk)."""
    from engine.runtime.monitor.lsdt import LsdtReader

    reader = LsdtReader(tmp_path / "run")
    assert reader.poll() == [] and reader.problems == []
    assert reader.status().state == "not_started"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0, "time": 1.0}\n')
    assert len(reader.poll()) == 1 and reader.problems == []


def test_stalled_then_ended_when_no_writer(tmp_path):
    run = tmp_path / "lit"
    run.mkdir()
    (run / "metrics.csv").write_text("step,train_loss\n1,2.0\n")
    reader = open_run(run)
    reader.poll()
    old = time.time() - 3600
    os.utime(run / "metrics.csv", (old, old))
    status = reader.status(stall_after_s=60)
    assert status.state == "ended" and "no new data for" in status.message and "no process writing" in status.message
    # a process working in that directory keeps it "stalled"
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=run)
    try:
        time.sleep(0.3)
        reader._writer_checked_at = float("-inf")
        status = reader.status(stall_after_s=60)
        assert status.state == "stalled" and status.pid == proc.pid and "no new data for" in status.message
    finally:
        proc.kill()
        proc.wait()


def test_recent_runs_of_every_kind_newest_first(tmp_path):
    (tmp_path / "a-lsdt").mkdir()
    (tmp_path / "a-lsdt" / "metrics.jsonl").write_text("")
    (tmp_path / "b-lit").mkdir()
    (tmp_path / "b-lit" / "metrics.csv").write_text("step,loss\n")
    (tmp_path / "c-junk").mkdir()
    os.utime(tmp_path / "a-lsdt" / "metrics.jsonl", (1e9, 1e9))
    found = recent_runs([tmp_path])
    assert [(p.name, s) for p, s, _ in found] == [("b-lit", "lightning"), ("a-lsdt", "lsdt")]


def test_run_of_a_process_from_open_files_command_line_or_cwd(tmp_path):
    import subprocess
    import sys

    from engine.runtime.monitor.runs import run_of_process

    run = tmp_path / "lsdt-run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    holder = "import sys, time\nf = open(sys.argv[1], 'a')\nprint('ready', flush=True)\ntime.sleep(60)\n"
    procs = [
        subprocess.Popen([sys.executable, "-c", holder, str(run / "metrics.jsonl")], cwd=elsewhere, stdout=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, "-c", "print('ready', flush=True); import time; time.sleep(60)", "--run-dir", str(run)],
                         cwd=elsewhere, stdout=subprocess.PIPE, text=True),
        subprocess.Popen([sys.executable, "-c", "print('ready', flush=True); import time; time.sleep(60)"],
                         cwd=elsewhere, stdout=subprocess.PIPE, text=True),
    ]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        assert run_of_process(procs[0].pid) == (run, "holds metrics.jsonl open")
        assert run_of_process(procs[1].pid) == (run, f"its command line names {run}")
        path, why = run_of_process(procs[2].pid)
        assert path is None and "no run found" in why and str(elsewhere) in why
    finally:
        for p in procs:
            p.kill()
            p.wait()
    path, why = run_of_process(procs[0].pid)  # gone
    assert path is None and "gone" in why


def test_recent_runs_states_without_reading_them(tmp_path):
    from engine.runtime.monitor.runs import quick_state

    w = tb_writer(tmp_path / "tb")
    w.add_scalar("loss", 1.0, 0)
    w.close()
    assert quick_state(tmp_path / "tb", "tensorboard") == "running"  # its event file was just written
    (event_file,) = (tmp_path / "tb").glob("events.*")
    old = time.time() - 3600
    os.utime(event_file, (old, old))
    assert quick_state(tmp_path / "tb", "tensorboard") == "idle"


def test_jsonl_file_that_is_not_json_one_line(tmp_path):
    bad = tmp_path / "log.jsonl"
    bad.write_text("step,loss\n1,2\n")
    with pytest.raises(UserError, match="line 1 is not JSON; accepted: one JSON object per line"):
        open_run(bad)
