"""What ``ggt leaderboard build`` writes beside the page, all from the same site data:

* ``leaderboard.md``: one Markdown table per protocol (overall), for a README;
* ``results.parquet``: one row per valid record, so the results repo renders in the Hub's
  dataset viewer;
* ``eval_results/<org>__<name>.yaml``: the Hub's eval-results format, which the model's
  author saves as ``.eval_results/ggt-100k.yaml`` in the model repo (one file per model, with
  an entry per protocol and metric: a model repo has one ``ggt-100k.yaml``).
"""

from __future__ import annotations

import io
import os

from ..atomic import write_bytes
from .record import Record, model_folder

EVAL_RESULTS_FILE = ".eval_results/ggt-100k.yaml"      # its place in a model repo


def write_all(site: str, data: dict, records: list[tuple[str, Record]], *, dataset_id: str | None,
              source: str) -> None:
    """Into ``site``, a folder that site.build syncs once and swaps in whole (so no fsync per file)."""
    write_bytes(os.path.join(site, "leaderboard.md"), markdown(data).encode(), durable=False)
    write_bytes(os.path.join(site, "results.parquet"), results_parquet(data), durable=False)
    for model, text in eval_results(data, dataset_id=dataset_id, source=source).items():
        write_bytes(os.path.join(site, "eval_results", f"{model_folder(model)}.yaml"), text.encode(), durable=False)


def _md(text) -> str:
    """Record text in a Markdown table cell: no table break, no markup, no HTML."""
    s = " ".join(str(text).split())
    for ch in "\\`*_[]<>|#!":
        s = s.replace(ch, "\\" + ch)
    return s


def _code(text) -> str:
    """Record text in a Markdown code span (no escapes work there): no backtick, one line."""
    return "`" + " ".join(str(text).replace("`", "'").split()) + "`"


def markdown(data: dict) -> str:
    lines = ["# GGT-100K leaderboard", "",
             f"Built {data['generated']} from {_code(data['source'])}. Ranked by the mean over all pairs "
             "(`ggt score --compare`'s rule): † marks non-finite per-image scores, ‡ a derived score "
             "from such means; only " + " and ".join(data["ranked_statuses"]) + " records are ranked."]
    for t in data["protocols"]:
        cols = [m["name"] for m in t["metrics"]] + [d["name"] for d in t["derived"]]
        arrows = [m["arrow"] for m in t["metrics"]] + [d["arrow"] for d in t["derived"]]
        lead = cols[0] if cols else None
        rows = sorted(t["rows"], key=lambda r: _rank_order(r, lead))
        lines += ["", f"## {t['name']} v{t['version']}", "",
                  "| model | status | pairs | " + " | ".join(f"{c} {a}" for c, a in zip(cols, arrows)) + " |",
                  "|" + "---|" * (3 + len(cols))]
        for r in rows:
            cells = r["cells"].get("overall", {})
            shown = [_md_cell(cells.get(c)) for c in cols]
            lines.append(f"| {_md(r['name'])} ({_code(r['model'])}) | {r['status']} | {r['pairs'] or '—'} | "
                         + " | ".join(shown) + " |")
    if data["invalid"]:
        lines += ["", "## Invalid records", ""] + [f"* {_code(x['path'])}: {_md(x['reason'])}" for x in data["invalid"]]
    return "\n".join(lines) + "\n"


def _md_cell(c: dict | None) -> str:
    if not c:
        return "—"
    text = _md(c["text"] + (f" ({c['note']})" if c["note"] else ""))
    return f"**{text}**" if c["best"] else text


def _rank_order(row: dict, column: str | None) -> tuple:
    c = row["cells"].get("overall", {}).get(column) if column else None
    rank = c["rank"] if c else None
    return (rank is None, rank or 0, row["model"])


def results_parquet(data: dict) -> bytes:
    """One row per record; means of every protocol's metrics as columns (null where a record
    has none or its mean is not finite), per category as a list of structs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(dict.fromkeys(m["name"] for t in data["protocols"] for m in t["metrics"] + t["derived"]))
    rows = []
    for t in data["protocols"]:
        for r in t["rows"]:
            overall = r["cells"].get("overall", {})
            rows.append({"model": r["model"], "name": r["name"], "revision": r["revision"], "status": r["status"],
                         "protocol": t["name"], "protocol_version": str(t["version"]), "pairs": r["pairs"],
                         "submitted": r["submitted"], "record": r["id"],
                         **{n: overall[n]["mean"] if n in overall else None for n in names},
                         **{f"{n}_rank": overall[n]["rank"] if n in overall else None for n in names},
                         "per_category": [{"category": w, "metric": n, "mean": c["mean"], "nonfinite": c["nonfinite"],
                                           "rank": c["rank"]}
                                          for w, cs in r["cells"].items() if w != "overall" for n, c in cs.items()]})
    cat = pa.struct([("category", pa.string()), ("metric", pa.string()), ("mean", pa.float64()),
                     ("nonfinite", pa.int64()), ("rank", pa.int64())])
    schema = pa.schema([(k, pa.string()) for k in ("model", "name", "revision", "status", "protocol",
                                                   "protocol_version")]
                       + [("pairs", pa.int64()), ("submitted", pa.string()), ("record", pa.string())]
                       + [(n, pa.float64()) for n in names] + [(f"{n}_rank", pa.int64()) for n in names]
                       + [("per_category", pa.list_(cat))])
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    return buf.getvalue()


def eval_results(data: dict, *, dataset_id: str | None, source: str) -> dict[str, str]:
    """Per model, the text of its EVAL_RESULTS_FILE. The field names are the Hub's,
    through huggingface_hub's own writer (``EvalResultEntry``, ``eval_result_entries_to_yaml``;
    spec: https://huggingface.co/docs/hub/eval-results and hub-docs ``eval_results.yaml``).
    Only ranked records' means over all pairs are exported: a pending or mismatched claim,
    or the mean of the finite scores of some pairs, is not a number to put on a model page."""
    import yaml
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

    from ..hub import endpoint
    from ..loading import default_repo_id

    dataset_id = dataset_id or default_repo_id()
    url = source if source.count("/") == 1 and not os.path.isabs(source) else None
    out: dict[str, list] = {}
    for t in data["protocols"]:
        for r in t["rows"]:
            if r["status"] not in data["ranked_statuses"]:
                continue
            for n, c in r["cells"].get("overall", {}).items():
                if c["rank"] is None or c["nonfinite"]:      # not a mean over all pairs
                    continue
                out.setdefault(r["model"], []).append(EvalResultEntry(
                    dataset_id=dataset_id, task_id=f"{t['name']}-v{t['version']}/{n}", value=c["mean"],
                    date=r["submitted"], notes=f"{r['status']}; protocol {t['name']} v{t['version']}; "
                    f"mean of {n} over {r['pairs']} test pairs",
                    **({"source_url": f"{endpoint()}/datasets/{url}", "source_name": "GGT-100K results"}
                       if url else {})))
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)     # libyaml's, where built: 10x faster
    return {m: yaml.dump(eval_result_entries_to_yaml(es), Dumper=dumper, sort_keys=False, allow_unicode=True)
            for m, es in out.items()}
