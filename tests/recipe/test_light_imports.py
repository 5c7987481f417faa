"""The recipe's bookkeeping commands import no torch (seconds and hundreds of MB
per process, paid once per set and per worker): stage 3's workers when no file
needs resampling, stage 5's label checks, stage 9's split and merge, and the
scoring of label and attribute tasks."""

import os
import subprocess
import sys

import pytest
from merit_testing import REPO

CHECKS = {
    "stage 3 worker": "import espnet2_merit.recipe.format_wav as m; m._worker_init()",
    "stage 5 labels": "import espnet2_merit.recipe.labels",
    "stage 9 split": "import espnet2_merit.recipe.split",
    "stage 9 merge": "import espnet2_merit.inference.merge",
    "stage 10 scoring": "import espnet2_merit.scoring.set_scoring",
}


@pytest.mark.parametrize("what", list(CHECKS))
def test_no_torch_import(what):
    code = f"import sys; {CHECKS[what]}; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"{what} imports torch"
