"""Turn COCO's captions_train2017.json into CLIM's per-image caption json.

    python tools/prepare_coco_captions.py --captions data/coco/annotations/captions_train2017.json \\
        --out data/coco/annotations/clim_captions_train2017.json [--instances instances_train2017.json] \\
        [--prefix train2017/]

Output: ``{"images": [{"id", "file_name", "height", "width", "captions": [...], "tags": [...]}]}``,
images sorted by id, captions in annotation order, whitespace-normalized, exact duplicates within an
image dropped. ``tags`` (only with ``--instances``) lists the category names of the image's non-crowd
annotations, once each, in category-id order (for caption + tag losses). Images without any
caption are dropped and counted.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


class PrepareError(Exception):
    """A user-facing input problem (message names the file and the problem)."""


def _load(path: str | Path, role: str, keys: tuple[str, ...]) -> dict:
    p = Path(path)
    if not p.is_file():
        raise PrepareError(f"{role} file not found: {p}" if not p.exists()
                           else f"{role} path is not a file: {p}")
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise PrepareError(f"{role} file {p} is not valid JSON: {e.msg} at line {e.lineno} "
                           f"column {e.colno}") from None
    except UnicodeDecodeError as e:
        raise PrepareError(f"{role} file {p} is not UTF-8 text ({e.reason}); is it compressed?") from None
    if not isinstance(data, dict):
        raise PrepareError(f"{role} file {p}: expected a JSON object, got {type(data).__name__}")
    for k in keys:
        if not isinstance(data.get(k), list):
            raise PrepareError(f"{role} file {p}: no '{k}' list (is this the right COCO file?)")
    return data


def convert(captions: dict, instances: dict | None = None, prefix: str = "",
            what: str = "captions") -> tuple[dict, dict[str, int]]:
    """The CLIM caption json and counts (images in/out, captions, dropped) from loaded COCO dicts."""
    caps: dict[int, list[str]] = defaultdict(list)
    n_caps = 0
    for i, a in enumerate(captions["annotations"]):
        if not isinstance(a, dict) or "image_id" not in a or "caption" not in a:
            raise PrepareError(f"{what}: annotations[{i}] has no image_id/caption "
                               "(a captions file is needed, not an instances file)")
        text = " ".join(str(a["caption"]).split())
        if text and text not in caps[a["image_id"]]:
            caps[a["image_id"]].append(text)
            n_caps += 1
    tags: dict[int, list[str]] | None = None
    if instances is not None:
        cat_name = {c["id"]: c["name"] for c in instances["categories"]}
        order = {c["id"]: k for k, c in enumerate(sorted(instances["categories"], key=lambda c: c["id"]))}
        per_img: dict[int, set[int]] = defaultdict(set)
        for a in instances["annotations"]:
            if not a.get("iscrowd", 0) and a.get("category_id") in cat_name:
                per_img[a["image_id"]].add(a["category_id"])
        tags = {i: [cat_name[c] for c in sorted(s, key=order.__getitem__)] for i, s in per_img.items()}
    images = []
    dropped = 0
    for im in sorted(captions["images"], key=lambda im: im["id"]):
        c = caps.get(im["id"])
        if not c:
            dropped += 1
            continue
        entry = {"id": im["id"], "file_name": prefix + im["file_name"]}
        for k in ("height", "width"):
            if k in im:
                entry[k] = im[k]
        entry["captions"] = c
        if tags is not None:
            entry["tags"] = tags.get(im["id"], [])
        images.append(entry)
    known = {im["id"] for im in captions["images"]}
    orphans = sum(1 for i in caps if i not in known)
    counts = {"images_in": len(captions["images"]), "images_out": len(images),
              "images_dropped_no_caption": dropped,
              "captions": sum(len(e["captions"]) for e in images), "captions_for_unknown_images": orphans}
    if tags is not None:
        counts["images_without_tags"] = sum(1 for e in images if not e["tags"])
    info = {"description": "CLIM per-image captions from COCO", "source": what}
    return {"info": info, "images": images}, counts


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 2 on an input problem (message on stderr)."""
    ap = argparse.ArgumentParser(description="COCO captions -> CLIM per-image caption json",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--captions", required=True, help="COCO captions_train2017.json")
    ap.add_argument("--out", required=True, help="output json")
    ap.add_argument("--instances", help="COCO instances json of the same images, for per-image category tags")
    ap.add_argument("--prefix", default="", help="prepended to each file_name (e.g. 'train2017/')")
    args = ap.parse_args(argv)
    try:
        captions = _load(args.captions, "--captions", ("images", "annotations"))
        instances = (_load(args.instances, "--instances", ("images", "annotations", "categories"))
                     if args.instances else None)
        out, counts = convert(captions, instances, args.prefix, what=args.captions)
    except PrepareError as e:
        print(f"prepare_coco_captions: error: {e}", file=sys.stderr)
        return 2
    dst = Path(args.out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + ".tmp")
    with open(tmp, "w") as f:
        json.dump(out, f)
    tmp.replace(dst)
    print(f"{args.captions} -> {dst}")
    print(f"images: {counts['images_in']} in, {counts['images_out']} written, "
          f"{counts['images_dropped_no_caption']} dropped (no caption); captions: {counts['captions']}")
    if counts["captions_for_unknown_images"]:
        print(f"warning: captions for {counts['captions_for_unknown_images']} image ids not in 'images' "
              "were ignored")
    if "images_without_tags" in counts:
        print(f"tags from {args.instances}: {counts['images_without_tags']} written images have no tag")
    return 0


if __name__ == "__main__":
    sys.exit(main())
