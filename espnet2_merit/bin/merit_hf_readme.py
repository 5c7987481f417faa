#!/usr/bin/env python3
"""Recipe stage 13: lay out a packed model for a Hugging Face model repository.

Unzips the packed model into ``--outdir`` (a clone of the repository, or an empty
directory for a dry run) and writes its ``README.md``: a model card with the
ESPnet tags, how to use the model, the experiment's ``RESULTS.md`` and the command
that trained it. Pushing is left to the stage script (git + git-lfs).
"""

import argparse
import datetime
import os
import sys
import zipfile
from pathlib import Path

import yaml

from espnet2_merit.errors import MeritInputError

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
from espnet2_merit.bin.merit_inference import Speech2EmotionEnhance

s2e = Speech2EmotionEnhance.from_pretrained("{repo}")
result = s2e(waveform, fs=16000)
print(result.label, result.probs)
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


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packed_model", type=Path, required=True)
    parser.add_argument("--hf_repo", required=True, help="owner/name")
    parser.add_argument("--exp", type=Path, required=True, help="Experiment dir")
    parser.add_argument("--run_args", default="", help="The recipe command")
    parser.add_argument("--outdir", type=Path, required=True)
    return parser


def write_repo(args: argparse.Namespace) -> Path:
    """Unzip the model and write the model card; returns the README path."""
    if not args.packed_model.is_file():
        raise MeritInputError(f"--packed_model: no such file {args.packed_model}")
    if args.hf_repo.count("/") != 1:
        raise MeritInputError(f"--hf_repo '{args.hf_repo}': expected 'owner/name'")
    with zipfile.ZipFile(args.packed_model) as z:
        z.extractall(args.outdir)
        meta = yaml.safe_load(z.read("meta.yaml"))
    config_path = args.outdir / meta["yaml_files"]["train_config"]
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    results = args.exp / "RESULTS.md"
    text = CARD.format(
        repo=args.hf_repo,
        fusion=config.get("fusion"),
        date=datetime.date.today().isoformat(),
        classes=", ".join(config.get("emotion_list") or []) or "(attributes)",
        results=(
            results.read_text(encoding="utf-8")
            if results.is_file()
            else "(no RESULTS.md: run stage 10 first)"
        ),
        run_args=args.run_args or "(not recorded)",
    )
    readme = args.outdir / "README.md"
    tmp = args.outdir / "README.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, readme)
    return readme


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    try:
        print(f"wrote {write_repo(args)}")
    except MeritInputError as e:
        sys.exit(f"merit_hf_readme: error: {e}")


if __name__ == "__main__":
    main()
