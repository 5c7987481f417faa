# Environment of a MERIT recipe (sourced by merit.sh and local/*.sh): sets ${python},
# the interpreter that has espnet2_merit installed. Order: $MERIT_PYTHON, then the
# repository's .venv (made by `bash .ci/install.sh`), then python3 on PATH.
_merit_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [ -n "${MERIT_PYTHON:-}" ]; then
    python=${MERIT_PYTHON}
elif [ -x "${_merit_root}/.venv/bin/python" ]; then
    python=${_merit_root}/.venv/bin/python
else
    python=python3
fi
if ! "${python}" -c "import espnet2_merit" 2> /dev/null; then
    echo "path.sh: ${python} cannot import espnet2_merit: run 'pip install -e ${_merit_root}'" \
        "(or bash ${_merit_root}/.ci/install.sh), or set MERIT_PYTHON" >&2
    exit 1
fi
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
# Offline by default: SSL upstreams load from local files (frontend_conf.path_or_url).
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
unset _merit_root
