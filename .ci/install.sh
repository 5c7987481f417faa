#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a uv virtual env in .venv with the pinned
# torch/torchaudio pair that works on Python 3.11, and this package in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
# espeak-ng and sox: the mini recipe's generated corpus and noise (their tests skip
# without them). Installed only when missing, and only where apt-get exists.
missing=""
for tool in espeak-ng sox; do
    command -v "${tool}" >/dev/null 2>&1 || missing="${missing} ${tool}"
done
if [ -n "${missing}" ] && command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    ${sudo} apt-get update -qq
    ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends ${missing} >/dev/null
fi
command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
[ -x .venv/bin/python ] || uv venv -q -p "${python}" .venv
# torchaudio 2.11 loads only with torch 2.11 (REFERENCE §4); espnet 202511 is the
# newest release for Python 3.11.
uv pip install -q -p .venv/bin/python \
    "torch==2.11.0" "torchaudio==2.11.0" -e ".[test]"
# Bytecode for every installed module: uv installs none, and with
# PYTHONDONTWRITEBYTECODE set (as on this machine kind) every process would compile
# torch, transformers and ESPnet again (~25 s of each recipe step's start-up).
# compileall skips what is current, so a re-run costs seconds.
.venv/bin/python -m compileall -q -j 0 .venv/lib/python3.11/site-packages \
    > /dev/null 2>&1 || true
echo "set-up done: $(.venv/bin/python -c 'import espnet, torch; print("espnet", espnet.__version__, "torch", torch.__version__)')"
