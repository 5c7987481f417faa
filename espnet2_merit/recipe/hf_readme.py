"""Recipe stage 13: lay out a packed model for a Hugging Face model repository.

Unzips the packed model into ``--outdir`` (a clone of the repository, or an empty
directory for a dry run) and writes its ``README.md``: a model card with the
ESPnet tags, how to use the model, the experiment's ``RESULTS.md`` and the command
that trained it. Pushing is left to the stage script (git + git-lfs).
"""

import datetime
import os
import shutil
from pathlib import Path

import yaml

from espnet2_merit.errors import MeritInputError
from espnet2_merit.utils.archive import unpack_model

CARD = """---
tags:
- espnet
- audio
- speech-emotion-recognition
- speech-enhancement
- espnet2_merit
license: cc-by-4.0
---

# {repo}

A MERIT model (joint speech enhancement and speech emotion recognition,
`fusion: {fusion}`) trained with the espnet2_merit recipe on {date}
(`pip install espnet2_merit` to use it).

## Use it

```python
from espnet2_merit.inference.speech2emotion import Speech2EmotionEnhance

s2e = Speech2EmotionEnhance.from_pretrained("{repo}")
result = s2e(waveform, fs=16000)
print(result.label, result.probs)   # every task: result.tasks
```

or from the command line: `merit predict my.wav --model {repo}`.

Classes: {classes}.

## Results

{results}

## Training

```bash
{run_args}
```
"""


def write_repo(
    packed_model: Path, hf_repo: str, exp: Path, outdir: Path, run_args: str = ""
) -> Path:
    """Unpack the model into ``outdir`` and write the model card; returns the
    README path."""
    if not packed_model.is_file():
        raise MeritInputError(f"--packed_model: no such file {packed_model}")
    if hf_repo.count("/") != 1:
        raise MeritInputError(f"--hf_repo '{hf_repo}': expected 'owner/name'")
    files = unpack_model(packed_model)
    root = Path(files["train_config"]).parent
    outdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        root, outdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*")
    )
    meta = yaml.safe_load((outdir / "meta.yaml").read_text(encoding="utf-8"))
    config_path = outdir / meta["yaml_files"]["train_config"]
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    results = exp / "RESULTS.md"
    text = CARD.format(
        repo=hf_repo,
        fusion=config.get("fusion"),
        date=datetime.date.today().isoformat(),
        classes=", ".join(config.get("emotion_list") or []) or "(attributes)",
        results=(
            results.read_text(encoding="utf-8")
            if results.is_file()
            else "(no RESULTS.md: run stage 10 first)"
        ),
        run_args=run_args or "(not recorded)",
    )
    readme = outdir / "README.md"
    tmp = outdir / "README.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, readme)
    return readme
