"""merit_asr: a wav.scp transcribed into a Kaldi text file (atomically: a killed
run leaves nothing a re-run trusts), its options, and the WER against reference
transcripts (the word-level edit distance of espnet2_merit.asr.wer)."""

import json
import sys

import pytest
from merit_testing import kill_at

from espnet2_merit.asr.transcribe_dir import parse_asr_conf
from espnet2_merit.asr.wer import corpus_wer, normalize
from espnet2_merit.bin.merit_asr import main
from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.datadir import read_kaldi, write_kaldi


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _args(tiny_asr, wav_scp, out, *extra):
    return [
        "--wav_scp", str(wav_scp), "--out", str(out), "--asr_model", str(tiny_asr),
        "--asr_conf", "local_files_only=true", *extra,
    ]  # fmt: skip


def test_normalize_ignores_case_and_punctuation_but_keeps_apostrophes():
    assert normalize("Hello, there!  DON'T  'quote' me-now.\n") == [
        "hello",
        "there",
        "don't",
        "quote",
        "me",
        "now",
    ]
    assert normalize("  ") == []


def test_corpus_wer_counts_word_edits_after_normalising():
    refs = {"a": "The cat sat on the mat.", "b": "Don't go"}
    assert (
        corpus_wer(refs, {"a": "the cat sat on the mat", "b": "don't go!"}).errors == 0
    )
    assert corpus_wer(refs, {"a": "the cat sit on mat", "b": "dont go"}).errors == 3
    assert corpus_wer(refs, {"a": "oh the cat sat on the mat now", "b": ""}).errors == 4
    result = corpus_wer({"a": "The cat.", "b": "sat on"}, {"a": "the bat", "b": "sat"})
    assert (result.errors, result.ref_words) == (2, 4)
    assert result.wer == pytest.approx(2 / 4) and "WER 50.00%" in str(result)
    with pytest.raises(MeritInputError, match="no transcript .*first: 'b'"):
        corpus_wer({"a": "x", "b": "y"}, {"a": "x"})


def test_asr_conf_words_are_typed_and_checked():
    conf = parse_asr_conf(
        ["device=cpu", "local_files_only=yes", "max_new_tokens=7", "language=no"]
    )
    assert conf == dict(
        device="cpu", local_files_only=True, max_new_tokens=7, language="no"
    )  # "no" is Norwegian, not false
    assert parse_asr_conf(["language=none"]) == {"language": None}
    for word, match in [
        ("device", "expected key=value"),
        ("beam=3", "unknown option 'beam'"),
        ("max_new_tokens=a", "expected an integer"),
        ("local_files_only=maybe", "expected true or false"),
    ]:
        with pytest.raises(MeritInputError, match=f"--asr_conf '{word}': {match}"):
            parse_asr_conf([word])
    with pytest.raises(MeritInputError, match="'device' given twice"):
        parse_asr_conf(["device=cpu", "device=cuda"])


def test_writes_kaldi_text_of_every_utterance_and_scores_the_wer(
    tiny_asr, data_dirs, tmp_path, capsys
):
    _, valid = data_dirs
    out = tmp_path / "text"
    main(_args(tiny_asr, valid / "wav.scp", out, "--asr_conf", "batch_size=4"))
    hyps = read_kaldi(out)
    assert list(hyps) == sorted(read_kaldi(valid / "wav.scp"))
    assert all(hyps.values()) and not list(tmp_path.glob("*.tmp"))
    assert capsys.readouterr().out == ""  # no reference: no WER
    # a reference: the transcripts with one word changed -> one substitution
    first = next(iter(hyps))
    refs = dict(hyps)
    refs[first] = " ".join(["zzz"] + hyps[first].split()[1:])
    write_kaldi(tmp_path / "ref", refs)
    wer_out = tmp_path / "wer.json"
    main(
        _args(
            tiny_asr, valid / "wav.scp", tmp_path / "text2",
            "--ref_text", str(tmp_path / "ref"), "--wer_out", str(wer_out),
        )
    )  # fmt: skip
    assert read_kaldi(tmp_path / "text2") == hyps  # deterministic
    printed = capsys.readouterr().out
    words = sum(len(t.split()) for t in refs.values())
    assert f"WER {100 / words:.2f}% (1 errors in {words} reference words" in printed
    result = json.loads(wer_out.read_text())
    assert result["errors"] == 1 and result["utterances"] == len(hyps)
    assert result["ref_words"] == words and result["wer"] == pytest.approx(1 / words)
    # the reference of the set's true transcripts: gibberish scores badly
    main(_args(tiny_asr, valid / "wav.scp", out, "--ref_text", str(valid / "text")))
    assert "WER " in capsys.readouterr().out


def test_utterances_without_words_get_a_placeholder(tiny_asr, tmp_path):
    import soundfile

    soundfile.write(tmp_path / "silence.wav", [0.0] * 8000, 16000)
    (tmp_path / "wav.scp").write_text(f"s {tmp_path / 'silence.wav'}\n")
    from espnet2_merit.asr import Transcriber
    from espnet2_merit.asr.transcribe_dir import transcribe_scp

    class Silent(Transcriber):
        def transcribe(self, wavs, fs, names=None):
            return [""] * len(wavs)

    asr = Silent(str(tiny_asr), local_files_only=True)
    assert transcribe_scp(asr, tmp_path / "wav.scp", tmp_path / "text") == {
        "s": "<unk>"
    }
    assert (tmp_path / "text").read_text() == "s <unk>\n"
    with pytest.raises(MeritInputError, match="empty_text must be one word"):
        transcribe_scp(asr, tmp_path / "wav.scp", tmp_path / "t", empty_text="a b")


def test_bad_input_is_one_line_naming_the_file(tiny_asr, data_dirs, tmp_path):
    _, valid = data_dirs
    bad_scp = tmp_path / "bad.scp"
    bad_scp.write_text(f"u1 {tmp_path / 'missing.wav'}\n")
    ref = tmp_path / "ref"
    ref.write_text("someone hello there\n")
    cases = [
        (_args(tiny_asr, bad_scp, tmp_path / "o"), "bad.scp: utterance 'u1': cannot"),
        (
            _args(tiny_asr, valid / "wav.scp", tmp_path / "o", "--ref_text", str(ref)),
            "ref: 1 utterances are not in the transcribed list .*'someone'",
        ),
        (
            _args(tiny_asr, valid / "wav.scp", tmp_path / "o", "--ref_text", "nope"),
            "--ref_text nope: no such file",
        ),
        (
            _args(tiny_asr, valid / "wav.scp", tmp_path / "o", "--wer_out", "w.json"),
            "--wer_out needs --ref_text",
        ),
        (
            _args(tmp_path / "nomodel", valid / "wav.scp", tmp_path / "o"),
            "nomodel.*cannot load its config",
        ),
    ]
    for cmd, match in cases:
        with pytest.raises(SystemExit, match=f"merit_asr: error: .*{match}"):
            main(cmd)


def test_a_killed_run_leaves_no_transcripts(tiny_asr, data_dirs, tmp_path):
    _, valid = data_dirs
    out = tmp_path / "text"
    out.write_text("stale transcripts of an earlier run\n")
    cmd = [sys.executable, "-m", "espnet2_merit.bin.merit_asr"]
    cmd += _args(tiny_asr, valid / "wav.scp", out)
    # killed after transcribing, right before writing
    assert kill_at(cmd, tmp_path, "espnet2_merit.asr.transcribe_dir.write_kaldi", 1)
    assert not out.exists()
