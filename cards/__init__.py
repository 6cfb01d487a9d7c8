"""Card templates shipped with ggt-100k (installed as ``ggt_dataset.cards``)."""

from importlib import resources


def template(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
