"""Write the OV-COCO detection splits from COCO 2017's official instances files.

    python tools/prepare_ov_coco.py --train data/coco/annotations/instances_train2017.json \\
        --val data/coco/annotations/instances_val2017.json --out-dir data/coco/annotations

Writes (names overridable):
* ``instances_train2017_ovcoco_base.json``: base-class annotations only (crowd ones included);
  images without any base annotation dropped; categories = the 48 base ones tagged ``split: base``
  (``--train-categories ov65`` lists all 65, novel ones without annotations);
* ``instances_val2017_ovcoco.json``: annotations of the 65 OV-COCO classes, categories tagged
  ``split: base|novel``. ``--val-protocol all`` (default, the CLIM/BARON reference) keeps all 5000
  images; ``--val-protocol ovr`` keeps only images holding one of the 65 (OVR-CNN's split), written
  as ``instances_val2017_ovcoco_ovr.json``;
* ``ov_coco_{all,base,novel}_classes.txt``: class-name lists for the text embeddings.
COCO's category ids are kept, so predictions can be scored by the official tools.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from ovdet.datasets.json_files import PrepareError, load_coco_json, write_json
from ovdet.datasets.ov_coco import (
    OV_COCO_BASE_CLASSES,
    OV_COCO_CLASSES,
    OV_COCO_NOVEL_CLASSES,
    VAL_PROTOCOLS,
    OVCocoFormatError,
    make_ov_coco_train,
    make_ov_coco_val,
    nonstandard_category_ids,
    split_counts,
)


def _report(name: str, counts: dict) -> str:
    return (f"  {name}: {counts['images']} images, {counts['annotations']} annotations, "
            f"{counts['categories']} categories | base: {counts['base_categories']} cats, "
            f"{counts['base_annotations']} anns in {counts['base_images']} images | novel: "
            f"{counts['novel_categories']} cats, {counts['novel_annotations']} anns in "
            f"{counts['novel_images']} images | images without annotations: "
            f"{counts['images_without_annotations']}")


def prepare(train: str | None, val: str | None, out_dir: str, val_protocol: str = "all",
            train_categories: str = "base", out_train: str | None = None, out_val: str | None = None,
            log=print) -> dict[str, str]:
    """Do the conversion; returns the written paths. Raises :class:`PrepareError` on bad input."""
    if train is None and val is None:
        raise PrepareError("nothing to do: give --train and/or --val")
    out = Path(out_dir)
    written: dict[str, str] = {}
    log(f"OV-COCO: {len(OV_COCO_BASE_CLASSES)} base + {len(OV_COCO_NOVEL_CLASSES)} novel classes")
    for role, path in (("train", train), ("val", val)):
        if path is None:
            continue
        coco = load_coco_json(path, f"--{role}")
        try:
            if role == "train":
                split = make_ov_coco_train(coco, what=str(path), categories=train_categories)
                dst = Path(out_train) if out_train else out / "instances_train2017_ovcoco_base.json"
            else:
                split = make_ov_coco_val(coco, protocol=val_protocol, what=str(path))
                default = ("instances_val2017_ovcoco.json" if val_protocol == "all"
                           else f"instances_val2017_ovcoco_{val_protocol}.json")
                dst = Path(out_val) if out_val else out / default
        except OVCocoFormatError as e:
            raise PrepareError(str(e)) from None
        odd = nonstandard_category_ids(coco)
        if odd:
            log(f"  warning: {path}: {len(odd)} categories do not carry COCO 2017's ids, e.g. "
                f"{odd[:3]} (name, file id, COCO id); the file's ids are kept")
        src_n = (len(coco["images"]), len(coco["annotations"]))
        write_json(split, dst)
        written[role] = str(dst)
        if role == "val":
            proto = ("all: every val image kept (CLIM/BARON reference protocol)" if val_protocol == "all"
                     else "ovr: only images holding one of the 65 classes (OVR-CNN protocol)")
            log(f"val protocol: {proto}")
        log(f"{role}: {path} ({src_n[0]} images, {src_n[1]} annotations) -> {dst}")
        log(_report(role, split_counts(split)))
    lists = (("all", OV_COCO_CLASSES), ("base", OV_COCO_BASE_CLASSES), ("novel", OV_COCO_NOVEL_CLASSES))
    for key, names in lists:
        p = out / f"ov_coco_{key}_classes.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(names) + "\n")
        written[f"class_names_{key}"] = str(p)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 2 on an input problem (message on stderr)."""
    ap = argparse.ArgumentParser(
        description="Write OV-COCO train (base-only) and val (65 classes) jsons from COCO 2017.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--train", help="COCO instances_train2017.json")
    ap.add_argument("--val", help="COCO instances_val2017.json")
    ap.add_argument("--out-dir", required=True, help="folder for the outputs")
    ap.add_argument("--val-protocol", choices=VAL_PROTOCOLS, default="all",
                    help="all: keep every val image (reference); ovr: only images with one of the 65 classes")
    ap.add_argument("--train-categories", choices=("base", "ov65"), default="base",
                    help="categories listed in the train json")
    ap.add_argument("--out-train",
                    help="train output path (default: OUT_DIR/instances_train2017_ovcoco_base.json)")
    ap.add_argument("--out-val",
                    help="val output path (default: OUT_DIR/instances_val2017_ovcoco[_ovr].json)")
    args = ap.parse_args(argv)
    try:
        prepare(args.train, args.val, args.out_dir, args.val_protocol, args.train_categories,
                args.out_train, args.out_val)
    except PrepareError as e:
        print(f"prepare_ov_coco: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
