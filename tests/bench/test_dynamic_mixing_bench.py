"""bench/dynamic_mixing.py on a miniature: generated data, one repetition."""

from merit_testing import load_local


def test_bench_runs_on_generated_data_and_writes_its_table(tmp_path):
    bench = load_local("dynamic_mixing", "bench")
    out = tmp_path / "dynamic_mixing.md"
    text = bench.main(
        ["--generate", "--num_utts", "6", "--repeats", "1", "--workers", "0",
         "--batch_size", "3", "--max_speech_sec", "1", "--passes", "1", "--out", str(out)]
    )  # fmt: skip
    assert out.read_text() == text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and "|---" not in line
    ]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == list(bench.CONDITIONS)
    for row in rows[1:]:
        cells = row.split(" | ")
        assert float(cells[2].split()[0]) > 0 and float(cells[5].split()[0]) > 0
    assert "| pre-mixed | 0 |" in text and "1.00x" in text
    assert "8 synthetic RIRs" in text
