"""Decoding a data dir (recipe stage 9): every task's files and the manifest,
one shard per job, merged back per set; failures recorded, the rest decoded."""

import json

import numpy as np
import pytest
import soundfile

from espnet2_merit.bin.merit_inference import main as inference_main
from espnet2_merit.bin.merit_merge_decode import main as merge_main
from espnet2_merit.utils.datadir import read_kaldi

FS = 16000


def _decode(trained_exp, wav_scp, out, keys=None, extra=()):
    config, model_file = trained_exp
    cmd = [
        "--train_config", str(config), "--model_file", str(model_file),
        "--data_path_and_name_and_type", f"{wav_scp},speech,sound",
        "--output_dir", str(out), "--batch_size", "3", *extra,
    ]  # fmt: skip
    if keys is not None:
        key_file = out.parent / f"{out.name}.keys"
        key_file.write_text("\n".join(keys) + "\n")
        cmd += ["--key_file", str(key_file)]
    inference_main(cmd)


def test_one_shard_writes_every_task_and_the_manifest(trained_exp, data_dirs, tmp_path):
    _, valid = data_dirs
    wav = read_kaldi(valid / "wav.scp")
    keys = list(wav)[:4]
    out = tmp_path / "output.1"
    _decode(trained_exp, valid / "wav.scp", out, keys)
    manifest = json.loads((out / "outputs.json").read_text())
    assert manifest["tasks"]["ser"] == {
        "name": "emotion", "kind": "label", "file": "emotion",
        "classes": ["A", "S", "H", "N"],
    }  # fmt: skip
    assert manifest["tasks"]["se"]["file"] == "spk1.scp"
    assert set(manifest["files"]) >= {"emotion", "emotion_posteriors", "spk1.scp"}
    emotion = read_kaldi(out / "emotion")
    assert list(emotion) == keys and set(emotion.values()) <= {"A", "S", "H", "N"}
    for line in (out / "emotion_posteriors").read_text().splitlines():
        assert abs(sum(map(float, line.split()[1:])) - 1) < 1e-4
    for key, path in read_kaldi(out / "spk1.scp").items():
        enhanced, fs = soundfile.read(path)
        noisy, _ = soundfile.read(wav[key])
        assert fs == FS and len(enhanced) == len(noisy)
    usage = (out / "routing" / "ser_usage").read_text().splitlines()
    assert len(usage) == 4 and all(len(u.split()) == 4 for u in usage)
    experts = read_kaldi(out / "routing" / "ser_experts")
    count = read_kaldi(out / "routing" / "ser_expert_count")  # top-1: one a frame
    assert list(count) == keys
    assert all(count[k].split() == ["1"] * len(experts[k].split()) for k in keys)
    assert not list(out.rglob("*.tmp"))


def test_emotion_only_decoding_has_no_enhancement(trained_exp, data_dirs, tmp_path):
    _, valid = data_dirs
    out = tmp_path / "out"
    _decode(trained_exp, valid / "wav.scp", out, extra=["--enhance", "false"])
    manifest = json.loads((out / "outputs.json").read_text())
    assert list(manifest["tasks"]) == ["ser"] and not (out / "spk1.scp").exists()
    assert (out / "routing" / "se_usage").is_file()  # every task is still routed


def test_a_bad_utterance_is_recorded_and_the_others_decoded(
    trained_exp, data_dirs, tmp_path
):
    _, valid = data_dirs
    wav = read_kaldi(valid / "wav.scp")
    bad = tmp_path / "nan.wav"
    soundfile.write(bad, np.full(FS, np.nan, np.float32), FS, subtype="FLOAT")
    scp = tmp_path / "wav.scp"
    keys = list(wav)
    scp.write_text("".join(
        f"{k} {bad if i == 1 else wav[k]}\n" for i, k in enumerate(keys)
    ))  # fmt: skip
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=rf"1 of {len(keys)} utterances failed.*'{keys[1]}'"):  # fmt: skip
        _decode(trained_exp, scp, out)
    assert set(read_kaldi(out / "emotion")) == set(keys) - {keys[1]}
    assert f"utterance '{keys[1]}'" in (out / "failed").read_text()


def test_bad_key(trained_exp, data_dirs, tmp_path):
    _, valid = data_dirs
    with pytest.raises(SystemExit, match="1 keys not in"):
        _decode(trained_exp, valid / "wav.scp", tmp_path / "o", keys=["nope-utt"])


def test_shards_merge_back_into_one_dir_per_set(trained_exp, data_dirs, tmp_path):
    _, valid = data_dirs
    wav = read_kaldi(valid / "wav.scp")
    sets = ("a_seen_snr0", "b_seen_snr0")
    lines = sorted(f"{s}__{k} {p}\n" for s in sets for k, p in wav.items())
    scp = tmp_path / "all.scp"
    scp.write_text("".join(lines))
    keys = [line.split()[0] for line in lines]
    for i, shard in enumerate((keys[:5], keys[5:]), 1):
        _decode(trained_exp, scp, tmp_path / f"output.{i}", shard)
    decode = tmp_path / "decode"
    merge_main(["--sets", *sets, "--out_dir", str(decode),
                str(tmp_path / "output.1"), str(tmp_path / "output.2")])  # fmt: skip
    for s in sets:
        assert (decode / s / ".done").is_file()
        assert list(read_kaldi(decode / s / "emotion")) == sorted(wav)
        assert json.loads((decode / s / "outputs.json").read_text())["tasks"]
        assert len(read_kaldi(decode / s / "routing" / "se_usage")) == len(wav)
    # The cascade: an emotion-only model's sets take another model's enhanced
    # speech (what it classified); the same task in both is an error.
    for i, shard in enumerate((keys[:5], keys[5:]), 1):
        _decode(trained_exp, scp, tmp_path / f"ser.{i}", shard, ["--enhance", "false"])
    shards = [str(tmp_path / "ser.1"), str(tmp_path / "ser.2")]
    cascade = tmp_path / "cascade"
    merge_main(["--sets", *sets, "--out_dir", str(cascade),
                "--waveforms_from", str(decode), *shards])  # fmt: skip
    tasks = json.loads((cascade / sets[0] / "outputs.json").read_text())["tasks"]
    assert set(tasks) == {"ser", "se"}
    assert (cascade / sets[0] / "spk1.scp").read_text() == (
        decode / sets[0] / "spk1.scp"
    ).read_text()
    with pytest.raises(SystemExit, match="task 'se' is also this model's"):
        merge_main(["--sets", *sets, "--out_dir", str(tmp_path / "x"),
                    "--waveforms_from", str(decode), str(tmp_path / "output.1"),
                    str(tmp_path / "output.2")])  # fmt: skip
