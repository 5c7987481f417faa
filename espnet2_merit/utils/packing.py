"""Pack a trained MERIT model into an ESPnet model-zoo zip.

The zip holds ``meta.yaml`` (keys ``train_config`` and ``model_file``: the
arguments of ``Speech2EmotionEnhance``), the config, the weights, and every local
file or folder the config needs to rebuild the model (normalisation statistics, a
local SSL checkpoint, a local ``transformers`` text encoder folder), so
``Speech2EmotionEnhance.from_pretrained("model.zip")`` works on another machine,
offline. A hub name (``roberta-large``) is kept as it is.

    python -m espnet2_merit.bin.merit_pack --train_config exp/x/config.yaml \
        --model_file exp/x/valid.ser_f1_macro.best.pth --outpath exp/x/packed/model.zip
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import yaml
from espnet2.main_funcs.pack_funcs import pack

from espnet2_merit.errors import MeritInputError

# Config entries that name files (or folders) the model is built from: recorded
# as absolute paths by training, resolved against the config's directory when
# loading (a packed model), copied into the zip here.
FILE_ENTRIES = (
    ("normalize_conf", "stats_file"),
    ("frontend_conf", "path_or_url"),
    ("text_frontend_conf", "model_name_or_path"),
)
# Sections of FILE_ENTRIES whose value may be a hub name instead (``owner/name``,
# which looks like a relative path): kept as they are when no such file exists.
HUB_SECTIONS = ("text_frontend_conf",)


def pack_model(
    train_config: str, model_file: str, outpath: str, option: Optional[List[str]] = None
) -> Path:
    """Write the zip; returns its path. Files are staged under short relative
    names so the archive never holds absolute paths of this machine."""
    for what, path in (("train_config", train_config), ("model_file", model_file)):
        if not Path(path).is_file():
            raise MeritInputError(f"--{what}: no such file {path}")
    with open(train_config, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    outpath = Path(outpath).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        extra: Dict[str, str] = {}
        for section, key in FILE_ENTRIES:
            value = (conf.get(section) or {}).get(key)
            if not isinstance(value, str) or not Path(value).exists():
                continue  # e.g. a hub upstream name: nothing to ship
            name = f"data/{section}/{Path(value).resolve().name}"
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            if Path(value).is_dir():  # a save_pretrained folder: all its files
                shutil.copytree(value, stage / name)
            else:
                shutil.copy(value, stage / name)
            conf[section][key] = name
            extra[section] = name
        with open(stage / "config.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(conf, f, allow_unicode=True)
        shutil.copy(model_file, stage / "model.pth")
        options = []
        for i, path in enumerate(option or []):
            if not Path(path).is_file():
                raise MeritInputError(f"--option: no such file {path}")
            name = f"extra/{Path(path).name}"
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, stage / name)
            options.append(name)
        cwd = os.getcwd()
        os.chdir(stage)  # pack() stores paths relative to the working directory
        try:
            pack(
                files={"model_file": "model.pth"},
                yaml_files={"train_config": "config.yaml"},
                option=[*extra.values(), *options],
                outpath=str(outpath),
            )
        finally:
            os.chdir(cwd)
    return outpath
