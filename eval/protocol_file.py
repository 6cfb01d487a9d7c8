"""Reading a protocol file: bounded in size and expansion, regular files only, ``include:`` merged.

A protocol names a file the user chose, and includes name more; each is untrusted
input. Every read is capped before YAML sees it, aliases are counted before the
document is built, and includes are followed by real path so that no spelling
of a cycle loops.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from ..errors import GGTError

# Shipped protocols are about 4 KB. Both caps leave ~100x room and keep a hostile file (a
# billion-laughs alias bomb is 0.5 KB) from reaching json.dumps in sha256(), which expands it.
MAX_PROTOCOL_BYTES = 512 * 1024
MAX_EXPANDED = 1024 * 1024


class ProtocolError(GGTError):
    """A protocol file is malformed, or asks for something this suite cannot do."""


def _read_capped(path: str) -> str:
    """The file's text, refusing what is not a regular file or is larger than MAX_PROTOCOL_BYTES."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ProtocolError(f"{path}: a protocol must be a regular file")
            data = f.read(MAX_PROTOCOL_BYTES + 1)
        if len(data) > MAX_PROTOCOL_BYTES:
            raise ProtocolError(f"{path}: larger than the {MAX_PROTOCOL_BYTES // 1024} KiB a protocol "
                                "file may be")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProtocolError(f"{path}: cannot read protocol ({e})") from None


def _expanded_size(root: yaml.Node, path: str) -> int:
    """What the document becomes once every alias is expanded: nodes plus scalar characters.

    Counted on the node graph, where an alias is one shared node, so a billion-laughs
    file is measured in microseconds and refused before it is ever expanded.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_:
            raise ProtocolError(f"{path}: a YAML alias refers to its own anchor (recursive data)")
        open_.add(id(node))
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1 + len(node.value)
        open_.discard(id(node))
        sizes[id(node)] = min(total, MAX_EXPANDED + 1)   # past the cap, how far past does not matter
        return sizes[id(node)]

    return size(root)


def _parse(text: str, path: str) -> Any:
    """``yaml.safe_load``, refusing documents whose aliases expand past MAX_EXPANDED."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, path) > MAX_EXPANDED:
            raise ProtocolError(f"{path}: expands to more than {MAX_EXPANDED:,} nodes and characters "
                                "(YAML aliases repeat data); a protocol is a few KB, write it out")
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ProtocolError(f"{path}: cannot read protocol ({e})") from None
    except RecursionError:
        raise ProtocolError(f"{path}: nested too deeply to be a protocol") from None
    finally:
        loader.dispose()


def read_merged(path: str, seen: tuple[str, ...] = ()) -> dict:
    """The protocol at ``path`` as a mapping, with its ``include:`` chain merged in."""
    # Real paths: 'a.yaml', './a.yaml' and a symlink to it are one file, and one cycle.
    real = os.path.realpath(path)
    if real in seen:
        raise ProtocolError(f"{path}: include cycle ({' -> '.join(seen + (real,))})")
    data = _parse(_read_capped(path), path)
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol is a YAML mapping")
    parent = data.pop("include", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ProtocolError(f"{path}: include must be one file name (a string), got {parent!r}")
    base = read_merged(os.path.join(os.path.dirname(path), parent), seen + (real,))
    # Child keys replace the parent's; 'inputs', 'metadata' and 'metrics' merge one level deep
    # (a child's metric replaces the parent's metric of that name whole; 'name: null' drops it),
    # so a variant restates only what it changes and follows the parent in the rest.
    for key, value in data.items():
        if key in ("inputs", "metadata", "metrics") and isinstance(value, dict) \
                and isinstance(base.get(key, {}), dict):
            base[key] = {k: v for k, v in {**base.get(key, {}), **value}.items()
                         if v is not None or key != "metrics"}
        else:
            base[key] = value
    return base
