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
import stat
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import GGTError
from ..hashing import file_sha256 as shard_file_sha256
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
    """Point every store inside ``path`` (for this process and the ones it starts).

    The environment is what torch.hub, huggingface_hub and pyiqa read when they are imported
    later; a module already imported has computed its folder and is pointed directly. So
    ``ggt weights list`` never imports torch or pyiqa (2-4 s of CPU) just to name folders.
    """
    path = os.path.abspath(path)
    hub = os.path.join(path, "torch", "hub")
    hf_cache = os.path.join(path, "huggingface", "hub")
    os.environ["TORCH_HOME"] = os.path.join(path, "torch")
    os.environ["HF_HUB_CACHE"] = hf_cache
    torch_hub: Any = sys.modules.get("torch.hub")
    if torch_hub is not None:
        torch_hub.set_dir(hub)
    hf_constants: Any = sys.modules.get("huggingface_hub.constants")
    if hf_constants is not None:
        hf_constants.HF_HUB_CACHE = hf_cache
    download_util: Any = sys.modules.get("pyiqa.utils.download_util")
    if download_util is not None:       # it computes its folder once, at import
        download_util.DEFAULT_CACHE_DIR = os.path.join(hub, "pyiqa")


def torch_hub_dir() -> str:
    """``torch.hub.get_dir()``, without importing torch when nothing has yet.

    Until torch.hub is imported no ``set_dir`` can have run, so the folder is the one its
    ``get_dir`` derives from the environment: $TORCH_HOME/hub, $TORCH_HOME defaulting to
    $XDG_CACHE_HOME/torch and that to ~/.cache/torch (torch/hub.py ``_get_torch_home``).
    """
    if (torch_hub := sys.modules.get("torch.hub")) is not None:
        return torch_hub.get_dir()
    xdg = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return os.path.join(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(xdg, "torch"))), "hub")


def afine_clip_in_store() -> None:
    """Make pyiqa's AFINE load OpenAI CLIP from the ``clip`` store, as CLIPIQA does.

    Its own loader (archs/afineclip_model.py) looks only in ~/.cache/clip, where neither
    ``--weights-dir`` nor ``ggt weights list`` would find it. The file is the same ViT-B-32.pt,
    checked by the sha256 in its URL either way.
    """
    from pyiqa.archs import afine_arch, afineclip_model

    def load(name, *args, **kwargs):
        return afineclip_model.load(name, *args, **{**kwargs, "download_root": store_dir("clip")})

    afine_arch.load = load


def _look_in_stores(protocol: Protocol) -> None:
    """Before any metric of ``protocol`` is built: pyiqa looks for each file where it is checked."""
    if any(m.pyiqa.startswith("afine") for m in protocol.metrics):
        afine_clip_in_store()


def store_dir(store: str) -> str:
    import huggingface_hub.constants as hf_constants  # cheap, unlike torch.hub

    if store == "timm":
        return hf_constants.HF_HUB_CACHE
    return os.path.join(torch_hub_dir(), {"torchvision": "checkpoints"}.get(store, store))


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
    # lexists: a broken link or a FIFO at that path is named as wrong, not reported as absent
    return path if os.path.lexists(path) else None


def not_a_file(path: str) -> str | None:
    """Why ``path`` cannot be a weight file, or None for a regular file (or a link to one).

    Hashing a FIFO or /dev/zero never ends, so only regular files are ever opened.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return "is " + next((k for test, k in kinds if test(mode)), "not a regular file") + ", not a regular file"


def _niqe_parameters(path: str) -> str | None:
    """What is wrong with a NIQE model file, or None. Its publisher gives no hash, so the
    content is checked instead: pyiqa's NIQE (archs/niqe_arch.py) reads the 36 means
    ``mu_prisparam`` (raveled) and the 36x36 ``cov_prisparam`` from it with scipy's loadmat;
    any other file of that name would fail inside pyiqa, after the work had begun."""
    import numpy as np
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # noqa: BLE001 (scipy raises many types for a file that is not a .mat)
        return f"is not a MATLAB .mat file ({type(e).__name__}: {e})"
    for key, size, shape in (("mu_prisparam", 36, None), ("cov_prisparam", 36 * 36, (36, 36))):
        value = np.asarray(mat.get(key, []))
        if (value.size != size or (shape and value.shape != shape)
                or not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value))):
            return (f"holds no finite numeric {key} of {'36x36' if shape else '36'} values, "
                    "so it is not NIQE's model parameters")
    return None


# Checks of content for files whose publisher gives no hash to pin (by file name).
_CONTENT_CHECKS = {"niqe_modelparameters.mat": _niqe_parameters}


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
        wrong = not_a_file(path)
        if wrong:
            problems.append(f"{path}: {wrong}; metric {spec.name!r} needs the file {w.file} there "
                            f"(source: {_source(w)})")
            continue
        digest = file_sha256(path)
        want = w.sha256 or w.sha256_prefix
        if want and not digest.startswith(want):
            problems.append(f"{path}: sha256 {digest[:16]}... does not match the protocol's "
                            f"{want[:16]} for metric {spec.name!r}; delete it and fetch again")
            continue
        check = None if want else _CONTENT_CHECKS.get(os.path.basename(w.file))
        wrong = check(path) if check else None
        if wrong:
            problems.append(f"{path}: {wrong} (metric {spec.name!r}); delete it and fetch again "
                            f"(source: {_source(w)})")
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
    _look_in_stores(protocol)
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
    from .download import resumable_torch_downloads
    from .metrics import MetricError, build_pyiqa

    _look_in_stores(protocol)
    with resumable_torch_downloads() as failed:     # torch.hub's own left truncated files in place
        for spec in protocol.metrics:
            if spec.weights and resolve(spec)[1]:
                try:
                    build_pyiqa(spec, device)
                except MetricError:
                    if failed:          # the download's own message names the URL and the file
                        raise failed[-1] from None
                    raise
    return require(protocol)
