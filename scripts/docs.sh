#!/usr/bin/env bash
# Builds the documentation site (API reference from the docstrings, guide pages from docs/*.md)
# into docs/_build/html, with every Sphinx warning an error. Run it after `scripts/test.sh` (or in
# any environment with genlab installed with the `docs` and `torch` extras); CI runs it from there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ -z "${VIRTUAL_ENV:-}" ]; then
  ensure_venv
fi
python -c "import sphinx, numpydoc, pydata_sphinx_theme, myst_parser" 2>/dev/null || {
  echo "the docs need the 'docs' extra: pip install -e '.[docs,torch]' (or maturin develop --extras docs,torch)" >&2
  exit 1
}
rm -rf docs/_build/html
python -m sphinx -W --keep-going -q -b html docs docs/_build/html
echo "Documentation: docs/_build/html/index.html"
