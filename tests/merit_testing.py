"""Constants and helpers shared by the tests (on the path via setup.cfg)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
TINY_CONFIGS = sorted((CONF / "tuning").glob("train_*_tiny.yaml"))
PAPER_CONFIGS = sorted(CONF.glob("*.yaml"))


def data_args(train: Path, valid: Path, names=("speech", "speech_ref1", "emotion")):
    """Command-line data options for MeritTask."""
    files = {
        "speech": ("wav.scp", "sound"),
        "speech_ref1": ("spk1.scp", "sound"),
        "emotion": ("emotion", "text"),
        "emotion_attr": ("emotion_attr", "text"),
    }
    cmd = []
    for split, d in (("train", train), ("valid", valid)):
        for name in names:
            fname, kind = files[name]
            cmd += [
                f"--{split}_data_path_and_name_and_type",
                f"{d}/{fname},{name},{kind}",
            ]
        cmd += [f"--{split}_shape_file", f"{d}/wav.scp"]
    return cmd
