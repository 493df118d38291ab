"""The study harness: train a zoo of models over a hyperparameter grid, measure every model, rank
the measures against the generalization gap, and write a report.

Command line: ``genlab study run CONFIG.toml --out DIR``, ``genlab study rank DIR``,
``genlab study report DIR``, ``genlab study export DIR``, and ``genlab rank TABLE`` for any
results table. Python: :func:`genlab.study.runner.run_study`,
:func:`genlab.study.ranking.rank_measures`, :func:`genlab.study.report.write_report`,
:func:`rank_table` and :func:`export_study`.

Pieces: ``config`` (TOML, validated), ``grid`` (runs), ``store`` (SQLite, resumable),
``worker`` (train and measure one model), ``executors`` (in process, process pool, Ray),
``runner`` (a whole study), ``ranking`` (statistics), ``report`` (tables and plots),
``tables`` (any results table: read, rank, export).
"""

from __future__ import annotations

from genlab.study.config import ConfigError, StudyConfig, load_config, parse_config
from genlab.study.tables import export_study, rank_table

__all__ = [
    "ConfigError",
    "StudyConfig",
    "export_study",
    "load_config",
    "parse_config",
    "rank_table",
]
