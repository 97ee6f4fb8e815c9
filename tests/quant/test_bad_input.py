"""Files of the wrong kind given as a checkpoint: one line naming the file and what a checkpoint is."""

from __future__ import annotations

import pytest

from engine.runtime.train.checkpoint import read_checkpoint


@pytest.mark.parametrize("content", [b"name = \"a100\"\npeak_flops = 1e12\n", b"\x00\xff\xfe\x01binary", b"", b"{\"a\": 1}"])
def test_a_file_that_is_not_a_zip_is_named_as_such(tmp_path, content):
    """torch's error for these was a paragraph about weights_only, cut mid-word at 120 characters."""
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert message.startswith("not a torch checkpoint (a .pt file is a zip archive") and "weights_only" not in message


def test_quantize_and_trunk_name_the_file_in_one_line(tmp_path, lsdt):
    bad = tmp_path / "hw.toml"
    bad.write_text('name = "x"\n')
    for argv, prefix in ((["quantize", str(bad), "--out", str(tmp_path / "q")], f"{bad}: not a usable checkpoint: not a torch checkpoint"),
                         (["moe", "train", "--phase", "experts", "--tiny", "--trunk", str(bad), "--run-dir", str(tmp_path / "r")],
                          f"--trunk {bad}: not a usable checkpoint: not a torch checkpoint")):
        r = lsdt(*argv, timeout=60)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"lsdt: error: {prefix}") and "weights_only" not in r.stderr, r.stderr
    assert not (tmp_path / "q").exists() and not (tmp_path / "r").exists()
