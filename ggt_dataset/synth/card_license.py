"""The licence OUT_RAW's card states, settled before a synthesis run makes anything.

From ``--license`` (a Hub licence id; ``other`` with ``--license-name`` and ``--license-link``),
else carried from the raw release LQ_DIR is part of (its ggt-release.yaml, read as ``ggt build``
reads it), else ``unknown``: a Hub licence id that claims nothing. The facts are checked by
the Hub's rules (:func:`..hub_card.license_problem`), so ``ggt build OUT_RAW`` then ``ggt
publish`` needs no edit; synth once wrote ``other`` with neither name nor link, which publish
refused.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import GGTError
from ..hub_card import license_problem
from ..raw_release import RELEASE_INFO_FILE, ReleaseInfo

if TYPE_CHECKING:
    from .parts import SynthConfig

UNKNOWN = "unknown"
# A raw release is <root>/<split>/<LQ>/<category>/... (levels in any order), so LQ_DIR's release
# root is LQ_DIR itself or at most three folders up; further up is someone else's folder.
LEVELS_UP = 3


class LicenseError(GGTError):
    """The licence given to ggt synth, or carried from LQ_DIR's release, is not one the Hub accepts."""


def input_release(lq_dir: str) -> str | None:
    """The root of the raw release ``lq_dir`` is part of (the nearest folder with a
    ggt-release.yaml, ``lq_dir`` or up to LEVELS_UP above it), or None."""
    folder = os.path.abspath(lq_dir)
    for _ in range(LEVELS_UP + 1):
        if os.path.isfile(os.path.join(folder, RELEASE_INFO_FILE)):
            return folder
        folder = os.path.dirname(folder)
    return None


def _options(what: str) -> str:
    # hub_card names card keys ("license_name and license_link"); synth's fix is its options
    flags = " and ".join("--" + key.strip().replace("_", "-") for key in what.split(" and "))
    return f"pass {flags} to ggt synth"


def resolve(cfg: SynthConfig, lq_dir: str) -> SynthConfig:
    """``cfg`` with the licence facts OUT_RAW's card will state (see the module docstring)."""
    named = {"license_name": cfg.license_name or "", "license_link": cfg.license_link or ""}
    if cfg.license is None and any(named.values()):
        raise LicenseError("--license-name and --license-link describe --license other; pass --license other too")
    if cfg.license is not None:
        if cfg.license != "other" and any(named.values()):
            raise LicenseError(f"--license-name and --license-link describe --license other, not "
                               f"--license {cfg.license}; drop them, or pass --license other")
        facts, where = {"license": cfg.license, **named}, "ggt synth --license"
    elif (root := input_release(lq_dir)) is not None:
        info = ReleaseInfo.from_root(root)
        other = info.license == "other"       # the Hub reads a name and link only for `other`
        facts = {"license": info.license, "license_name": info.license_name if other else "",
                 "license_link": info.license_link if other else ""}
        where = f"{os.path.join(root, RELEASE_INFO_FILE)} (LQ_DIR's release, whose licence synth carries)"
    else:
        return replace(cfg, license=UNKNOWN)
    problem = license_problem(facts, (), fix=_options)
    if problem:
        raise LicenseError(f"{where}: {problem}")
    return replace(cfg, license=facts["license"], license_name=facts["license_name"],
                   license_link=facts["license_link"])


def pair_license(cfg: SynthConfig) -> str | None:
    """Each pair's ``license`` column: the LQ photo's licence, null when unknown."""
    return None if cfg.license == UNKNOWN else cfg.license
