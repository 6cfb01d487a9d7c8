"""The metric facts registry (eval/metric_facts.py): the one place directions and QC margins live."""

from __future__ import annotations

import pytest
from ggt_dataset.eval import protocol as P
from ggt_dataset.eval.metric_facts import FACTS, OFFLINE_NR


@pytest.mark.parametrize("name", P.list_protocols())
def test_every_shipped_protocol_agrees_with_the_registry(name):
    for m in P.load(name).metrics:
        assert m.name in FACTS, f"{name}.yaml's {m.name} is not registered in eval/metric_facts.py"
        assert FACTS[m.name].better == m.better, f"{name}.yaml says {m.name} is {m.better}-is-better"


def test_synth_qc_reads_its_directions_and_margins_from_the_registry():
    from ggt_dataset.synth import compare, qc_quality
    from ggt_dataset.synth.qc import Quality

    assert set(OFFLINE_NR) == {"piqe", "entropy"}
    chosen = qc_quality.choose_metric(("piqe",))
    assert chosen.spec.better == FACTS["piqe"].better == "lower"
    assert qc_quality.NRScorer(Quality(metrics=("piqe",))).margin == FACTS["piqe"].margin == 1.0
    # compare ranks lower colour drift first, as the registry says
    rows = [{"name": n, "fidelity_colour_drift": d} for n, d in (("a", 20.0), ("b", 5.0))]
    assert [r["name"] for r in compare.rank(rows, quality_higher=True)] == ["b", "a"]
    assert all(c == "quality_hq" or c in FACTS for c in compare.COLUMNS)


def test_a_metric_of_unknown_direction_is_never_a_qc_gain():
    """AFINE-NR's direction is unknown (HarnessIR): synth QC, which needs a sign to judge a
    gain, skips it with the reason instead of treating it as lower-is-better."""
    from ggt_dataset.synth import qc_quality

    assert FACTS["afine_nr"].better == "unknown" and not FACTS["afine_nr"].ranked
    chosen = qc_quality.choose_metric(("afine_nr", "piqe"))
    assert chosen.spec.name == "piqe"
    assert any("afine_nr: its direction is unknown" in s for s in chosen.skipped)
