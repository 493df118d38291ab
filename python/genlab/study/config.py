"""Study configuration: a TOML file validated into a frozen :class:`StudyConfig`.

A config has these tables (all optional except where noted)::

    [study]     name, seeds (list of ints, required), device ("cpu", "cuda", "auto"),
                executor ("local" | "ray"), jobs, stack (models trained as one computation, 1: one by one)
    [data]      dataset options: name ("digits"), root, train_size, label_noise, download
    [model]     fixed model options: family ("crate", "crate-t", ..., "mlp", "cnn") and the
                family's keyword options (dim, depth, heads, ...)
    [train]     fixed training options (the fields of genlab.torch.train.TrainConfig)
    [grid]      axes: option name -> list of values; any [data], [model] or [train] option
    [measures]  names (list, or "all"), plugins (list of modules that register measures), srr (bool: store per-layer SRR curves of CRATE models,
                under both presets of genlab.torch.srr.SRR_PRESETS), srr_preset ("crate" or
                "output": the SRR family's four srr_* settings at once; keys given beside it
                win), and the fields of genlab.torch.measures.MeasureSettings (draws,
                search_depth, flatness_samples, srr_samples, srr_eps, gradient_noise_batch_size, ...)
    [ranking]   exclude_nonconverged (bool), gap ("loss" | "error"), tau ("a" | "b"),
                replicates ("pairs" | "average"), cmi ("genlab" | "pgdl"), min_ess (number),
                bootstrap (int), top (int), seed (int), select_top (fraction in (0, 1]: the
                top-k of the selection hit rate, as a share of the models of a seed)

Errors name the table, the key and the line: ``config.toml:12: [grid] lr: the axis is empty``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "MeasuresConfig",
    "RankingConfig",
    "StudyConfig",
    "load_config",
    "parse_config",
]

Scalar = str | int | float | bool


class ConfigError(ValueError):
    """An invalid study configuration; the message names the key and its line."""


# Options each table accepts, with the accepted Python types. Model and training options are
# completed from the PyTorch layer's own signatures (see `_option_schema`), so that this file
# never drifts from what `build_model` and `TrainConfig` accept.
_STUDY_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "description": (str,),
    "seeds": (list,),
    "device": (str,),
    "executor": (str,),
    "jobs": (int,),
    "stack": (int,),
}
_DATA_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "root": (str,),
    "train_size": (int,),
    "label_noise": (float, int),
    "download": (bool,),
    "seed": (int,),
}
_MEASURES_KEYS: dict[str, tuple[type, ...]] = {
    "names": (list, str),
    "plugins": (list,),
    "srr": (bool,),
    "srr_preset": (str,),
}
# The MeasureSettings fields a [measures] srr_preset sets.
_SRR_PRESET_KEYS = (
    "srr_convention",
    "srr_eps",
    "srr_normalize_tokens",
    "srr_sparsity_normalization",
)
_RANKING_KEYS: dict[str, tuple[type, ...]] = {
    "exclude_nonconverged": (bool,),
    "gap": (str,),
    "tau": (str,),
    "replicates": (str,),
    "cmi": (str,),
    "min_ess": (float, int),
    "bootstrap": (int,),
    "top": (int,),
    "seed": (int,),
    "select_top": (float, int),
}
# The accepted values of the ranking's string options.
_RANKING_CHOICES: dict[str, tuple[str, ...]] = {
    "gap": ("loss", "error"),
    "tau": ("a", "b"),
    "replicates": ("pairs", "average"),
    "cmi": ("genlab", "pgdl"),
}
_TABLES = ("study", "data", "model", "train", "grid", "measures", "ranking")


@dataclasses.dataclass(frozen=True)
class MeasuresConfig:
    """Which complexity measures to compute, and how.

    ``settings`` are keyword arguments of ``genlab.torch.measures.MeasureSettings``; ``srr`` also
    stores each CRATE model's per-layer SRR curves for the report; ``plugins`` are modules that
    register measures (``genlab.torch.measures.register_measure``), imported wherever models are
    measured.
    """

    names: tuple[str, ...] | None = None  # None: every measure the registry has
    srr: bool = True
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    plugins: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RankingConfig:
    """How measures are ranked against the generalization gap.

    Attributes
    ----------
    exclude_nonconverged : bool
        Leave out runs that did not reach the training cross-entropy target.
    gap : {"loss", "error"}
        Test minus train cross-entropy, or test minus train 0-1 error.
    tau : {"a", "b"}
        The tau variant of the whole table (overall tau and psi); tau-a is Jiang et al.'s.
    replicates : {"pairs", "average"}
        Seeds of one configuration: never paired with each other, or averaged first.
    cmi : {"genlab", "pgdl"}
        The conditional-MI rule (:func:`genlab.rank.conditional_mutual_information`).
    min_ess : float
        Smallest effective sample size of a sign-error environment (12, Dziugaite et al.'s).
    bootstrap : int
        Resamples of configurations for the interval of tau (0: none).
    top : int
        Measures with scatter plots in the report.
    seed : int
        Seed of the bootstrap.
    select_top : float
        The "top-k" of the selection hit rate, as a fraction of the models a selection chooses
        from (0.1: the chosen model is a hit if its gap is among the smallest 10%, at least one).
    """

    exclude_nonconverged: bool = True
    gap: str = "loss"
    tau: str = "a"
    replicates: str = "pairs"
    cmi: str = "genlab"
    min_ess: float = 12.0
    bootstrap: int = 1000
    top: int = 4
    seed: int = 0
    select_top: float = 0.1


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A validated study configuration."""

    name: str
    seeds: tuple[int, ...]
    data: Mapping[str, Any]
    model: Mapping[str, Any]
    train: Mapping[str, Any]
    grid: Mapping[str, tuple[Scalar, ...]]
    measures: MeasuresConfig
    ranking: RankingConfig
    device: str = "cpu"
    executor: str = "local"
    jobs: int = 1
    stack: int = 1
    description: str = ""
    source: str = ""
    path: str = "<config>"

    def error(self, table: str, key: str, message: str) -> ConfigError:
        """A :class:`ConfigError` about ``[table] key``, at its line of the source file."""
        return _fail(_Lines(self.source, self.path), table, key, message)

    def axis_table(self, axis: str) -> str:
        """The table ("data", "model" or "train") an axis belongs to."""
        schema = _option_schema()
        for table in ("data", "model", "train"):
            if axis in schema[table]:
                return table
        raise KeyError(axis)

    def content_hash(self) -> str:
        """Hash of everything that determines the results (not how or where they run)."""
        measures = dataclasses.asdict(self.measures)
        if not self.measures.plugins:
            del measures["plugins"]  # stores written before plugins existed keep their hash
        payload = {
            "seeds": list(self.seeds),
            "data": dict(self.data),
            "model": dict(self.model),
            "train": dict(self.train),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "measures": measures,
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_json(self) -> str:
        """The configuration as JSON (stored with the results)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        d.pop("path")
        return json.dumps(d, sort_keys=True, default=str)


def _option_schema() -> dict[str, dict[str, tuple[type, ...]]]:
    """Accepted options of the data, model and train tables, from the PyTorch layer."""
    from genlab.torch.models import MODEL_FAMILIES, model_options
    from genlab.torch.train import TrainConfig

    train: dict[str, tuple[type, ...]] = {}
    for f in dataclasses.fields(TrainConfig):
        train[f.name] = _types_of(f.default)
    model: dict[str, tuple[type, ...]] = {"family": (str,)}
    for family in MODEL_FAMILIES:
        for name, default in model_options(family).items():
            model.setdefault(name, _types_of(default))
    return {"data": dict(_DATA_KEYS), "model": model, "train": train}


def _check_families(
    model: Mapping[str, Any], grid: Mapping[str, tuple[Scalar, ...]], lines: _Lines
) -> None:
    """Every model option must be one the family (or each family on the grid) accepts."""
    from genlab.torch.models import MODEL_FAMILIES, model_options

    families = grid.get("family", (model.get("family", "crate"),))
    for family in families:
        if family not in MODEL_FAMILIES:
            table, key = ("grid", "family") if "family" in grid else ("model", "family")
            raise _fail(
                lines,
                table,
                key,
                f"unknown family {family!r}; expected one of {', '.join(MODEL_FAMILIES)}",
            )
        accepted = model_options(str(family))
        for table, options in (("model", model), ("grid", grid)):
            for key in options:
                if key == "family" or (table == "grid" and key not in _model_keys()):
                    continue
                if key not in accepted:
                    raise _fail(
                        lines,
                        table,
                        key,
                        f"not an option of model family {family!r}; it takes: {', '.join(accepted)}",
                    )


def _model_keys() -> set[str]:
    return set(_option_schema()["model"])


def _types_of(example: Any) -> tuple[type, ...]:
    if isinstance(example, bool):
        return (bool,)
    if isinstance(example, float):
        return (float, int)
    if isinstance(example, int):
        return (int,)
    if isinstance(example, str):
        return (str,)
    # None default: any scalar.
    return (str, int, float, bool)


class _Lines:
    """Finds the line of a key in the TOML source, for error messages."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.index: dict[tuple[str, str], int] = {}
        self.tables: dict[str, int] = {}
        table = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            header = re.match(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
            if header:
                table = header.group(1)
                self.tables.setdefault(table, number)
                continue
            key = re.match(r"^([A-Za-z0-9_-]+)\s*=", line)
            if key:
                self.index.setdefault((table, key.group(1)), number)

    def where(self, table: str, key: str | None = None) -> str:
        number = self.index.get((table, key)) if key else None
        if number is None:
            number = self.tables.get(table)
        return f"{self.path}:{number}" if number else self.path


def _fail(lines: _Lines, table: str, key: str | None, message: str) -> ConfigError:
    label = f"[{table}] {key}" if key else f"[{table}]"
    return ConfigError(f"{lines.where(table, key)}: {label}: {message}")


def _check_table(
    values: Mapping[str, Any],
    schema: Mapping[str, tuple[type, ...]],
    table: str,
    lines: _Lines,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise _fail(lines, table, key, f"unknown key; expected one of: {known}")
        out[key] = _check_type(value, schema[key], table, key, lines)
    return out


def _check_type(value: Any, types: tuple[type, ...], table: str, key: str, lines: _Lines) -> Any:
    ok = False if isinstance(value, bool) and bool not in types else isinstance(value, types)
    if not ok:
        expected = " or ".join(t.__name__ for t in types)
        raise _fail(lines, table, key, f"expected {expected}, got {type(value).__name__} {value!r}")
    return float(value) if float in types and isinstance(value, int) and int not in types else value


def _read_tables(text: str, lines: _Lines) -> dict[str, Any]:
    """The TOML document as tables, each a known table name holding a table."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{lines.path}: not valid TOML: {exc}") from exc
    for table, value in raw.items():
        if table not in _TABLES:
            raise ConfigError(
                f"{lines.where(table)}: [{table}]: unknown table; expected one of: {', '.join(_TABLES)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{lines.where('', table)}: {table}: expected a table [{table}]")
    return raw


def _parse_study(raw: Mapping[str, Any], lines: _Lines) -> dict[str, Any]:
    """[study]: seeds (required, distinct integers), executor, jobs, device, name, description."""
    study = _check_table(raw, _STUDY_KEYS, "study", lines)
    if "seeds" not in study:
        raise _fail(
            lines, "study", "seeds", "required: a list of integer seeds, e.g. seeds = [0, 1]"
        )
    seeds = study["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise _fail(
            lines, "study", "seeds", f"expected a non-empty list of integers, got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise _fail(lines, "study", "seeds", f"seeds repeat: {seeds!r}")
    if min(seeds) < 0:
        raise _fail(lines, "study", "seeds", f"expected seeds >= 0, got {seeds!r}")
    executor = study.setdefault("executor", "local")
    if executor not in ("local", "ray"):
        raise _fail(lines, "study", "executor", f'expected "local" or "ray", got {executor!r}')
    jobs = study.setdefault("jobs", 1)
    if jobs < 1:
        raise _fail(lines, "study", "jobs", f"expected a positive integer, got {jobs}")
    stack = study.setdefault("stack", 1)
    if stack < 1:
        raise _fail(
            lines, "study", "stack", f"expected a positive number of models per stack, got {stack}"
        )
    device = study.setdefault("device", "cpu")
    if device not in ("cpu", "cuda", "auto"):
        raise _fail(lines, "study", "device", f'expected "cpu", "cuda" or "auto", got {device!r}')
    return study


def _parse_grid(
    raw: Mapping[str, Any],
    schema: Mapping[str, Mapping[str, tuple[type, ...]]],
    fixed: Mapping[str, Any],
    lines: _Lines,
) -> dict[str, tuple[Scalar, ...]]:
    """[grid]: each axis a [data], [model] or [train] option with distinct values of its type,
    not also set as a fixed option."""
    grid: dict[str, tuple[Scalar, ...]] = {}
    for axis, values in raw.items():
        tables = [t for t in ("data", "model", "train") if axis in schema[t]]
        if not tables or axis in ("seed", "device"):
            options = sorted(set(schema["data"]) | set(schema["model"]) | set(schema["train"]))
            raise _fail(
                lines,
                "grid",
                axis,
                f"unknown axis; an axis is a [data], [model] or [train] option: {', '.join(options)}"
                " (seeds go in [study] seeds)",
            )
        if not isinstance(values, list):
            raise _fail(lines, "grid", axis, f"expected a list of values, got {values!r}")
        if not values:
            raise _fail(lines, "grid", axis, "the axis is empty; give at least one value")
        checked = tuple(
            _check_type(v, schema[tables[0]][axis], "grid", axis, lines) for v in values
        )
        if len(set(checked)) != len(checked):
            raise _fail(lines, "grid", axis, f"values repeat: {values!r}")
        if axis in fixed:
            raise _fail(lines, "grid", axis, f"also set as a fixed option in [{tables[0]}]")
        grid[axis] = checked
    return grid


def _grid_points(
    fixed: Mapping[str, Any], grid: Mapping[str, tuple[Scalar, ...]], keys: Iterable[str]
) -> Iterator[tuple[dict[str, Any], dict[str, Scalar]]]:
    """Every distinct set of options of one table: its fixed options with each combination of the
    grid axes that belong to it (the other axes do not change these options)."""
    axes = [axis for axis in grid if axis in set(keys)]
    for point in itertools.product(*(grid[axis] for axis in axes)):
        combination = dict(zip(axes, point, strict=True))
        yield {**fixed, **combination}, combination


def _option_error(
    exc: Exception,
    lines: _Lines,
    table: str,
    fixed: Mapping[str, Any],
    combination: Mapping[str, Scalar],
    context: str = "",
) -> ConfigError:
    """``exc`` (raised by the PyTorch layer, its message starting with the option it is about) as
    a ConfigError at the line of that option: the grid axis when the value came from the grid, the
    fixed option otherwise, and the grid point when the error depends on one."""
    key, _, reason = str(exc).partition(": ")
    if key in fixed:
        # A fixed value: the message says what is wrong with it (and names the data set when
        # that matters).
        return _fail(lines, table, key, reason)
    if key in combination:
        where: tuple[str, str | None] = ("grid", key)
    else:  # about several options at once (e.g. dim and heads): the whole message
        where, reason = (table, None), str(exc)
    point = ", ".join(f"{k} = {v!r}" for k, v in combination.items() if k != key)
    details = "; ".join(d for d in (f"at the grid point {point}" if point else "", context) if d)
    return _fail(lines, *where, f"{reason} ({details})" if details else reason)


def _check_runs(
    data: Mapping[str, Any],
    model: Mapping[str, Any],
    train: Mapping[str, Any],
    grid: Mapping[str, tuple[Scalar, ...]],
    seed: int,
    lines: _Lines,
) -> None:
    """Check every value of every run before anything trains: the data set options of each grid
    point (without loading the data), each model (built on PyTorch's "meta" device, which
    allocates nothing) for each data set's input shape, and the training options. A bad value
    then fails here, with its line, instead of in the first model's worker after the study
    directory was created."""
    import torch

    from genlab.torch.data import dataset_info
    from genlab.torch.models import build_model
    from genlab.torch.train import TrainConfig

    schema = _option_schema()
    datasets = {}
    for options, combination in _grid_points(data, grid, schema["data"]):
        try:
            info = dataset_info(**options)
        except (TypeError, ValueError) as exc:
            raise _option_error(exc, lines, "data", data, combination) from None
        datasets[info.input_shape, info.num_classes] = info
    for options, combination in _grid_points(model, grid, schema["model"]):
        family = str(options.pop("family", "crate"))
        for info in datasets.values():
            try:
                with torch.device("meta"):
                    build_model(
                        family,
                        num_classes=info.num_classes,
                        input_shape=info.input_shape,
                        seed=0,
                        **options,
                    )
            except (TypeError, ValueError) as exc:
                context = f"data set {info.name!r}" if len(datasets) > 1 else ""
                raise _option_error(exc, lines, "model", model, combination, context) from None
    for options, combination in _grid_points(train, grid, schema["train"]):
        try:
            TrainConfig(**options, seed=seed)
        except (TypeError, ValueError) as exc:
            raise _option_error(exc, lines, "train", train, combination) from None


def _measure_names(names: Any, lines: _Lines) -> tuple[str, ...] | None:
    """[measures] names: "all" (None) or a list of registered names."""
    if isinstance(names, str):
        if names != "all":
            raise _fail(
                lines, "measures", "names", f'expected "all" or a list of names, got {names!r}'
            )
        return None
    from genlab.torch.measures import MEASURES

    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise _fail(
            lines,
            "measures",
            "names",
            f"unknown measure(s) {unknown}; known: {', '.join(sorted(MEASURES))}",
        )
    return tuple(names)


def _load_plugins(modules: list[Any], lines: _Lines) -> tuple[str, ...]:
    """[measures] plugins: import each module (so that the measures it registers can be named
    and ranked here); a module that cannot be imported is an error at its line."""
    from genlab.torch.measures import load_plugins

    if not all(isinstance(m, str) and m for m in modules):
        raise _fail(
            lines, "measures", "plugins", f"expected a list of module names, got {modules!r}"
        )
    try:
        load_plugins(modules)
    except ImportError as exc:
        raise _fail(lines, "measures", "plugins", str(exc)) from None
    return tuple(modules)


def _parse_measures(raw: Mapping[str, Any], lines: _Lines) -> MeasuresConfig:
    """[measures]: names, srr, srr_preset and the MeasureSettings fields, checked by building the
    settings (so a bad value fails here, with its line, not after a model has trained)."""
    from genlab.torch.measures import MeasureSettings

    measure_keys = dict(_MEASURES_KEYS)
    for f in dataclasses.fields(MeasureSettings):
        measure_keys[f.name] = _types_of(f.default)
    measures_raw = _check_table(raw, measure_keys, "measures", lines)
    settings = {k: v for k, v in measures_raw.items() if k not in _MEASURES_KEYS}
    try:
        measure_settings = MeasureSettings(**settings)
        if "srr_preset" in measures_raw:
            preset = measure_settings.with_srr_preset(measures_raw["srr_preset"])
            # Keys written beside the preset win over it.
            measure_settings = dataclasses.replace(preset, **settings)
    except (TypeError, ValueError) as exc:
        # The settings' messages start with the key they are about.
        key, _, reason = str(exc).partition(": ")
        if key in measure_keys:
            raise _fail(lines, "measures", key, reason) from None
        raise _fail(lines, "measures", None, str(exc)) from None
    preset_keys = _SRR_PRESET_KEYS if "srr_preset" in measures_raw else ()
    plugins = _load_plugins(measures_raw.get("plugins", []), lines)
    return MeasuresConfig(
        plugins=plugins,
        names=_measure_names(measures_raw.get("names", "all"), lines),
        srr=measures_raw.get("srr", True),
        settings={
            f.name: getattr(measure_settings, f.name)
            for f in dataclasses.fields(measure_settings)
            if f.name in settings or f.name in preset_keys
        },
    )


def _parse_ranking(raw: Mapping[str, Any], lines: _Lines) -> RankingConfig:
    """[ranking]: the options of RankingConfig, each checked against its accepted values."""
    ranking_raw = _check_table(raw, _RANKING_KEYS, "ranking", lines)
    for key, choices in _RANKING_CHOICES.items():
        if key in ranking_raw and ranking_raw[key] not in choices:
            accepted = " or ".join(f'"{c}"' for c in choices)
            raise _fail(lines, "ranking", key, f"expected {accepted}, got {ranking_raw[key]!r}")
    if ranking_raw.get("bootstrap", 1000) < 0:
        raise _fail(lines, "ranking", "bootstrap", "expected a non-negative number of resamples")
    min_ess = ranking_raw.get("min_ess", 12.0)
    if not (min_ess >= 0 and math.isfinite(min_ess)):
        raise _fail(lines, "ranking", "min_ess", f"expected a finite number >= 0, got {min_ess!r}")
    select_top = ranking_raw.get("select_top", 0.1)
    if not 0 < select_top <= 1:
        raise _fail(
            lines, "ranking", "select_top", f"expected a fraction in (0, 1], got {select_top!r}"
        )
    return RankingConfig(**ranking_raw)


def parse_config(text: str, *, path: str = "<config>", check_runs: bool = True) -> StudyConfig:
    """Validate a study configuration given as TOML text.

    ``check_runs`` also checks every run's data, model and training options (each model built on
    PyTorch's "meta" device); readers of a stored study, which train nothing, skip it.

    Raises
    ------
    ConfigError
        With the file, line, table and key of the first problem found.
    """
    lines = _Lines(text, path)
    raw = _read_tables(text, lines)
    schema = _option_schema()
    study = _parse_study(raw.get("study", {}), lines)
    data = _check_table(raw.get("data", {}), schema["data"], "data", lines)
    model = _check_table(raw.get("model", {}), schema["model"], "model", lines)
    train = _check_table(raw.get("train", {}), schema["train"], "train", lines)
    for key in ("seed", "device"):
        if key in train:
            where = "[study] seeds" if key == "seed" else "[study] device"
            raise _fail(lines, "train", key, f"set by the study harness; use {where}")
    grid = _parse_grid(raw.get("grid", {}), schema, {**data, **model, **train}, lines)
    _check_families(model, grid, lines)
    if check_runs:
        _check_runs(data, model, train, grid, min(study["seeds"]), lines)
    return StudyConfig(
        name=study.get("name", Path(path).stem),
        seeds=tuple(study["seeds"]),
        data=data,
        model=model,
        train=train,
        grid=grid,
        measures=_parse_measures(raw.get("measures", {}), lines),
        ranking=_parse_ranking(raw.get("ranking", {}), lines),
        device=study["device"],
        executor=study["executor"],
        jobs=study["jobs"],
        stack=study["stack"],
        description=study.get("description", ""),
        source=text,
        path=path,
    )


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the configuration: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); TOML files are UTF-8"
        ) from None
    return parse_config(text, path=str(p))
