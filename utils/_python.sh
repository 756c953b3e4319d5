# Sourced by utils/* wrappers: sets $python to the interpreter that has audiorl installed.
# Order: $AUDIORL_PYTHON, the project venv (tools/venv), then python3 on PATH.
__root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
if [ -n "${AUDIORL_PYTHON:-}" ]; then
    python=$AUDIORL_PYTHON
elif [ -x "$__root/tools/venv/bin/python" ]; then
    python=$__root/tools/venv/bin/python
else
    python=python3
fi
unset __root
