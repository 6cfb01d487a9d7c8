"""The judge's prompts, as the protocol pins them: ours (``ggt``) or HarnessIR's (``harnessir``).

A protocol's ``judge:`` section names the default model per provider and each prompt:

- ``ggt``: our own prompt, ``ggt-df-v1`` (ggt_dataset/synth/df_judge.py, the synthesis QC's
  judge too): the input and the prediction side by side in one PNG, answers ``removal`` and
  ``fidelity``. The protocol pins the instruction's sha256, so an edit of it without a new
  name fails here instead of changing scores silently.
- ``harnessir``: HarnessIR's VLM-DF prompt (PolyU-VCLab/HarnessIR, prompts/df/), fetched at run
  time from URLs pinned with their sha256, like weights, never copied into this repository.
  As its harness/dfscore.py does: the prompt files make a system instruction for the image's
  degradation type (the protocol maps each GGT category to one of HarnessIR's types), and the
  VLM sees two pictures, the input's and the prediction's bytes as they are (no re-encoding),
  and answers ``D`` and ``F``. The short user message and the structured-output schema are
  ours (HarnessIR's user message is in its code, not its prompt files).

``GGT_JUDGE_PROMPT_URL`` replaces a fetched prompt's base URL (a mirror, or a local server in tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from ..errors import GGTError
from ..hashing import file_sha256
from ..synth import df_judge

PROMPTS = ("ggt", "harnessir")
HARNESSIR_ROLES = ("core", "types", "intent")       # the three files of prompts/df/
HARNESSIR_PLACEHOLDERS = ("{{TASK_TYPE}}", "{{USER_INTENT}}", "{{TASK_BLOCK}}")
HARNESSIR_KEYS = ("D", "F")
# Ours: what goes beside the two pictures (HarnessIR's own user message lives in its code).
HARNESSIR_USER = ("Picture 1 is the degraded input photo and picture 2 the restoration result made "
                  "from it. Score D and F from 0 to 100 as the instructions say, and answer with "
                  "the JSON only.")
# Ours: the fields HarnessIR's prompt asks for, as structured output (D and F required).
_SCORE = {"type": "integer", "minimum": 0, "maximum": 100}
HARNESSIR_SCHEMA = {"type": "object", "properties": {
    "which_is_degraded": {"type": "string"}, "changed_at_all": {"type": "boolean"},
    "symptom_before": {"type": "integer"}, "symptom_after": {"type": "integer"},
    "D": _SCORE, "D_why": {"type": "string"}, "scene_replaced": {"type": "boolean"},
    "violations": {"type": "array", "items": {"type": "object", "properties": {
        "property": {"type": "string"}, "where": {"type": "string"}, "what_changed": {"type": "string"}}}},
    "F": _SCORE, "F_why": {"type": "string"}, "notes": {"type": "string"}},
    "required": ["D", "F"]}
_MARKER = re.compile(r"^### \[\[(\w+)\]\] ###$")


class JudgeError(GGTError):
    """The judge cannot run as asked: a bad option, a protocol without a judge, a prompt file that
    cannot be fetched or is not the pinned one."""


@dataclass(frozen=True)
class Request:
    """One call's content: pictures in order, the text beside them, an optional system instruction."""

    images: tuple[tuple[bytes, str], ...]
    text: str
    system: str | None = None

    def sha256(self) -> str:
        """The text sent (system and user): with the prompt's sha256 and the images' it keys the call."""
        return hashlib.sha256(json.dumps([self.system, self.text]).encode()).hexdigest()


@dataclass(frozen=True)
class Prompt:
    name: str
    sha256: str
    keys: tuple[str, str]                # the answer's fields for D and F
    reason_keys: tuple[str, ...]
    schema: dict
    files: tuple[dict, ...] = ()         # fetched prompt files: {role, url, sha256}
    systems: dict | None = None          # harnessir: GGT category -> system instruction

    def request(self, category: str, lq: bytes, pred: bytes) -> Request:
        from .decode import decode_rgb8

        if self.systems is None:
            picture = df_judge.side_by_side(decode_rgb8(lq, "input"), decode_rgb8(pred, "prediction"))
            return Request(((picture, "image/png"),), df_judge.JUDGE_INSTRUCTION)
        from ..synth.inputs import mime_of

        return Request(((lq, mime_of(lq)), (pred, mime_of(pred))), HARNESSIR_USER, self.systems[category])

    def describe(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "files": list(self.files)}


def section(protocol) -> dict:
    """The protocol's ``judge:`` mapping, checked for the parts every prompt needs."""
    judge = protocol.raw.get("judge")
    where = f"{protocol.source or protocol.name}: judge"
    if not isinstance(judge, dict):
        raise JudgeError(f"protocol {protocol.name!r} pins no VLM judge (no judge: section in "
                         f"{protocol.source}); use --protocol ggt, or add one")
    if not isinstance(judge.get("models"), dict) or not isinstance(judge.get("prompts"), dict):
        raise JudgeError(f"{where}: needs models: {{PROVIDER: MODEL}} and prompts: {{NAME: ...}}")
    return judge


def load(protocol, name: str, store: str) -> Prompt:
    """The prompt ``name`` as ``protocol`` pins it; HarnessIR's files are fetched into ``store``."""
    judge = section(protocol)
    where = f"{protocol.source or protocol.name}: judge.prompts.{name}"
    spec = judge["prompts"].get(name)
    if name not in PROMPTS or not isinstance(spec, dict):
        raise JudgeError(f"--judge-prompt {name!r}: protocol {protocol.name!r} pins "
                         f"{', '.join(sorted(judge['prompts']))}; expected one of {', '.join(PROMPTS)}")
    if name == "ggt":
        return _ggt(spec, where)
    return _harnessir(spec, where, store)


def _ggt(spec: dict, where: str) -> Prompt:
    sha = df_judge.instruction_sha256()
    if spec.get("name") != df_judge.GGT_PROMPT or spec.get("sha256") != sha:
        raise JudgeError(f"{where}: pins {spec.get('name')!r} sha256 {spec.get('sha256')!r}, but this "
                         f"ggt-100k's prompt is {df_judge.GGT_PROMPT!r} sha256 {sha}; a protocol pins the "
                         "prompt its scores were made with: use the ggt-100k that matches it")
    return Prompt(df_judge.GGT_PROMPT, sha, df_judge.GGT_KEYS, ("reason",), df_judge.JUDGE_SCHEMA)


def _harnessir(spec: dict, where: str, store: str) -> Prompt:
    try:
        base = (os.environ.get("GGT_JUDGE_PROMPT_URL") or spec["base_url"]).rstrip("/")
        files = [{"role": r, "url": f"{base}/{spec['files'][r]['path']}", "sha256": spec["files"][r]["sha256"]}
                 for r in HARNESSIR_ROLES]
        types = dict(spec["types"])
        name = str(spec["name"])
    except (KeyError, TypeError, ValueError) as e:
        raise JudgeError(f"{where}: needs name, base_url, files: {{core|types|intent: {{path, sha256}}}} "
                         f"and types: {{CATEGORY: TYPE}} ({type(e).__name__}: {e})") from None
    texts = {f["role"]: _fetched(f, os.path.join(store, name), where) for f in files}
    systems = {cat: _system(texts, kind, files) for cat, kind in types.items()}
    sha = hashlib.sha256(json.dumps([[f["sha256"] for f in files], HARNESSIR_USER, HARNESSIR_SCHEMA],
                                    sort_keys=True).encode()).hexdigest()
    return Prompt(name, sha, HARNESSIR_KEYS, ("D_why", "F_why"), HARNESSIR_SCHEMA, tuple(files), systems)


def _fetched(f: dict, folder: str, where: str) -> str:
    """The file's text, downloaded once into ``folder`` and checked against its pinned sha256."""
    from .download import download

    path = os.path.join(folder, os.path.basename(f["url"]))
    if not (os.path.isfile(path) and file_sha256(path) == f["sha256"]):
        os.makedirs(folder, exist_ok=True)
        download(f["url"], path, f["sha256"])       # a wrong file is not kept, and the error names it
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _without_comments(text: str) -> str:
    """HarnessIR's prompt files comment with '#' lines; the block markers also start with '#'."""
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("#") or _MARKER.match(ln.strip())).strip()


def _blocks(text: str) -> dict[str, str]:
    blocks: dict[str, list[str]] = {}
    current = None
    for line in _without_comments(text).splitlines():
        m = _MARKER.match(line.strip())
        if m:
            current = blocks.setdefault(m.group(1), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in blocks.items()}


def _system(texts: dict[str, str], kind: str, files: list[dict]) -> str:
    """The system instruction for one degradation type: the core with the type's blocks filled in."""
    url = {f["role"]: f["url"] for f in files}
    core = _without_comments(texts["core"])
    missing = [p for p in HARNESSIR_PLACEHOLDERS if p not in core]
    if missing:
        raise JudgeError(f"{url['core']}: has no {', '.join(missing)}; not HarnessIR's df_core.txt")
    fills: dict[str, Any] = {}
    for role in ("types", "intent"):
        block = _blocks(texts[role]).get(kind)
        if block is None:
            raise JudgeError(f"{url[role]}: has no [[{kind}]] block, which the protocol's judge types map to")
        fills[role] = block
    return (core.replace("{{TASK_TYPE}}", kind).replace("{{USER_INTENT}}", fills["intent"])
            .replace("{{TASK_BLOCK}}", fills["types"]))
