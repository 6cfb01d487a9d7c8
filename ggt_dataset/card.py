"""The dataset card: YAML that ``datasets`` and the Hub parse, then text people read.

The YAML is built from the manifest only, so a card always matches the shards:
``configs`` (``default`` over every category, one config per category, all
pointing at the same files) and ``dataset_info`` with each config's features
and split sizes (``num_examples`` is checked by ``datasets`` on load).
"""

from __future__ import annotations

import string
from typing import Any

import yaml

from .cards import template
from .hub_card import size_category
from .layout import split_glob
from .schema import CATEGORIES, FEATURES


def configs_and_infos(counts: dict[str, dict[str, dict[str, int]]]) -> tuple[list, list]:
    """``configs`` and ``dataset_info`` YAML lists for the split/category counts of a build."""
    features = FEATURES._to_yaml_list()
    configs, infos = [], []
    names = ["default", *[c for c in CATEGORIES if any(c in per for per in counts.values())]]
    for name in names:
        cats = CATEGORIES if name == "default" else (name,)
        folder = "*" if name == "default" else name
        splits = [s for s in counts if any(c in counts[s] for c in cats)]
        entry: dict[str, Any] = {"config_name": name}
        if name == "default":
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": split_glob(folder, s)} for s in splits]
        configs.append(entry)
        split_infos: list[dict[str, Any]] = [
            {"name": s, "num_bytes": sum(v["arrow_bytes"] for c, v in counts[s].items() if c in cats),
             "num_examples": sum(v["pairs"] for c, v in counts[s].items() if c in cats)}
            for s in splits]
        infos.append({"config_name": name, "features": features, "splits": split_infos,
                      "download_size": sum(v["bytes"] for s in splits for c, v in counts[s].items()
                                           if c in cats),
                      "dataset_size": sum(i["num_bytes"] for i in split_infos)})
    return configs, infos


INCOMPLETE_MARKER = "BUILD-INCOMPLETE--run-ggt-build-again-to-finish"


def incomplete() -> str:
    """The card of a build in progress or interrupted: its only data_files pattern matches nothing."""
    header = {"configs": [{"config_name": "default", "data_files": f"{INCOMPLETE_MARKER}/*.parquet"}]}
    return ("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n# Build incomplete\n\n"
            "`ggt build` has not finished writing this folder. Run the same `ggt build` command again: "
            "it keeps the finished shards and completes the rest.\n")


def render(manifest: dict[str, Any], repo: str) -> str:
    """The full README.md for a build described by ``manifest``; ``repo`` goes into the examples."""
    info, counts = manifest["release"], manifest["counts"]
    configs, infos = configs_and_infos(counts)
    header = {
        "pretty_name": info["pretty_name"],
        "license": info["license"],
        # What the Hub needs with `license: other`; a manifest from before they existed has neither.
        **{k: info[k] for k in ("license_name", "license_link") if info.get(k)},
        "task_categories": ["image-to-image"],
        "size_categories": [size_category(manifest["totals"]["pairs"])],
        "tags": list(info["tags"]),
        "configs": configs,
        "dataset_info": infos,
    }
    body = string.Template(template("dataset_card.md")).substitute(
        pretty_name=info["pretty_name"], description=info["description"],
        tool_version=manifest["built_with"]["ggt-100k"],
        total_pairs=f"{manifest['totals']['pairs']:,}", total_shards=manifest["totals"]["shards"],
        total_size=human_bytes(manifest["totals"]["bytes"]), repo=repo,
        splits=", ".join(counts), first_split=next(iter(counts)),
        configs=", ".join(c["config_name"] for c in configs),
        example_category=configs[1]["config_name"] if len(configs) > 1 else "default",
        counts_table=counts_table(counts), categories=", ".join(f"`{c}`" for c in CATEGORIES),
        license=license_text(info), source_license=info["source_license"],
        license_table=license_table(manifest["shards"]),
        citation=citation_section(info),
        duplicates=duplicates_note(manifest.get("duplicates")),
    )
    return "---\n" + yaml.dump(header, Dumper=_NoAliases, sort_keys=False, allow_unicode=True,
                               width=100) + "---\n\n" + body


class _NoAliases(yaml.SafeDumper):
    # Each config repeats the same features; YAML anchors would be legal but many
    # card parsers and readers trip on them.
    def ignore_aliases(self, data: Any) -> bool:
        return True


def counts_table(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    splits = list(counts)
    lines = ["| category | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for cat in CATEGORIES:
        if any(cat in counts[s] for s in splits):
            lines.append(f"| {cat} | " + " | ".join(
                f"{counts[s].get(cat, {}).get('pairs', 0):,}" for s in splits) + " |")
    lines.append("| **all** | " + " | ".join(
        f"**{sum(v['pairs'] for v in counts[s].values()):,}**" for s in splits) + " |")
    return "\n".join(lines)


def license_text(info: dict[str, Any]) -> str:
    # license_link as a Markdown link: a licence file in the build folder (LICENSE.md) is then
    # one the card links, which publish sends (contents.dataset_files).
    name, link = info.get("license_name"), info.get("license_link")
    named = f" ([{name or link}]({link}))" if link else f" ({name})" if name else ""
    return f"`{info['license']}`{named}"


def license_table(shards: list[dict[str, Any]]) -> str:
    totals: dict[str, int] = {}
    for s in shards:
        for lic, n in s.get("licenses", {}).items():
            totals[lic] = totals.get(lic, 0) + n
    if set(totals) <= {"unspecified"}:
        return "No pair states a source licence of its own."
    rows = [f"| {lic} | {n:,} |" for lic, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "Source licences of the LQ photos:\n\n| licence | pairs |\n|---|---:|\n" + "\n".join(rows)


def citation_section(info: dict[str, Any]) -> str:
    links = "; ".join(f"{label}: {info[key]}" for key, label in (("homepage", "Homepage"), ("paper", "Paper"))
                      if info.get(key))
    cite = f"```bibtex\n{info['citation'].strip()}\n```" if info.get("citation", "").strip() else ""
    return "\n\n".join(x for x in (links + "." if links else "", cite) if x) or "No citation given."


def duplicates_note(dup: dict[str, Any] | None) -> str:
    if not dup:
        return ""
    across, within = dup["lq_in_train_and_test"]["count"], dup["lq_repeated_within_split"]["count"]
    if not across and not within:
        return "No LQ image occurs twice (byte-identical check by SHA-256), within or across splits."
    return (f"Byte-identical LQ images: {across} shared by train and test, {within} repeated within a "
            "split; `ggt_manifest.json` lists them under `duplicates`.")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
