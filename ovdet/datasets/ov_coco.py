"""OV-COCO category metadata, split helpers and a COCO dataset whose classes come from its json.

OV-COCO (Bansal et al. 2018): 48 base + 17 novel of COCO's 80 classes; the other 15 are not
evaluated. Category ids are COCO's own, so predictions can go to the official tools.
"""
from __future__ import annotations

from mmengine.logging import print_log

import copy
import os.path as osp
from collections.abc import Iterable, Sequence

# (COCO category id, name) for COCO's 80 thing classes, in id order.
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"),
    (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"),
    (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"), (32, "tie"),
    (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"), (37, "sports ball"),
    (38, "kite"), (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"), (42, "surfboard"),
    (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"),
    (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"),
    (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"),
    (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"),
    (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)
COCO_NAME_TO_ID: dict[str, int] = {n: i for i, n in COCO_CATEGORIES}

OV_COCO_NOVEL_CLASSES: tuple[str, ...] = (
    "airplane", "bus", "cat", "dog", "cow", "elephant", "umbrella", "tie", "snowboard", "skateboard",
    "cup", "knife", "cake", "couch", "keyboard", "sink", "scissors",
)
OV_COCO_BASE_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "train", "truck", "boat", "bench", "bird", "horse", "sheep",
    "bear", "zebra", "giraffe", "backpack", "handbag", "suitcase", "frisbee", "skis", "kite", "surfboard",
    "bottle", "fork", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "pizza", "donut", "chair", "bed", "toilet", "tv", "laptop", "mouse", "remote", "microwave", "oven",
    "toaster", "refrigerator", "book", "clock", "vase", "toothbrush",
)
OV_COCO_UNEVALUATED_CLASSES: tuple[str, ...] = (
    "traffic light", "fire hydrant", "stop sign", "parking meter", "sports ball", "baseball bat",
    "baseball glove", "tennis racket", "wine glass", "hot dog", "potted plant", "dining table",
    "cell phone", "teddy bear", "hair drier",
)
# The 65 evaluated classes in COCO id order (the order of the prepared val json).
OV_COCO_CLASSES: tuple[str, ...] = tuple(
    n for _, n in COCO_CATEGORIES if n in OV_COCO_BASE_CLASSES or n in OV_COCO_NOVEL_CLASSES)
OV_COCO_BASE_IDS: tuple[int, ...] = tuple(COCO_NAME_TO_ID[n] for n in OV_COCO_BASE_CLASSES)
OV_COCO_NOVEL_IDS: tuple[int, ...] = tuple(COCO_NAME_TO_ID[n] for n in OV_COCO_NOVEL_CLASSES)

VAL_PROTOCOLS: tuple[str, ...] = ("all", "ovr")


class OVCocoFormatError(ValueError):
    """A COCO-format dict is missing what the OV-COCO split needs."""


def category_splits(categories: Iterable[dict], novel_classes: Sequence[str] | None = None,
                    base_classes: Sequence[str] | None = None) -> dict[str, str]:
    """Map category name -> ``'base'`` / ``'novel'`` (categories in neither are left out).

    Explicit ``novel_classes`` (and optionally ``base_classes``) win; without them the ``split`` tag
    of each category is used. With only ``novel_classes``, every other category counts as base.
    """
    cats = list(categories)
    if novel_classes is not None:
        novel = set(novel_classes)
        base = set(base_classes) if base_classes is not None else {c["name"] for c in cats} - novel
        return {c["name"]: ("novel" if c["name"] in novel else "base")
                for c in cats if c["name"] in novel or c["name"] in base}
    return {c["name"]: c["split"] for c in cats if c.get("split") in ("base", "novel")}


def _check_coco(coco: dict, what: str) -> None:
    if not isinstance(coco, dict):
        raise OVCocoFormatError(f"{what}: expected a JSON object with images/annotations/categories, "
                                f"got {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise OVCocoFormatError(f"{what}: no '{key}' key (is this a COCO instances file?)")
        if not isinstance(coco[key], list):
            raise OVCocoFormatError(f"{what}: '{key}' is {type(coco[key]).__name__}, expected a list")
    for i, c in enumerate(coco["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise OVCocoFormatError(f"{what}: categories[{i}] has no id/name")
    for i, a in enumerate(coco["annotations"]):
        if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
            raise OVCocoFormatError(f"{what}: annotations[{i}] has no image_id/category_id")
    for i, im in enumerate(coco["images"]):
        if not isinstance(im, dict) or "id" not in im:
            raise OVCocoFormatError(f"{what}: images[{i}] has no id")


def _ov_categories(coco: dict, what: str, names: Sequence[str]) -> list[dict]:
    """The file's categories for ``names`` (file ids kept, file order kept) tagged base/novel."""
    by_name = {c["name"]: c for c in coco["categories"]}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise OVCocoFormatError(
            f"{what}: {len(missing)} OV-COCO classes are not among its categories: {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''} (expected COCO 2017 instances)")
    keep = set(names)
    out = []
    for c in coco["categories"]:
        if c["name"] in keep:
            c = dict(c)
            c["split"] = "novel" if c["name"] in OV_COCO_NOVEL_CLASSES else "base"
            out.append(c)
    return out


def nonstandard_category_ids(coco: dict) -> list[tuple[str, int, int]]:
    """(name, id in file, COCO id) for categories whose id differs from COCO 2017's."""
    return [(c["name"], c["id"], COCO_NAME_TO_ID[c["name"]]) for c in coco["categories"]
            if c["name"] in COCO_NAME_TO_ID and COCO_NAME_TO_ID[c["name"]] != c["id"]]


def make_ov_coco_train(coco: dict, what: str = "train json", categories: str = "base") -> dict:
    """OV-COCO train set from COCO instances: only base-class annotations (crowd ones included), and
    only the images holding at least one. ``categories='base'`` lists the 48 base categories,
    ``'ov65'`` all 65 (novel ones then have no annotation). Other keys of ``coco`` are kept."""
    _check_coco(coco, what)
    if categories not in ("base", "ov65"):
        raise ValueError(f"categories must be 'base' or 'ov65', got {categories!r}")
    names = OV_COCO_BASE_CLASSES if categories == "base" else OV_COCO_CLASSES
    cats = _ov_categories(coco, what, names)
    base_ids = {c["id"] for c in cats if c["split"] == "base"}
    anns = [a for a in coco["annotations"] if a["category_id"] in base_ids]
    keep = {a["image_id"] for a in anns}
    out = {k: v for k, v in coco.items() if k not in ("images", "annotations", "categories")}
    out.update(images=[im for im in coco["images"] if im["id"] in keep], annotations=anns, categories=cats)
    return out


def make_ov_coco_val(coco: dict, protocol: str = "all", what: str = "val json") -> dict:
    """OV-COCO val set: the annotations of the 65 classes, categories tagged base/novel.

    ``protocol='all'`` keeps every image (the CLIM/BARON reference: images without a base/novel
    object still count for false positives); ``'ovr'`` keeps only images holding one of the 65
    (OVR-CNN's split)."""
    _check_coco(coco, what)
    if protocol not in VAL_PROTOCOLS:
        raise ValueError(f"val protocol must be one of {VAL_PROTOCOLS}, got {protocol!r}")
    cats = _ov_categories(coco, what, OV_COCO_CLASSES)
    ids = {c["id"] for c in cats}
    anns = [a for a in coco["annotations"] if a["category_id"] in ids]
    if protocol == "ovr":
        keep = {a["image_id"] for a in anns}
        images = [im for im in coco["images"] if im["id"] in keep]
    else:
        images = list(coco["images"])
    out = {k: v for k, v in coco.items() if k not in ("images", "annotations", "categories")}
    out.update(images=images, annotations=anns, categories=cats)
    # Read back by OVCocoMetric, which names the protocol in its log.
    out["ov_coco"] = {"val_protocol": protocol}
    return out


def split_counts(coco: dict) -> dict[str, int]:
    """Image / annotation counts of a split, by base / novel (for the prepare tool's report)."""
    split_of = {c["id"]: c.get("split", "untagged") for c in coco["categories"]}
    counts = {"images": len(coco["images"]), "annotations": len(coco["annotations"]),
              "categories": len(coco["categories"])}
    for s in ("base", "novel"):
        anns = [a for a in coco["annotations"] if split_of.get(a["category_id"]) == s]
        counts[f"{s}_categories"] = sum(1 for v in split_of.values() if v == s)
        counts[f"{s}_annotations"] = len(anns)
        counts[f"{s}_images"] = len({a["image_id"] for a in anns})
    annotated = {a["image_id"] for a in coco["annotations"]}
    counts["images_without_annotations"] = counts["images"] - len(annotated)
    return counts


# ----------------------------------------------------------------------------------------------
# the dataset (needs mmdet; the helpers above do not)
# ----------------------------------------------------------------------------------------------
try:
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS
    from mmengine.fileio import get_local_path
except ImportError:  # pragma: no cover - the prepare tools work without the OpenMMLab stack
    CocoDataset = None  # type: ignore[assignment,misc]


def _palette(n: int) -> list[tuple[int, int, int]]:
    # Golden-ratio hue steps: deterministic, distinct colours for any class count.
    import colorsys

    return [tuple(int(255 * v) for v in colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.95))
            for i in range(n)]


if CocoDataset is not None:

    @DATASETS.register_module()
    class OVCocoDataset(CocoDataset):
        """COCO-format dataset whose classes are read from the annotation file.

        ``metainfo['classes']`` becomes the file's category names in file order (unless the config
        gives ``metainfo=dict(classes=...)``, which then selects and orders the classes, as in
        ``CocoDataset``). The file's ``split`` tags become ``metainfo['base_classes']`` /
        ``metainfo['novel_classes']`` (and ``category_splits``), which :class:`OVCocoMetric` reads. The
        same class serves OV-COCO and any COCO-format file with ``split`` tags.
        """

        METAINFO: dict = {"classes": (), "palette": []}

        def __init__(self, *args, metainfo: dict | None = None, **kwargs) -> None:
            self._classes_from_config = bool(metainfo and metainfo.get("classes"))
            super().__init__(*args, metainfo=metainfo, **kwargs)

        def load_data_list(self) -> list[dict]:
            """Read the json, set the class metainfo from its categories, and parse the images."""
            with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
                self.coco = self.COCOAPI(local_path)
            cats = self.coco.dataset.get("categories", [])
            if not self._classes_from_config:
                self._metainfo["classes"] = tuple(c["name"] for c in cats)
            classes = self._metainfo["classes"]
            splits = category_splits(cats)
            self._metainfo["category_splits"] = {n: splits[n] for n in classes if n in splits}
            self._metainfo["base_classes"] = tuple(n for n in classes if splits.get(n) == "base")
            self._metainfo["novel_classes"] = tuple(n for n in classes if splits.get(n) == "novel")
            if len(self._metainfo.get("palette") or []) < len(classes):
                self._metainfo["palette"] = _palette(len(classes))

            name_to_id = {c["name"]: c["id"] for c in cats}
            missing = [n for n in classes if n not in name_to_id]
            if missing and len(missing) == len(classes):
                raise ValueError(f"{self.ann_file}: none of the configured classes {list(classes)[:10]} "
                                 f"are categories of this file")
            if missing:
                # A base-only train file lacks the novel categories, yet the detector's label space
                # (and so the dataset's) must hold every class: they become classes without boxes.
                print_log(f"{self.ann_file}: {len(missing)} configured classes have no category in this "
                          f"file and get no boxes: {missing[:10]}", logger="current")
            # In the order of `classes`, not of the file (CocoDataset relies on the two agreeing);
            # classes absent from the file get ids no annotation can carry.
            self.cat_ids = [name_to_id.get(n, -1 - i) for i, n in enumerate(classes)]
            self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
            self.cat_img_map = copy.deepcopy(self.coco.cat_img_map)

            data_list = []
            total_ann_ids: list[int] = []
            for img_id in self.coco.get_img_ids():
                raw_img_info = self.coco.load_imgs([img_id])[0]
                raw_img_info["img_id"] = img_id
                ann_ids = self.coco.get_ann_ids(img_ids=[img_id])
                raw_ann_info = self.coco.load_anns(ann_ids)
                total_ann_ids.extend(ann_ids)
                data_list.append(
                    self.parse_data_info({"raw_ann_info": raw_ann_info, "raw_img_info": raw_img_info}))
            if self.ANN_ID_UNIQUE and len(set(total_ann_ids)) != len(total_ann_ids):
                raise ValueError(f"annotation ids in '{self.ann_file}' are not unique")
            del self.coco
            return data_list

else:  # pragma: no cover
    OVCocoDataset = None  # type: ignore[assignment,misc]


def read_class_names(path: str) -> list[str]:
    """Class names from a one-name-per-line text file (blank lines ignored)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"class-name file not found: {path}")
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]
