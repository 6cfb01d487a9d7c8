"""The files a protocol's learned metrics need: where pyiqa looks for them, and whether they are there.

pyiqa fetches its files itself, into four places (its "stores"):
  pyiqa        <torch hub dir>/pyiqa          its own checkpoints (Hub repo chaofengc/IQA-PyTorch-Weights)
  torchvision  <torch hub dir>/checkpoints    ImageNet backbones (LPIPS, DISTS)
  clip         <torch hub dir>/clip           OpenAI CLIP (CLIPIQA)
  timm         <Hub cache>/models--timm--...  timm backbones (MANIQA, TOPIQ)
``ggt weights fetch`` lets pyiqa download them (its own mechanism, nothing else);
``ggt score`` never downloads: a missing file is an error that names it and where
to put it. ``--weights-dir DIR`` points all four stores inside DIR, so pre-placed
files work offline.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from ..errors import GGTError
from ..shards import file_sha256 as shard_file_sha256
from .protocol import MetricSpec, Protocol, WeightFile


class MissingWeightsError(GGTError):
    """A metric's files are missing or do not match the protocol's hashes."""


_URLS = {
    "pyiqa": "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/{file}",
    "torchvision": "https://download.pytorch.org/models/{file}",
    "clip": "https://openaipublic.azureedge.net/clip/models/{sha256}/{file}",
    "timm": "https://huggingface.co/{file}",
}


def use_weights_dir(path: str) -> None:
    """Point every store inside ``path`` (for this process and the ones it starts)."""
    import huggingface_hub.constants as hf_constants
    import torch.hub

    path = os.path.abspath(path)
    hub = os.path.join(path, "torch", "hub")
    torch.hub.set_dir(hub)
    os.environ["TORCH_HOME"] = os.path.join(path, "torch")
    hf_cache = os.path.join(path, "huggingface", "hub")
    hf_constants.HF_HUB_CACHE = os.environ["HF_HUB_CACHE"] = hf_cache
    from pyiqa.utils import download_util  # it computes its cache dir once, at import

    download_util.DEFAULT_CACHE_DIR = os.path.join(hub, "pyiqa")


def store_dir(store: str) -> str:
    import huggingface_hub.constants as hf_constants
    import torch.hub

    if store == "timm":
        return hf_constants.HF_HUB_CACHE
    return os.path.join(torch.hub.get_dir(), {"torchvision": "checkpoints"}.get(store, store))


def expected_path(w: WeightFile) -> str:
    if w.store == "timm":        # a Hub repo: any snapshot's weights file will do
        return os.path.join(store_dir("timm"), "models--" + w.file.replace("/", "--"),
                            "snapshots", "<revision>", "model.safetensors")
    return os.path.join(store_dir(w.store), w.file)


def locate(w: WeightFile) -> str | None:
    if w.store == "timm":
        repo = os.path.join(store_dir("timm"), "models--" + w.file.replace("/", "--"))
        found = sorted(glob.glob(os.path.join(glob.escape(repo), "snapshots", "*", "model.safetensors"))
                       + glob.glob(os.path.join(glob.escape(repo), "snapshots", "*", "pytorch_model.bin")))
        return found[0] if found else None
    path = expected_path(w)
    return path if os.path.isfile(path) else None


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:          # checkpoints are hundreds of MB: hash each once per process
        _HASHES[key] = shard_file_sha256(path)
    return _HASHES[key]


@dataclass(frozen=True)
class Resolved:
    metric: str
    weight: WeightFile
    path: str
    sha256: str


def _source(w: WeightFile) -> str:
    return _URLS[w.store].format(file=w.file, sha256=w.sha256 or "")


def resolve(spec: MetricSpec) -> tuple[list[Resolved], list[str]]:
    """The files of ``spec`` that are in place (hash-checked), and a message per problem."""
    found, problems = [], []
    for w in spec.weights:
        path = locate(w)
        if path is None:
            problems.append(f"metric {spec.name!r} ({spec.pyiqa}) needs {w.file}: put it at "
                            f"{expected_path(w)} (source: {_source(w)})")
            continue
        digest = file_sha256(path)
        want = w.sha256 or w.sha256_prefix
        if want and not digest.startswith(want):
            problems.append(f"{path}: sha256 {digest[:16]}... does not match the protocol's "
                            f"{want[:16]} for metric {spec.name!r}; delete it and fetch again")
            continue
        found.append(Resolved(spec.name, w, path, digest))
    return found, problems


def cli_name(protocol: Protocol) -> str:
    from .protocol import PROTOCOL_DIR

    shipped = os.path.dirname(protocol.source) == PROTOCOL_DIR
    return protocol.name if shipped else protocol.source


def require(protocol: Protocol) -> dict[str, list[Resolved]]:
    """Every weight file of every metric, or one error listing all that are missing."""
    out, problems = {}, []
    for spec in protocol.metrics:
        out[spec.name], p = resolve(spec)
        problems += p
    if problems:
        raise MissingWeightsError(
            "missing or mismatched weight files (nothing was scored):\n  " + "\n  ".join(problems)
            + f"\nFetch them with `ggt weights fetch {cli_name(protocol)}` on a machine with internet, "
            "or pre-place them and pass --weights-dir; or leave those metrics out with --metrics.")
    return out


def fetch(protocol: Protocol, device: str = "cpu") -> dict[str, list[Resolved]]:
    """Let pyiqa download each metric's files (building the metric does it), then check them."""
    from .metrics import build_pyiqa

    for spec in protocol.metrics:
        if spec.weights and resolve(spec)[1]:
            build_pyiqa(spec, device)
    return require(protocol)
