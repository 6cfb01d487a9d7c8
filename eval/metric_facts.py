"""Metric facts, registered once: which way each score is better, and the gain that counts.

Who reads what:

- a protocol YAML states ``better:`` for each of its metrics too, because the file is what a
  report records and hashes; every shipped protocol agrees with this table (tested);
- ``ggt synth``'s quality stage (``synth/qc_quality.py``) takes the direction of the offline
  metrics and every metric's default margin from here;
- ``ggt synth compare`` ranks each column in the direction registered here, and the fidelity
  stage bands colour drift by it.

    >>> FACTS["niqe"].better, FACTS["niqe"].margin
    ('lower', 0.1)
    >>> OFFLINE_NR
    ('piqe', 'entropy')
    >>> FACTS["afine_nr"].ranked
    False
"""

from __future__ import annotations

from dataclasses import dataclass

# Which way a score is better. 'unknown' is a real answer: HarnessIR leaves AFINE-NR's sign
# open, so such a metric is reported but never ranked, bolded, or put into a derived score.
RANKED = ("higher", "lower")
DIRECTIONS = (*RANKED, "unknown")


class Directed:
    """What a metric's ``better`` (one of DIRECTIONS) means, for every class that carries one."""

    better: str

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher"

    @property
    def ranked(self) -> bool:
        """Whether scores can be ranked: never for a metric whose direction is unknown."""
        return self.better in RANKED


@dataclass(frozen=True)
class MetricFacts(Directed):
    better: str             # one of DIRECTIONS
    margin: float = 0.0     # synth QC: the smallest gain that counts as better, in the metric's own units
    offline: bool = False   # classical no-reference: needs no weight files (outside the shipped protocols)


FACTS: dict[str, MetricFacts] = {
    # the shipped protocols' metrics, by their report names (eval/protocols/*.yaml)
    "psnr": MetricFacts("higher"),
    "ssim": MetricFacts("higher"),
    "lpips": MetricFacts("lower"),
    "dists": MetricFacts("lower"),
    "musiq": MetricFacts("higher", margin=1.0),
    "maniqa": MetricFacts("higher", margin=0.01),
    "clipiqa": MetricFacts("higher", margin=0.01),
    "topiq_nr": MetricFacts("higher", margin=0.01),
    "niqe": MetricFacts("lower", margin=0.1),
    # pyiqa's table says lower-is-better; HarnessIR (the ggt protocol's source) says the sign is
    # not established, and the ggt protocol follows HarnessIR.
    "afine_nr": MetricFacts("unknown"),
    "fid": MetricFacts("lower"),
    # classical no-reference metrics that run offline: synth QC's fallback
    "piqe": MetricFacts("lower", margin=1.0, offline=True),
    "entropy": MetricFacts("higher", margin=0.0, offline=True),
    # synth QC's own scores, named <stage>_<score> as `ggt synth compare` shows them
    "quality_gain": MetricFacts("higher"),          # in the quality metric's better direction
    "fidelity_structure": MetricFacts("higher"),
    "fidelity_colour_drift": MetricFacts("lower"),
    "judge_removal": MetricFacts("higher"),
    "judge_fidelity": MetricFacts("higher"),
    "accepted": MetricFacts("higher"),              # the share of pairs QC accepted
}

OFFLINE_NR: tuple[str, ...] = tuple(name for name, f in FACTS.items() if f.offline)
