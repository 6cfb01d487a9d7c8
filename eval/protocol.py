"""A scoring protocol: YAML data loaded into one frozen dataclass (the only definition of one).

A protocol pins everything that changes a number: which pyiqa metrics with which
options, colour handling, border crop, what to do when prediction and ground truth
differ in size, how scores are aggregated, the pyiqa versions it was defined for and
the weight files each metric needs. Shipped protocols live in ``eval/protocols``;
a user passes a path to their own. ``include:`` inherits from another file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from .metric_facts import DIRECTIONS, Directed
from .protocol_file import ProtocolError, read_merged

PROTOCOL_DIR = os.path.join(os.path.dirname(__file__), "protocols")
DEFAULT_PROTOCOL = "ggt"
SIZE_POLICIES = ("crop", "resize", "error")
WEIGHT_STORES = ("pyiqa", "torchvision", "clip", "timm")
# Derived scores: name -> (function, fewest arguments); abs takes exactly one.
_DERIVED_FUNCS: dict[str, tuple[Callable[..., float], int]] = {"max": (max, 2), "min": (min, 2), "abs": (abs, 1)}
_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: math.pow}    # math.pow: floats, never complex
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_EXPONENT = 16
# The smallest side, in px, a pyiqa metric can score, where it has one (pyiqa 0.1.16, measured on
# random images): ssim's 11x11 window has no padding, lpips' AlexNet pools to nothing below 31
# and niqe needs one 96x96 block. Below that they raise mid-batch, which ended the whole run.
# psnr, dists and musiq score 1 px; maniqa upscales what is smaller than its 224 px crop;
# clipiqa and topiq_nr were not measured (building them needs their weights).
MIN_SIDE = {"ssim": 11, "lpips": 31, "niqe": 96}
# pyiqa metrics whose backbone asserts that height and width are multiples of a number: AFINE's
# CLIP ViT-B/32 (archs/afine_arch.py). A protocol must crop to it (crop_to_multiple), as HarnessIR
# does, top-left, so that every method's outputs are cut alike and nothing is resampled.
MULTIPLE_OF = {"afine_nr": 32}
MAX_DERIVED_CHARS = 500


@dataclass(frozen=True)
class WeightFile:
    store: str                      # where pyiqa's own code looks for it (see weights.py)
    file: str
    sha256: str | None = None       # the full hash, where the publisher gives one
    sha256_prefix: str | None = None  # the hash prefix torchvision-style file names carry


@dataclass(frozen=True)
class MetricSpec(Directed):
    name: str                       # the column name in every report
    pyiqa: str                      # pyiqa's metric name
    kind: str                       # FR (needs ground truth), NR, or SET (one score for the set: FID)
    better: str                     # higher, lower or unknown (metric_facts.DIRECTIONS)
    options: tuple[tuple[str, Any], ...] = ()
    dtype: str = "float32"
    note: str = ""
    weights: tuple[WeightFile, ...] = ()
    optional: bool = False          # run only when asked for (--fid, or named in --metrics)
    # How far a re-scored mean may be from a claimed one (ggt leaderboard verify); 0: bit-identical.
    tolerance: float = 0.0
    crop_to_multiple: int = 1       # the metric sees the top-left crop to multiples of this (AFINE: 32)

    def min_side(self) -> int:
        """The smallest side, in px, this metric can score (before any border crop)."""
        return max(MIN_SIDE.get(self.pyiqa, 1), self.crop_to_multiple)

    def pyiqa_options(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class SizePolicy:
    policy: str = "crop"
    max_diff: int | None = 32
    anchor: str | None = "top-left"


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    description: str
    pyiqa: str
    conversion: str
    crop_border: int
    size: SizePolicy
    aggregation: str
    reference_scores: bool
    metrics: tuple[MetricSpec, ...]          # the ones that run
    derived: tuple[tuple[str, str], ...] = ()
    optional: tuple[MetricSpec, ...] = ()    # declared, run only when asked for
    source: str = ""                # the file it came from
    restricted_to: tuple[str, ...] | None = None  # set by subset(): the report says so
    differences: tuple[str, ...] = ()   # metadata.differences: where it departs from its source's way
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = self.source or self.name
        if self.conversion != "rgb-float":
            raise ProtocolError(f"{where}: inputs.conversion must be 'rgb-float', got {self.conversion!r}")
        if self.size.policy not in SIZE_POLICIES:
            raise ProtocolError(f"{where}: size_mismatch.policy must be one of {SIZE_POLICIES}, "
                                f"got {self.size.policy!r}")
        limit = self.size.max_diff
        if self.size.policy == "crop" and (type(limit) is not int or limit < 0):
            raise ProtocolError(f"{where}: size_mismatch.max_diff must be a whole number of pixels, 0 or more, "
                                f"with policy 'crop'; got {limit!r}")
        if self.aggregation != "mean":
            raise ProtocolError(f"{where}: aggregation must be 'mean', got {self.aggregation!r}")
        if self.crop_border < 0:
            raise ProtocolError(f"{where}: crop_border must be >= 0, got {self.crop_border}")
        if not self.metrics:
            raise ProtocolError(f"{where}: no metrics")
        names = [m.name for m in self.metrics]
        unranked = {m.name for m in self.metrics + self.optional if not m.ranked}
        for dname, expr in self.derived:
            used = _expr_names(expr, where)
            unknown = sorted(used - set(names))
            if unknown and self.restricted_to is None:
                raise ProtocolError(f"{where}: derived {dname!r} uses unknown metrics {unknown}")
            if used & unranked:
                raise ProtocolError(f"{where}: derived {dname!r} uses {sorted(used & unranked)}, whose "
                                    "direction is unknown; such a metric never enters a derived score")

    def metric(self, name: str) -> MetricSpec:
        for m in self.metrics + self.optional:
            if m.name == name:
                return m
        raise ProtocolError(f"protocol {self.name!r} has no metric {name!r}; "
                            f"it has {', '.join(m.name for m in self.metrics + self.optional)}")

    def with_optional(self, names: list[str]) -> Protocol:
        """Add optional metrics (``--fid``) to the ones that run; not a restriction."""
        from dataclasses import replace

        extra = tuple(self.metric(n) for n in names if n not in {m.name for m in self.metrics})
        return replace(self, metrics=self.metrics + extra)

    def subset(self, names: list[str]) -> Protocol:
        """The same protocol restricted to ``names`` (``--metrics``); reports say so."""
        picked = tuple(self.metric(n) for n in dict.fromkeys(names))
        from dataclasses import replace

        return replace(self, metrics=picked, restricted_to=tuple(m.name for m in picked))

    def usable_derived(self) -> list[tuple[str, str]]:
        """Derived scores whose inputs are all among the metrics being run."""
        have = {m.name for m in self.metrics}
        return [(n, e) for n, e in self.derived if _expr_names(e, n) <= have]

    def min_side(self) -> tuple[int, str]:
        """The smallest height and width the metrics that run can score, and the metric that sets it.

        Full-reference metrics see each image after ``crop_border`` px went from every side.
        """
        need = [(m.min_side() + (2 * self.crop_border if m.kind == "FR" else 0), m.name)
                for m in self.metrics if m.kind != "SET"]
        return max(need, default=(1, ""))

    def size_problem(self, height: int, width: int) -> str | None:
        """Why a pair of this size cannot be scored under this protocol, or None."""
        side, metric = self.min_side()
        if min(height, width) >= side:
            return None
        own = self.metric(metric).min_side()
        crop = f" after a {self.crop_border} px border crop" if side > own else ""
        return (f"{width}x{height} px, smaller than the {side}x{side} px protocol {self.name!r} needs "
                f"({metric} needs {own}x{own} px{crop})")

    def pair_problem(self, pred: tuple[int, int], gt: tuple[int, int]) -> str | None:
        """Why a prediction of size ``pred`` cannot be scored against a ground truth of size ``gt``
        (both (width, height)) under the size policy and the metrics' smallest sides, or None.

        The one statement of these rules: the pre-check applies them to header sizes, the
        scoring pass to decoded images.
        """
        (pw, ph), (gw, gh) = pred, gt
        sizes = f"prediction {pw}x{ph}, ground truth {gw}x{gh}"
        if (pw, ph) != (gw, gh) and self.size.policy == "error":
            return f"{sizes}; protocol {self.name!r} requires equal sizes"
        limit = self.size.max_diff          # an int with policy crop (__post_init__)
        if self.size.policy == "crop" and limit is not None and max(abs(ph - gh), abs(pw - gw)) > limit:
            return (f"{sizes}; they differ by more than the {limit} px "
                    f"protocol {self.name!r} allows")
        # What the metrics see: the ground truth's size (resize), or the overlap (crop).
        w, h = (gw, gh) if self.size.policy == "resize" else (min(pw, gw), min(ph, gh))
        return self.size_problem(h, w)

    def sha256(self) -> str:
        """Hash of the resolved protocol: what every report and cache key carries."""
        body = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256(),
                "source": self.source, "pyiqa": self.pyiqa, "conversion": self.conversion,
                "crop_border": self.crop_border,
                "size_mismatch": {"policy": self.size.policy, "max_diff": self.size.max_diff,
                                  "anchor": self.size.anchor},
                "aggregation": self.aggregation, "reference_scores": self.reference_scores,
                "metrics": {m.name: {"pyiqa": m.pyiqa, "kind": m.kind, "better": m.better,
                                     "options": m.pyiqa_options(), "dtype": m.dtype,
                                     **({"crop_to_multiple": m.crop_to_multiple} if m.crop_to_multiple > 1 else {})}
                            for m in self.metrics},
                "differences": list(self.differences),
                "derived": dict(self.derived),
                "restricted_to": list(self.restricted_to) if self.restricted_to else None}


def _const(node: ast.AST) -> float | None:
    """The value of a finite numeric literal (optionally signed), else None."""
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        inner = _const(node.operand)
        return None if inner is None else _UNARY[type(node.op)](inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        try:
            value = float(node.value)
        except OverflowError:             # an integer literal of 400 digits
            return None
        return value if math.isfinite(value) else None
    return None


def _check_node(node: ast.AST, names: set[str]) -> str | None:
    """Why ``node`` (and what is below it) cannot be a derived score, or None; collects metric names."""
    if isinstance(node, ast.Name):
        names.add(node.id)
        return None
    if isinstance(node, (ast.Constant, ast.UnaryOp)) and _const(node) is not None:
        return None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_node(node.operand, names)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        problem = _check_node(node.left, names) or _check_node(node.right, names)
        if problem or not isinstance(node.op, ast.Pow):
            return problem
        # A fixed, small exponent only ('a ** (1/3)'): '9**9**9' or 'a ** b' has no useful bound.
        exponent = math.nan if _has_name(node.right) else _eval(node.right, {})
        if not abs(exponent) <= MAX_EXPONENT:
            return f"the exponent in {ast.unparse(node)!r} must be a number within ±{MAX_EXPONENT}"
        return None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
            and node.func.id in _DERIVED_FUNCS and len(node.args) >= _DERIVED_FUNCS[node.func.id][1]
            and (node.func.id != "abs" or len(node.args) == 1)):
        return next(filter(None, (_check_node(a, names) for a in node.args)), None)
    return (f"{ast.unparse(node)!r} is not allowed (finite numbers, metric names, + - * / **, "
            f"max(a, b, ...), min(a, b, ...), abs(a))")


def _has_name(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _derived_tree(expr: str, where: str) -> tuple[ast.Expression, set[str]]:
    """Parse and check a whole derived expression; returns it and the metric names it reads."""
    if len(expr) > MAX_DERIVED_CHARS:
        raise ProtocolError(f"{where}: derived expression is longer than {MAX_DERIVED_CHARS} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ProtocolError(f"{where}: derived expression {expr!r} is not valid: "
                            f"{getattr(e, 'msg', e)}") from None
    names: set[str] = set()
    try:
        problem = _check_node(tree.body, names)
    except RecursionError:
        problem = "nested too deeply"
    if problem:
        raise ProtocolError(f"{where}: derived expression {expr!r}: {problem}")
    return tree, names


def _expr_names(expr: str, where: str) -> set[str]:
    return _derived_tree(expr, where)[1]


def _eval(node: ast.AST, values: dict[str, float]) -> float:
    """A checked expression's value; 0/0, overflow and (-1)**0.5 give NaN, never an exception."""
    try:
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))      # a number: _check_node allows no other constant
        if isinstance(node, ast.Name):
            return float(values[node.id])
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](_eval(node.operand, values))
        if isinstance(node, ast.BinOp):
            return float(_BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values)))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)    # what _check_node allows
        fn = _DERIVED_FUNCS[node.func.id][0]
        return float(fn(*(_eval(a, values) for a in node.args)))
    except (ArithmeticError, ValueError):
        return math.nan


def evaluate_derived(expr: str, values: dict[str, float]) -> float:
    """Evaluate a derived score: numbers, metric names, + - * / **, max/min/abs only.

    The result may be NaN or inf (0/0, overflow): callers flag it, they never crash on it.
    """
    return _eval(_derived_tree(expr, "derived")[0].body, values)


def list_protocols() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(PROTOCOL_DIR) if f.endswith(".yaml"))


def resolve_path(name_or_path: str) -> str:
    if os.path.isfile(name_or_path):
        return os.path.abspath(name_or_path)
    shipped = os.path.join(PROTOCOL_DIR, f"{name_or_path}.yaml")
    if os.path.isfile(shipped):
        return shipped
    raise ProtocolError(f"{name_or_path}: not a protocol file, nor one of the shipped protocols "
                        f"({', '.join(list_protocols())})")


def _tolerance(name: str, d: dict, where: str) -> float:
    t = d.get("tolerance", 0.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf"):
        raise ProtocolError(f"{where}: metric {name!r}: tolerance must be a number >= 0, got {t!r}")
    return float(t)


def _metric(name: str, d: Any, where: str) -> MetricSpec:
    if not isinstance(d, dict) or "pyiqa" not in d:
        raise ProtocolError(f"{where}: metric {name!r} needs at least 'pyiqa: <metric name>'")
    known = {"pyiqa", "kind", "better", "options", "dtype", "note", "weights", "optional", "tolerance",
             "crop_to_multiple"}
    if set(d) - known:
        raise ProtocolError(f"{where}: metric {name!r} has unknown keys {sorted(set(d) - known)}")
    kind, better = d.get("kind"), d.get("better")
    if kind not in ("FR", "NR", "SET") or better not in DIRECTIONS:
        raise ProtocolError(f"{where}: metric {name!r} needs kind: FR|NR|SET and better: {'|'.join(DIRECTIONS)}")
    multiple = d.get("crop_to_multiple", 1)
    need = MULTIPLE_OF.get(str(d["pyiqa"]), 1)
    if type(multiple) is not int or multiple < 1 or multiple % need:
        raise ProtocolError(f"{where}: metric {name!r}: crop_to_multiple must be a positive integer"
                            + (f" and a multiple of {need} (pyiqa's {d['pyiqa']} accepts only sides that are "
                               f"multiples of {need})" if need > 1 else "") + f", got {multiple!r}")
    if kind == "SET" and d["pyiqa"] != "fid":
        raise ProtocolError(f"{where}: metric {name!r}: kind SET is only implemented for pyiqa's fid")
    if d.get("dtype", "float32") not in ("float32", "float64"):
        raise ProtocolError(f"{where}: metric {name!r}: dtype must be float32 or float64")
    weights = []
    for w in d.get("weights") or []:
        if not isinstance(w, dict) or w.get("store") not in WEIGHT_STORES or not w.get("file"):
            raise ProtocolError(f"{where}: metric {name!r}: each weight needs store "
                                f"({'|'.join(WEIGHT_STORES)}) and file, got {w!r}")
        weights.append(WeightFile(w["store"], str(w["file"]), w.get("sha256"), w.get("sha256_prefix")))
    options = d.get("options") or {}
    return MetricSpec(name=name, pyiqa=str(d["pyiqa"]), kind=kind, better=better,
                      options=tuple(sorted(options.items())), dtype=d.get("dtype", "float32"),
                      note=" ".join(str(d.get("note", "")).split()), weights=tuple(weights),
                      optional=bool(d.get("optional", False)), tolerance=_tolerance(name, d, where),
                      crop_to_multiple=multiple)


def _differences(metadata: dict, where: str) -> tuple[str, ...]:
    items = metadata.get("differences") or []
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise ProtocolError(f"{where}: metadata.differences must be a list of sentences, got {items!r}")
    return tuple(" ".join(x.split()) for x in items)


def load(name_or_path: str = DEFAULT_PROTOCOL) -> Protocol:
    """Load a shipped protocol by name (``ggt``, ``ntire``) or a user's YAML file by path."""
    path = resolve_path(name_or_path)
    d = read_merged(path)
    where = path
    try:
        inputs = d.get("inputs") or {}
        size = inputs.get("size_mismatch") or {}
        metrics = d.get("metrics")
        if not isinstance(metrics, dict):
            raise ProtocolError(f"{where}: 'metrics' must map report names to metric settings")
        specs = [_metric(k, v, where) for k, v in metrics.items()]
        derived = d.get("derived") or {}
        if not isinstance(derived, dict):
            raise ProtocolError(f"{where}: 'derived' must map score names to expressions")
        return Protocol(
            name=str(d["name"]), version=int((d.get("metadata") or {})["version"]),
            description=" ".join(str((d.get("metadata") or {}).get("description", "")).split()),
            pyiqa=str(d.get("pyiqa", "")), conversion=inputs.get("conversion", "rgb-float"),
            crop_border=int(inputs.get("crop_border", 0)),
            size=SizePolicy(size.get("policy", "crop"), size.get("max_diff", 32), size.get("anchor")),
            aggregation=d.get("aggregation", "mean"),
            reference_scores=bool(d.get("reference_scores", False)),
            metrics=tuple(m for m in specs if not m.optional),
            optional=tuple(m for m in specs if m.optional),
            derived=tuple((str(k), str(v)) for k, v in derived.items()),
            differences=_differences(d.get("metadata") or {}, where), source=path, raw=d)
    except KeyError as e:
        raise ProtocolError(f"{where}: missing required key {e}") from None
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"{where}: {e}") from None
