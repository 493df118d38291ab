# Shared by the scripts: where builds go and how the virtual environment is made.
# Cargo's target directory lives outside the checkout so that a fresh clone (CI) reuses the
# compiled dependencies of earlier runs when the machine has them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/genlab/target}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
}
