import pytest

from ggt_dataset.hub_card import (
    LICENSES,
    SIZE_CATEGORIES,
    TASK_CATEGORIES,
    problems,
    size_category,
)


@pytest.mark.parametrize("n,category", [(0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"),
                                        (103_707, "100K<n<1M"), (10_000_000, "10M<n<100M"),
                                        (200_000_000, "100M<n<1B"), (10**12, "n>1T")])
def test_size_category_covers_the_hubs_whole_list(n, category):
    assert size_category(n) == category


def test_the_card_ggt_writes_passes_and_other_licences_need_both_keys():
    files = ["README.md", "data/rain/train-00000-of-00001.parquet"]
    header = {"pretty_name": "GGT-100K", "license": "cc-by-nc-nd-4.0", "task_categories": ["image-to-image"],
              "size_categories": ["n<1K"],
              "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*/train-*"}]}]}
    assert problems(header, files) == []
    assert {"cc-by-nc-nd-4.0", "other"} <= set(LICENSES) and "image-to-image" in TASK_CATEGORIES
    assert SIZE_CATEGORIES[-1] == "n>1T"
    assert problems({**header, "license": ["mit", "other"], "license_name": "x",
                     "license_link": "https://example.org/x"}, files) == []
    found = problems({**header, "license": "other", "license_name": "x"}, files)
    assert len(found) == 1 and "license_link missing" in found[0]
    # `*` stays within one folder, as datasets resolves data_files (fsspec's glob)
    wrong = {**header, "configs": [{"config_name": "d", "data_files": "data/train-*"}]}
    assert problems(wrong, files) == [("config 'd': data_files 'data/train-*' matches none of the files to "
                                       "upload; run the same `ggt build` again")]
