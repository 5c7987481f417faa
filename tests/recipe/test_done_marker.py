"""The recipe's markers of finished work (scripts/utils/done_marker.sh): a marker
matches only the options and input files it was made from."""

import subprocess

from merit_testing import REPO

HELPERS = REPO / "egs2" / "TEMPLATE" / "merit1" / "scripts" / "utils" / "done_marker.sh"


def _bash(script: str, cwd) -> str:
    out = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; . {HELPERS}; {script}"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_marker_follows_options_and_file_contents(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 a.wav\n")
    fp = _bash("fingerprint '--fs 16000' wav.scp", tmp_path)
    assert fp == _bash("fingerprint '--fs 16000' wav.scp", tmp_path)
    assert fp != _bash("fingerprint '--fs 8000' wav.scp", tmp_path)
    _bash(f"mark_done out/.done {fp}", tmp_path)
    assert _bash(f"is_done out/.done {fp} && echo yes || echo no", tmp_path) == "yes"
    (tmp_path / "wav.scp").write_text("u1 b.wav\n")  # same name, new content
    fp2 = _bash("fingerprint '--fs 16000' wav.scp", tmp_path)
    assert fp2 != fp
    assert _bash(f"is_done out/.done {fp2} && echo yes || echo no", tmp_path) == "no"
    assert "other options" in _bash("done_reason out/.done", tmp_path)
    assert "missing" in _bash("done_reason nowhere/.done", tmp_path)


def test_large_files_by_size_and_time(tmp_path):
    big = tmp_path / "model.pth"
    with open(big, "wb") as f:
        f.truncate(20_000_000)
    fp = _bash("fingerprint model.pth", tmp_path)
    subprocess.run(["touch", "-d", "2020-01-01", str(big)], check=True)
    assert _bash("fingerprint model.pth", tmp_path) != fp
