"""Speech + text SER: the transcripts' data name, the text frontend (tokens with
lengths, padding never read), the multimodal head's fusions on the tiny configs,
a frozen text encoder, bad transcripts, and a short training run."""

import shutil

import pytest
import torch
from merit_testing import CONF, SPARSE_TINY, data_args

from espnet2_merit.errors import MeritInputError
from espnet2_merit.tasks.merit import MeritTask, drop_unread_text
from espnet2_merit.utils.datadir import DATA_FILES, KEYED_TEXT_FILES, read_kaldi

LATE = CONF / "tuning" / "train_speech_text_late_tiny.yaml"
XATTN = CONF / "tuning" / "train_speech_text_xattn_tiny.yaml"
TEXT_ONLY = CONF / "tuning" / "train_text_only_tiny.yaml"
NAMES = ("speech", "speech_ref1", "emotion", "text")


def _batch(model, data_dir, uids):
    """Noisy speech and padded token ids (-1, as the collate function pads)."""
    import soundfile

    pad = torch.nn.utils.rnn.pad_sequence
    wav, text = read_kaldi(data_dir / "wav.scp"), read_kaldi(data_dir / "text")
    wavs = [torch.tensor(soundfile.read(wav[u], dtype="float32")[0]) for u in uids]
    ids = [torch.as_tensor(model.text_frontend.tokenizer(text[u])) for u in uids]
    return dict(
        speech=pad(wavs, batch_first=True),
        speech_lengths=torch.tensor([len(w) for w in wavs]),
        text=pad(ids, batch_first=True, padding_value=-1),
        text_lengths=torch.tensor([len(i) for i in ids]),
    )


def test_text_is_a_data_name_copied_with_the_audio():
    from espnet2_merit.simulation.simulate import COPIED_FILES

    assert DATA_FILES["text"] == ("text", "text")
    assert "text" in KEYED_TEXT_FILES and "text" in COPIED_FILES


@pytest.mark.parametrize("config", [LATE, XATTN], ids=lambda p: p.stem)
def test_batch_equals_one_by_one_and_padding_tokens_are_never_read(
    config, make_args, data_dirs
):
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(config, names=NAMES)).eval()
    uids = sorted(read_kaldi(data_dirs[0] / "text"))[:3]
    batch = _batch(model, data_dirs[0], uids)
    assert len(set(batch["text_lengths"].tolist())) > 1  # really padded
    with torch.no_grad():
        probs = model.inference(**batch, tasks=["ser"])[2]["ser"]
        junk = dict(batch, text=batch["text"].masked_fill(batch["text"] < 0, 7))
        again = model.inference(**junk, tasks=["ser"])[2]["ser"]
        torch.testing.assert_close(again, probs)
        for b, u in enumerate(uids):
            one = model.inference(**_batch(model, data_dirs[0], [u]), tasks=["ser"])
            torch.testing.assert_close(one[2]["ser"][0], probs[b], atol=1e-5, rtol=0)
    # The text changes the prediction (it is not ignored).
    other = dict(
        batch, text=batch["text"].flip(0), text_lengths=batch["text_lengths"].flip(0)
    )
    with torch.no_grad():
        moved = model.inference(**other, tasks=["ser"])[2]["ser"]
    assert not torch.allclose(moved, probs)


def test_text_only_ignores_the_speech(make_args, data_dirs):
    torch.manual_seed(0)
    model = MeritTask.build_model(make_args(TEXT_ONLY, names=NAMES)).eval()
    batch = _batch(model, data_dirs[0], sorted(read_kaldi(data_dirs[0] / "text"))[:2])
    with torch.no_grad():
        probs = model.inference(**batch)[2]["ser"]
        noise = dict(batch, speech=torch.randn_like(batch["speech"]))
        torch.testing.assert_close(model.inference(**noise)[2]["ser"], probs)


def test_text_heads_and_frontends_come_together(make_args, tiny_roberta):
    args = make_args(SPARSE_TINY, "--text_frontend", "hf_text", "--text_frontend_conf",
                     f"model_name_or_path={tiny_roberta}")  # fmt: skip
    with pytest.raises(MeritInputError, match="no task reads text"):
        MeritTask.build_model(args)
    args = make_args(LATE, names=NAMES)
    args.text_frontend = None
    with pytest.raises(MeritInputError, match="reads the transcripts"):
        MeritTask.build_model(args)


def test_text_is_left_out_without_a_text_frontend(make_args):
    args = make_args(SPARSE_TINY, names=NAMES)
    drop_unread_text(args)
    assert "text" not in [n for _, n, _ in args.train_data_path_and_name_and_type]
    args = make_args(LATE, names=NAMES)
    drop_unread_text(args)
    assert "text" in [n for _, n, _ in args.valid_data_path_and_name_and_type]


def _train(train_cmd, tmp_path, data, *extra):
    from espnet2_merit.bin.merit_train import main as train_main

    train_main(train_cmd(TEXT_ONLY, "--ngpu", "0", *extra, names=NAMES, data=data))
    return tmp_path / "exp"


def test_missing_transcript_names_file_and_line(train_cmd, data_dirs, tmp_path):
    train, valid = data_dirs
    bad = tmp_path / "train"
    shutil.copytree(train, bad)
    lines = (bad / "text").read_text().splitlines()
    lines[2] = lines[2].split()[0]  # the id without its transcript
    (bad / "text").write_text("\n".join(lines) + "\n")
    # merit_train prints the MeritInputError's message as its error.
    with pytest.raises(SystemExit, match=rf"{bad / 'text'}:3: expected"):
        _train(train_cmd, tmp_path, (bad, valid))


def test_training_with_a_frozen_text_encoder(
    train_cmd, data_dirs, tmp_path, tiny_roberta
):
    """One epoch through ESPnet's trainer (text-only SER): the frozen RoBERTa
    stays as loaded, the head trains."""
    from transformers import AutoModel

    exp = _train(train_cmd, tmp_path, None, "--freeze_param", "text_frontend.model")
    state = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    loaded = AutoModel.from_pretrained(tiny_roberta, local_files_only=True)
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(state[f"text_frontend.model.{name}"], value)
    torch.manual_seed(0)
    fresh = MeritTask.build_model(
        MeritTask.get_parser().parse_args(train_cmd(TEXT_ONLY, names=NAMES))
    )
    head = {k: v for k, v in fresh.state_dict().items() if k.startswith("heads.")}
    assert any(not torch.equal(state[k], v) for k, v in head.items())
