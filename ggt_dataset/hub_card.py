"""What the Hub accepts in a dataset card's YAML header, checked before anything is sent.

The Hub validates README.md's metadata when it is committed and refuses the commit;
``ggt publish`` applies the same rules locally, so a dry run names the fix and a real
run fails before the first shard goes up. The lists below are the Hub's; update them
from the sources named (no client library ships them).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from fsspec.utils import glob_translate

from .raw_release import RELEASE_INFO_FILE

# Licence ids. Source: huggingface/hub-docs docs/hub/repositories-licenses.md at commit
# fd6cf1f (2026-06-06), read 2026-12-01: the list the Hub derives its own from
# (hub-docs#1755); the Hub's refusal message lists the same ids (huggingface_hub#4218).
LICENSES = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
    "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0",
    "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0",
    "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc",
    "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0",
    "odc-by", "odbl", "openmdw-1.0", "openmdw-1.1", "openrail++", "osl-3.0", "postgresql", "ofl-1.1",
    "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
    "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3",
    "llama4", "grok2-community", "gemma", "unknown", "other",
)
# Task categories. Source: huggingface/huggingface.js packages/tasks/src/pipelines.ts, the
# keys of PIPELINE_DATA at commit fe42e68 (2026-08-21), read 2026-12-01; hub-docs'
# datasetcard.md calls it the full list.
TASK_CATEGORIES = (
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio", "automatic-speech-recognition",
    "audio-to-audio", "audio-classification", "audio-text-to-text", "voice-activity-detection",
    "depth-estimation", "image-classification", "object-detection", "image-segmentation", "text-to-image",
    "image-to-text", "image-to-image", "image-to-video", "unconditional-image-generation",
    "video-classification", "reinforcement-learning", "robotics", "tabular-classification",
    "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice", "text-ranking",
    "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
    "image-text-to-image", "image-text-to-video", "visual-question-answering",
    "document-question-answering", "zero-shot-image-classification", "graph-ml", "mask-generation",
    "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
    "video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any",
    "video-to-video", "other",
)
# Size categories, smallest first: the k-th holds n < 10**(k + 3). Source: huggingface_hub
# DatasetCardData's documentation (2.4.0), which also allows "other".
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M",
                   "100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")


def _rebuild(what: str) -> str:
    # The card is rendered from the manifest, which a build fills from ggt-release.yaml.
    return f"set {what} in the raw release's {RELEASE_INFO_FILE}, then run the same `ggt build` again"


def size_category(n: int) -> str:
    """The Hub's size category for ``n`` examples, e.g. ``size_category(48) == "n<1K"``."""
    return next((c for k, c in enumerate(SIZE_CATEGORIES[:-1]) if n < 10 ** (k + 3)), SIZE_CATEGORIES[-1])


def problems(header: dict[str, Any], files: list[str]) -> list[str]:
    """Each reason the Hub would refuse or misread a dataset card with this YAML ``header``,
    with its fix; ``files`` are the repo's paths once uploaded (what data_files must match)."""
    found = []
    if not isinstance(header.get("pretty_name"), str) or not header["pretty_name"].strip():
        found.append(f"pretty_name is missing; {_rebuild('it')}")
    problem = license_problem(header, files)
    if problem:
        found.append(problem)
    for key, allowed, source in (("task_categories", TASK_CATEGORIES, "huggingface.js pipelines.ts"),
                                 ("size_categories", (*SIZE_CATEGORIES, "other"), "the Hub's size list")):
        bad = [v for v in _as_list(header.get(key)) if v not in allowed]
        if bad:
            found.append(f"{key} {bad} not in {source}; expected some of {list(allowed)}")
    for config in header.get("configs") or []:
        for pattern in _patterns(config.get("data_files")):
            if not any(re.match(glob_translate(pattern), f) for f in files):
                found.append(f"config {config.get('config_name')!r}: data_files {pattern!r} matches none of "
                             "the files to upload; run the same `ggt build` again")
    return found


def license_problem(header: dict[str, Any], files: Sequence[str], fix: Callable[[str], str] = _rebuild) -> str | None:
    """What the Hub would refuse in the card's ``license``, ``license_name`` and ``license_link``
    (``files``: the ones uploaded), or None; ``fix(what)`` says how to set ``what`` (ggt synth
    names its options instead of ggt-release.yaml)."""
    licenses = _as_list(header.get("license"))
    if not licenses or any(v not in LICENSES for v in licenses):
        return (f"license {header.get('license')!r} is not one of the Hub's licence ids "
                f"(https://hf.co/docs/hub/repositories-licenses); give one, or `other` with "
                f"license_name and license_link; {fix('license')}")
    if "other" not in licenses:
        return None
    missing = [k for k in ("license_name", "license_link")
               if not isinstance(header.get(k), str) or not header[k].strip()]
    if missing:
        return (f"license is `other`, so the Hub needs license_name (an id such as my-license-1.0) "
                f"and license_link (an https URL, or LICENSE.md uploaded with the dataset); "
                f"{' and '.join(missing)} missing; {fix(' and '.join(missing))}")
    link = header["license_link"]
    if urlsplit(link).scheme in ("http", "https") or posixpath.normpath(link) in files:
        return None
    return (f"license_link {link!r} is neither an http(s) URL nor a file that is uploaded; put the "
            f"licence text in the build folder as {posixpath.normpath(link)} (the card links it, so "
            "publish sends it) or give a URL")


def _as_list(value: Any) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def _patterns(data_files: Any) -> list[str]:
    # The card's data_files forms: "p", ["p", ...], or [{"split": s, "path": "p" | ["p", ...]}, ...].
    return [p for entry in _as_list(data_files)
            for p in _as_list(entry.get("path") if isinstance(entry, dict) else entry)]
