"""tools/prepare_ov_coco.py and tools/prepare_coco_captions.py on small hand-written COCO files."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# COCO 2017's category ids (80 of 1..90); names come from mmdet's CocoDataset (same order), so the
# test does not read the constants it checks.
COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
            31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
            56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
            85, 86, 87, 88, 89, 90]
NOVEL = {"airplane", "bus", "cat", "dog", "cow", "elephant", "umbrella", "tie", "snowboard", "skateboard",
         "cup", "knife", "cake", "couch", "keyboard", "sink", "scissors"}
UNEVALUATED = {"traffic light", "fire hydrant", "stop sign", "parking meter", "sports ball", "baseball bat",
               "baseball glove", "tennis racket", "wine glass", "hot dog", "potted plant", "dining table",
               "cell phone", "teddy bear", "hair drier"}


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def coco_categories() -> list[dict]:
    from mmdet.datasets import CocoDataset

    names = CocoDataset.METAINFO["classes"]
    assert len(names) == len(COCO_IDS) == 80
    return [{"id": i, "name": n, "supercategory": "x"} for i, n in zip(COCO_IDS, names)]


def _ann(aid: int, img: int, cat: int, crowd: int = 0) -> dict:
    return {"id": aid, "image_id": img, "category_id": cat, "bbox": [1, 2, 30, 40], "area": 1200.0,
            "iscrowd": crowd, "segmentation": [[1, 2, 31, 2, 31, 42]]}


def _coco(categories: list[dict]) -> dict:
    """Images: 1 person+dog | 2 dog only | 3 traffic light only | 4 nothing | 5 crowd person only |
    6 car + hot dog + crowd cat | 7 cake + toothbrush."""
    ids = {c["name"]: c["id"] for c in categories}
    anns = [_ann(11, 1, ids["person"]), _ann(12, 1, ids["dog"]), _ann(21, 2, ids["dog"]),
            _ann(31, 3, ids["traffic light"]), _ann(51, 5, ids["person"], crowd=1), _ann(61, 6, ids["car"]),
            _ann(62, 6, ids["hot dog"]), _ann(63, 6, ids["cat"], crowd=1), _ann(71, 7, ids["cake"]),
            _ann(72, 7, ids["toothbrush"])]
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 100, "width": 120} for i in range(1, 8)]
    return {"info": {"year": 2017}, "licenses": [], "images": images, "annotations": anns,
            "categories": categories}


def test_constants_match_coco(coco_categories: list[dict]) -> None:
    from ovdet.datasets import ov_coco

    assert list(ov_coco.COCO_CATEGORIES) == [(c["id"], c["name"]) for c in coco_categories]
    assert set(ov_coco.OV_COCO_NOVEL_CLASSES) == NOVEL and len(ov_coco.OV_COCO_NOVEL_CLASSES) == 17
    assert set(ov_coco.OV_COCO_UNEVALUATED_CLASSES) == UNEVALUATED
    base = {c["name"] for c in coco_categories} - NOVEL - UNEVALUATED
    assert set(ov_coco.OV_COCO_BASE_CLASSES) == base and len(base) == 48
    assert len(ov_coco.OV_COCO_CLASSES) == 65


@pytest.mark.parametrize("protocol", ["all", "ovr"])
def test_prepare_ov_coco(tmp_path: Path, coco_categories: list[dict], protocol: str, capsys) -> None:
    tool = _load_tool("prepare_ov_coco")
    src = _coco(coco_categories)
    (tmp_path / "train.json").write_text(json.dumps(src))
    (tmp_path / "val.json").write_text(json.dumps(src))
    out = tmp_path / "out"
    assert tool.main(["--train", str(tmp_path / "train.json"), "--val", str(tmp_path / "val.json"),
                      "--out-dir", str(out), "--val-protocol", protocol]) == 0
    log = capsys.readouterr().out
    assert f"val protocol: {protocol}" in log

    train = json.loads((out / "instances_train2017_ovcoco_base.json").read_text())
    assert sorted(a["id"] for a in train["annotations"]) == [11, 51, 61, 72]  # base only, crowd kept
    assert sorted(im["id"] for im in train["images"]) == [1, 5, 6, 7]
    assert len(train["categories"]) == 48 and all(c["split"] == "base" for c in train["categories"])
    assert train["info"] == src["info"]

    val_name = "instances_val2017_ovcoco.json" if protocol == "all" else "instances_val2017_ovcoco_ovr.json"
    val = json.loads((out / val_name).read_text())
    assert sorted(a["id"] for a in val["annotations"]) == [11, 12, 21, 51, 61, 63, 71, 72]
    expect_imgs = [1, 2, 3, 4, 5, 6, 7] if protocol == "all" else [1, 2, 5, 6, 7]
    assert sorted(im["id"] for im in val["images"]) == expect_imgs
    cats = {c["name"]: c for c in val["categories"]}
    assert len(cats) == 65 and not set(cats) & UNEVALUATED
    assert {n for n, c in cats.items() if c["split"] == "novel"} == NOVEL
    assert all(c["split"] == "base" for n, c in cats.items() if n not in NOVEL)
    ids = {c["name"]: c["id"] for c in coco_categories}
    assert all(c["id"] == ids[n] for n, c in cats.items())  # COCO's own ids
    # counts printed per split and per base/novel
    assert "novel: 17 cats, 4 anns in 4 images" in log  # dog x2, crowd cat, cake
    assert set((out / "ov_coco_novel_classes.txt").read_text().split("\n")[:-1]) == NOVEL
    assert len((out / "ov_coco_all_classes.txt").read_text().split("\n")[:-1]) == 65


def test_prepare_ov_coco_errors(tmp_path: Path, coco_categories: list[dict], capsys) -> None:
    tool = _load_tool("prepare_ov_coco")
    assert tool.main(["--val", str(tmp_path / "missing.json"), "--out-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "missing.json" in err and "not found" in err

    bad = tmp_path / "truncated.json"
    bad.write_text(json.dumps(_coco(coco_categories))[:500])
    with pytest.raises(tool.PrepareError, match=r"truncated\.json.*not valid JSON"):
        tool.prepare(None, str(bad), str(tmp_path / "o"))

    no_anns = tmp_path / "no_anns.json"
    no_anns.write_text(json.dumps({"images": [], "categories": coco_categories}))
    with pytest.raises(tool.PrepareError, match=r"no_anns\.json.*'annotations'"):
        tool.prepare(str(no_anns), None, str(tmp_path / "o"))

    other = tmp_path / "other_vocab.json"
    other.write_text(json.dumps({"images": [], "annotations": [],
                                 "categories": [{"id": 1, "name": "aerosol can"}]}))
    with pytest.raises(tool.PrepareError, match=r"other_vocab\.json.*65 OV-COCO classes are not among"):
        tool.prepare(None, str(other), str(tmp_path / "o"))


def test_prepare_coco_captions(tmp_path: Path, capsys) -> None:
    tool = _load_tool("prepare_coco_captions")
    caps = {"images": [{"id": 3, "file_name": "c.jpg", "height": 5, "width": 6},
                       {"id": 1, "file_name": "a.jpg", "height": 5, "width": 6},
                       {"id": 2, "file_name": "b.jpg", "height": 5, "width": 6}],
            "annotations": [{"id": 1, "image_id": 1, "caption": "A dog  on a couch.\n"},
                            {"id": 2, "image_id": 3, "caption": "Two cats."},
                            {"id": 3, "image_id": 1, "caption": "a brown dog sleeping"},
                            {"id": 4, "image_id": 1, "caption": "A dog on a couch."},
                            {"id": 5, "image_id": 2, "caption": "   "}]}
    inst = {"images": caps["images"],
            "categories": [{"id": 18, "name": "dog"}, {"id": 63, "name": "couch"}, {"id": 17, "name": "cat"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 63, "iscrowd": 0},
                            {"id": 2, "image_id": 1, "category_id": 18, "iscrowd": 0},
                            {"id": 3, "image_id": 1, "category_id": 18, "iscrowd": 0},
                            {"id": 4, "image_id": 3, "category_id": 17, "iscrowd": 1}]}
    (tmp_path / "caps.json").write_text(json.dumps(caps))
    (tmp_path / "inst.json").write_text(json.dumps(inst))
    out = tmp_path / "clim.json"
    assert tool.main(["--captions", str(tmp_path / "caps.json"), "--out", str(out),
                      "--instances", str(tmp_path / "inst.json"), "--prefix", "train2017/"]) == 0
    assert "1 dropped (no caption)" in capsys.readouterr().out
    res = json.loads(out.read_text())["images"]
    assert [e["id"] for e in res] == [1, 3]
    assert res[0] == {"id": 1, "file_name": "train2017/a.jpg", "height": 5, "width": 6,
                      "captions": ["A dog on a couch.", "a brown dog sleeping"], "tags": ["dog", "couch"]}
    assert res[1]["captions"] == ["Two cats."] and res[1]["tags"] == []  # crowd boxes give no tag
    # without --instances: no tags key; an instances file passed as captions is a clear error
    assert tool.main(["--captions", str(tmp_path / "caps.json"), "--out", str(out)]) == 0
    assert "tags" not in json.loads(out.read_text())["images"][0]
    assert tool.main(["--captions", str(tmp_path / "inst.json"), "--out", str(out)]) == 2
    assert "image_id/caption" in capsys.readouterr().err
    assert tool.main(["--captions", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_train_with_all_65_categories(coco_categories: list[dict]) -> None:
    from ovdet.datasets.ov_coco import make_ov_coco_train

    train = make_ov_coco_train(_coco(coco_categories), categories="ov65")
    assert len(train["categories"]) == 65
    assert sorted(a["id"] for a in train["annotations"]) == [11, 51, 61, 72]
    assert {c["name"] for c in train["categories"] if c["split"] == "novel"} == NOVEL
