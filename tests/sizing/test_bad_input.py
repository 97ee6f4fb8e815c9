"""Bad input to the sizing commands: one line on stderr naming the flag/key and what is accepted,
exit 2, no traceback, and never a hang (`lsdt plan`, `predict`, `bands`; the shared argument types)."""

from __future__ import annotations

import argparse
import math
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.commands.common import MAX_HOURS, days, hours, seed
from engine.sizing.design import divisors
from tests.conftest import run_lsdt

PLAN = ["plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm"]
PREDICT = ["predict", "--model", "gpt3-175b", "--hardware", "a100-80g-sxm", "--gpus", "1024", "--tp", "8", "--pp", "16"]


def one_line_error(r, *words: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-800:])
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    return r.stderr


@pytest.mark.parametrize("argv, words", [
    # a deadline whose seconds overflow to inf was accepted ("260B tokens in n/a", exit 0)
    (PLAN + ["--hours", "1e308"], ["--hours", "1e+06"]),
    (PLAN + ["--days", "1e306"], ["--days"]),
    # bands: int(inf tokens) raised OverflowError (a traceback)
    (["bands", "--hours", "1e308"], ["--hours", "1e+06"]),
    # tokens x FLOP/token overflowed: OverflowError traceback in physics
    (PLAN + ["--tokens", "1e300"], ["tokens", "accepted: tokens <="]),
    (PLAN + ["--tokens", "1e300", "--seed-model"], ["tokens", "accepted: tokens <="]),
])
def test_overflowing_numbers_are_one_line_errors(argv, words):
    one_line_error(run_lsdt(*argv, timeout=30), *words)


@pytest.mark.parametrize("argv, words", [
    # a 10^30-token batch hung the layout search (trial division of a ~10^26 number); an integer
    # flag now takes at most 2^31 - 1 (engine/inputs.py), and the engine's own cap refuses the rest
    (PLAN + ["--global-batch-tokens", "1e30"], ["--global-batch-tokens", "accepted: an integer in [1, 2,147,483,647]"]),
    (PREDICT + ["--global-batch", "1e30"], ["--global-batch", "accepted: an integer in [1, 2,147,483,647]"]),
    (PREDICT + ["--global-batch", "2e9"], ["--global-batch", "at most 16,777,216 sequences"]),
])
def test_huge_batches_are_refused_quickly(argv, words):
    one_line_error(run_lsdt(*argv, timeout=20), *words)


def test_largest_accepted_batch_still_plans():
    r = run_lsdt(*PLAN, "--global-batch-tokens", str(2**24 * 2048), "--json", timeout=30)
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr


def test_saved_plan_with_overflowing_tokens(tmp_path):
    r = run_lsdt(*PLAN, "--save", str(tmp_path / "p.toml"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "p.toml").read_text()
    lines = [("tokens = 1e300" if line.startswith("tokens = ") else line) for line in text.splitlines()]
    (tmp_path / "big.toml").write_text("\n".join(lines) + "\n")
    one_line_error(run_lsdt("plan", "--load", str(tmp_path / "big.toml")), "tokens")


@given(st.integers(1, 200_000))
@settings(max_examples=300, deadline=None)
def test_divisors_match_the_definition(n):
    assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0]


def test_divisors_of_a_huge_smooth_batch_are_instant():
    n = 2**40 * 3**5 * 5**7
    ds = divisors(n)
    assert len(ds) == 41 * 6 * 8 and ds[0] == 1 and ds[-1] == n and all(n % d == 0 for d in ds)


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12)))
@settings(max_examples=300, deadline=None)
def test_window_types_accept_exactly_finite_bounded_positive_numbers(text):
    for parse, limit in ((hours, MAX_HOURS), (days, MAX_HOURS / 24)):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc) and "accepted" in str(exc) or "not a number" in str(exc)
            continue
        assert math.isfinite(value) and 0 < value <= limit
        assert math.isfinite(value * 86400)


@given(st.one_of(st.integers(-2**70, 2**70).map(str), st.text(max_size=8)))
@settings(max_examples=300, deadline=None)
def test_seed_type_accepts_exactly_0_to_2_63(text):
    try:
        value = seed(text)
    except argparse.ArgumentTypeError as exc:
        assert "accepted: an integer in [0, 2^63)" in str(exc)
        return
    assert 0 <= value < 2**63


# A slow disk: fsync of the temporary file sleeps, so SIGTERM lands mid-write deterministically.
_SLOW_SAVE = """
import os, sys, time
from engine import cli
os.fsync = lambda fd: time.sleep(30)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_during_a_save_leaves_neither_the_file_nor_its_temporary(tmp_path):
    """SIGTERM killed `lsdt plan --save` (seal, export --out, ...) by the default action, leaving a
    `.NAME.*.tmp` partial file; now it unwinds like Ctrl-C: the temporary is removed, exit 143."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    target = tmp_path / "p.toml"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, *PLAN, "--seed-model", "--save", str(target)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".p.toml.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip() == "lsdt: terminated (SIGTERM)" and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


_HF_BASE = {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "vocab_size": 1000,
            "max_position_embeddings": 512, "intermediate_size": 1024, "hidden_act": "silu"}
_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.lists(st.integers(0, 3), max_size=2),
)


@given(key=st.sampled_from(["num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "max_position_embeddings",
                            "intermediate_size", "num_key_value_heads", "head_dim", "tie_word_embeddings", "n_positions",
                            "num_local_experts", "num_experts_per_tok", "moe_intermediate_size", "sliding_window"]),
       value=_JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_hf_config_errors_name_a_key_of_the_file(key, value):
    """A bad value in a config.json is a one-line UserError, and a key it names is one the file has
    (errors named LSDT's field, 'n_layer', for a bad 'num_hidden_layers')."""
    import re

    from engine.errors import UserError
    from engine.specs import model_from_hf_config

    cfg = {**_HF_BASE, key: value}
    if key == "moe_intermediate_size":
        cfg.update(num_local_experts=4, num_experts_per_tok=2)
    try:
        spec = model_from_hf_config(cfg, "cfg.json")
    except UserError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(("cfg.json", "model "))
        for named in re.findall(r"key '([^']+)'", message):
            assert named in cfg, message
        return
    assert spec.n_layer >= 1 and spec.d_model >= 1 and spec.seq_len >= 1


@pytest.mark.parametrize("argv", [
    PLAN + ["--save", ""],  # saved nothing, exit 0
    PLAN + ["--calibrate", ""],  # ignored
    ["bands", "--probe", ""],  # ignored
    ["bands", "--hardware", ""],  # fell back to the default GPU
    ["export", "--plan", "p.toml", "--to", "megatron", "--out", ""],  # printed instead
    ["quantize", "run", "--out", ""],  # wrote manifest.json, report.json, tensors/ into the current directory
    ["seal", "q", "--out", ""],  # ".: cannot write (Device or resource busy)"
    ["train", "--run-dir", ""],
    ["moe", "train", "--phase", "trunk", "--run-dir", ""],
])
def test_an_empty_path_is_refused_naming_the_flag(argv, tmp_path):
    """An empty path was taken as absent or as the current directory."""
    flag = next(a for a in reversed(argv) if a.startswith("--"))
    r = run_lsdt(*argv, cwd=tmp_path, timeout=30)
    one_line_error(r, f"argument {flag}: '': accepted: a non-empty path or name")
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_deadline_gives_a_readable_ratio():
    """--days 1e-300 printed the step/budget ratio as a 300-digit number (:.2f)."""
    r = run_lsdt(*PLAN, "--days", "1e-300")
    message = one_line_error(r, "no solution")
    # The exponent moves with the fastest layout the search finds (context parallelism reaches
    # larger clusters); what matters is the e+ notation.
    assert len(message) < 200 and re.search(r"e\+29\dx", message), message


@pytest.mark.parametrize("reserve_gb", ["24", "1e308"])
def test_a_vram_reserve_of_the_whole_gpu_is_refused(reserve_gb):
    """--vram-reserve-gb 1e308 raised OverflowError in max_device_batch; 24 on a 24 GB card printed
    a table of negative usable memory."""
    one_line_error(run_lsdt("bands", "--hardware", "rtx4090", "--vram-reserve-gb", reserve_gb),
                   "vram reserve", "accepted: a reserve below 24 GB")


def test_a_refused_pilot_names_the_file(tmp_path):
    """The refusal said why but not which file ('lsdt: error: pilot refused: ...')."""
    pilot = tmp_path / "metrics.jsonl"
    pilot.write_text('{"time": 1, "loss": NaN}\n{"time": 2, "loss": Infinity}\n')
    one_line_error(run_lsdt("bands", "--pilot", str(pilot)), f"--pilot {pilot}: pilot refused: ")


@given(st.text(max_size=10))
@settings(max_examples=400, deadline=None)
def test_number_types_echo_exactly_what_was_typed(text):
    """'--tokens abcK' was reported as 'abc' (the suffix stripped), 'K' as ''."""
    from engine.commands.common import fraction, positive_float, positive_int

    for parse in (positive_float, positive_int, fraction):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert str(exc).startswith(repr(text)) and "\n" not in str(exc), (text, str(exc))
            continue
        assert math.isfinite(value) and value > 0


_FLAG_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e308", "1e-308", "1e30", "", " ", "3x", "1.5", "K", "2T", "0x10", "1_0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10**12).map(str),
    st.text(max_size=6),
)
_SIZING_FLAGS = {
    "plan": (PLAN + ["--seed-model"], ["--tokens", "--hours", "--days", "--global-batch-tokens", "--G", "--eta-compute", "--eta-fabric",
                                      "--seq", "--price-per-gpu-hour", "--eta-gemm"]),
    "predict": (PREDICT + ["--global-batch", "1536"], ["--gpus", "--tp", "--pp", "--dp", "--global-batch", "--micro-batch", "--seq",
                                                         "--interleave", "--eta-compute"]),
    "moe": (["moe"], ["--expert-tokens", "--gpus-per-expert", "--mfu", "--price-per-gpu-hour", "--qa-gpus", "--trunk-gpus", "--trunk-tokens"]),
    "bands": (["bands", "--depths", "12"], ["--hours", "--depths", "--seq", "--head-dim", "--kv-heads", "--vocab", "--mfu", "--sft-fraction",
                                             "--global-batch-tokens", "--vram-reserve-gb", "--min-tokens-per-param", "--window-pattern",
                                             "--curriculum"]),
}


@given(command=st.sampled_from(sorted(_SIZING_FLAGS)), data=st.data())
@settings(max_examples=200, deadline=None)
def test_any_value_of_any_sizing_flag_is_a_result_or_one_line_exit_2(command, data):
    """The class of bad input this sweep found (overflow, hangs, tracebacks): for any value of any
    numeric flag of plan/predict/bands/moe, the CLI answers (0, with finite numbers) or says one
    line and exits 2."""
    import contextlib
    import io
    import re

    from engine import cli

    base, flags = _SIZING_FLAGS[command]
    flag = data.draw(st.sampled_from(flags))
    value = data.draw(_FLAG_VALUES)
    argv = base + [f"{flag}={value}"]  # '=' so a value starting with '-' stays a value
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's own usage errors
            code = exc.code
    if code == 0:  # an answer, never an overflowed one (--mfu 1e-308 printed "inf" hours, a 1e308 price "$inf")
        assert not re.search(r"\b(inf|nan)\b", out.getvalue()), (argv, out.getvalue()[-500:])
    else:
        assert code == 2, (argv, code, err.getvalue())
        assert err.getvalue().count("\n") == 1, (argv, err.getvalue())


@pytest.mark.parametrize("argv, words", [
    # 24 GB of per-layer windows, then the OOM killer; beyond 2^31 the flag's own range refuses it
    (["bands", "--depths", "12,1000000"], ["n_layer = 1000000", "accepted: 1..10,000 layers"]),
    (["bands", "--depths", "12,1000000000000"], ["--depths", "accepted: comma-separated integers >= 1"]),
    # the pipeline search walked 1..n_layer
    (PLAN[:1] + ["--model", "{deep}", "--hardware", "h100-sxm"], ["n_layer = 1000000000000", "accepted: 1..10,000 layers"]),
])
def test_absurd_depths_are_refused_before_any_per_layer_work(argv, words, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"num_hidden_layers": 1e12, "hidden_size": 64, "num_attention_heads": 1, "vocab_size": 10}')
    r = run_lsdt(*[a.format(deep=deep) for a in argv], timeout=30)
    one_line_error(r, *words)


@pytest.mark.parametrize("argv, key", [
    (["bands", "--depths", "12", "--head-dim", "1e308"], "--head-dim"),  # OverflowError: int too large to convert to float
    (["bands", "--depths", "12", "--vocab", "1e300"], "--vocab"),
    (PREDICT + ["--global-batch", "1536", "--seq", "1e300"], "--seq"),
])
def test_dimensions_beyond_2_31_are_refused(argv, key):
    """Refused by the integer grammar now (engine/inputs.py INT_MAX), before the model is built."""
    one_line_error(run_lsdt(*argv), key, "accepted: an integer in [1, 2,147,483,647]")


@pytest.mark.parametrize("argv, words", [
    (["moe", "--mfu", "1e-308"], ["--mfu", "at least 1e-06"]),
    (["bands", "--mfu", "1e-9"], ["--mfu", "at least 1e-06"]),
    (["moe", "--price-per-gpu-hour", "1e308"], ["price per GPU-hour = 1e+308", "accepted: a price below"]),
])
def test_tiny_efficiencies_and_huge_prices_do_not_print_inf(argv, words):
    one_line_error(run_lsdt(*argv), *words)


def _grammar_flags() -> list[tuple[tuple[str, ...], str]]:
    """(subcommand path, flag) of every flag of every `lsdt` subcommand whose type is the input
    grammar (engine/flags.flag_type), found by walking the real parsers: a new flag is swept too."""
    from engine import cli

    found = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, path + (name,))
            elif getattr(action.type, "grammar", None) is not None and action.option_strings:
                found.append((path, action.option_strings[0]))

    for command in cli.available_commands():
        parser = cli.build_parser(command)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
        walk(sub, (command,))
    return found


_GRAMMAR_FLAGS = _grammar_flags()


def test_the_sweep_covers_every_subcommand_and_the_reported_flags():
    commands = {path[0] for path, _ in _GRAMMAR_FLAGS}
    assert {"plan", "predict", "bands", "moe", "train", "probe", "quantize", "monitor", "export"} <= commands
    for path, flag in [(("train",), "--threads"), (("quantize",), "--batch"), (("probe",), "--timeout"),
                       (("train",), "--device-batch"), (("train",), "--grad-accum"), (("moe", "train"), "--trunk-steps")]:
        assert (path, flag) in _GRAMMAR_FLAGS, (path, flag)


def _assert_cli_refuses(path: tuple[str, ...], flag: str, value: str) -> None:
    """`lsdt PATH FLAG=VALUE`, in-process in an empty directory: exit 2, one stderr line naming the
    flag, no traceback, and nothing created (the refusal comes before the command runs)."""
    import contextlib
    import io
    import tempfile

    from engine import cli

    err = io.StringIO()
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as where:
        os.chdir(where)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    code = cli.main([*path, f"{flag}={value}"])
                except SystemExit as exc:  # argparse's refusal
                    code = exc.code
            created = os.listdir(where)
        finally:
            os.chdir(before)
    assert code == 2, (path, flag, value, code, err.getvalue())
    assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue() and flag in err.getvalue(), err.getvalue()
    assert not created, (path, flag, value, created)


@given(entry=st.sampled_from(_GRAMMAR_FLAGS), value=_FLAG_VALUES)
@settings(max_examples=400, deadline=None)
def test_any_value_of_any_flag_parses_in_range_or_is_refused_in_one_line(entry, value):
    """Every numeric flag of every subcommand (train, probe, quantize, moe train, ... included): a
    value the flag's type refuses makes `lsdt` exit 2 with one line naming the flag, no traceback
    and no new file; any other value parses inside the flag's documented range (docs/bad-input.md).
    A value that parses is not run here (it would train or probe): the subprocess tests below and
    tests/runtime/test_train_bad_input.py run the runtime commands."""
    from engine import cli, inputs

    path, flag = entry
    parser = cli.build_parser(path[0])
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    action = next(a for a in parser._actions if flag in a.option_strings)
    try:
        parsed = action.type(value)
    except argparse.ArgumentTypeError:
        _assert_cli_refuses(path, flag, value)
        return
    for v in parsed if isinstance(parsed, list) else [parsed]:
        if isinstance(v, tuple):  # a curriculum stage (seq, fraction)
            assert 1 <= v[0] <= inputs.INT_MAX and 0 < v[1] <= 1, (flag, value, v)
        elif isinstance(v, (int, float)):
            assert math.isfinite(v) and 0 <= v, (flag, value, v)
            if isinstance(v, int):
                assert v < inputs.SEED_LIMIT and (flag == "--seed" or v <= inputs.INT_MAX), (flag, value, v)


@pytest.mark.parametrize("argv, words", [
    # 1e308 on integer flags of the runtime commands: tracebacks (issue 16, "Input limits")
    (["quantize", "ckpt.pt", "--out", "q", "--batch", "1e308"], ["--batch", "accepted: an integer in [1, 2,147,483,647]"]),
    (["probe", "--timeout", "1e308"], ["--timeout", "accepted: a number of seconds in (0, 3.6e+09]"]),
    (["moe", "train", "--run-dir", "m", "--trunk-steps", "161."], ["--trunk-steps", "'161.'", "accepted: an integer"]),
])
def test_runtime_integer_flags_refuse_absurd_values_in_one_line(argv, words, tmp_path):
    r = run_lsdt(*argv, cwd=tmp_path, timeout=60)
    one_line_error(r, *words)
    assert not os.listdir(tmp_path)


def test_fewer_tokens_than_one_global_batch_is_refused_naming_tokens():
    """`--tokens 21` planned "1 steps" of a 4M-token batch and answered FEASIBLE."""
    one_line_error(run_lsdt(*PLAN, "--tokens", "21"), "tokens = 21", "less than one global batch", "accepted: tokens >=")
