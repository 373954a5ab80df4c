"""Write the OV-LVIS train split (rare classes as novel) from LVIS v1's official files.

    python tools/prepare_ov_lvis.py --train data/lvis_v1/annotations/lvis_v1_train.json \\
        --val data/lvis_v1/annotations/lvis_v1_val.json --out-dir data/lvis_v1/annotations

Writes (names overridable):
* ``lvis_v1_train_base.json``: lvis_v1_train.json without the annotations of the 337 rare (``r``)
  categories; images, categories (with their counts) and every image's ``neg_category_ids`` /
  ``not_exhaustive_category_ids`` as they were (the dataset filter later drops images left empty);
* ``lvis_v1_train_base_cat_info.json``: the category list with ``image_count`` / ``instance_count`` 0
  for the rare ones (the detector's class weights: weight = count > 0);
* ``lvis_v1_classes.txt`` / ``lvis_v1_rare_classes.txt``: class names in category-id order, for
  ``tools/gen_text_embeddings.py --class-file``.
The val json is checked and counted, not rewritten: OV-LVIS evaluates on lvis_v1_val.json as is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from ovdet.datasets.json_files import PrepareError, write_json
from ovdet.datasets.json_files import load_coco_json as load_json
from ovdet.datasets.ov_lvis import (
    LVISFormatError,
    base_only_category_info,
    check_lvis,
    lvis_split_counts,
    make_ov_lvis_train,
)




def _report(name: str, c: dict) -> str:
    groups = ' | '.join(f"{f}: {c[f'{f}_categories']} cats, {c[f'{f}_annotations']} anns in "
                        f"{c[f'{f}_images']} images" for f in ('r', 'c', 'f'))
    return (f"  {name}: {c['images']} images, {c['annotations']} annotations, {c['categories']} categories | "
            f"{groups} | images without annotations: {c['images_without_annotations']} | images with neg "
            f"lists: {c['images_with_neg_lists']}, with not-exhaustive lists: "
            f"{c['images_with_not_exhaustive_lists']}")


def prepare(train: str | None, val: str | None, out_dir: str, out_train: str | None = None,
            log=print) -> dict[str, str]:
    """Do the conversion; returns the written paths. Raises :class:`PrepareError` on bad input."""
    if train is None and val is None:
        raise PrepareError('nothing to do: give --train and/or --val')
    out = Path(out_dir)
    written: dict[str, str] = {}
    categories = None
    for role, path in (('train', train), ('val', val)):
        if path is None:
            continue
        data = load_json(path, f'--{role}')
        try:
            check_lvis(data, str(path))
            if role == 'train':
                split = make_ov_lvis_train(data, what=str(path))
                info = base_only_category_info(data, what=str(path))
        except LVISFormatError as e:
            raise PrepareError(str(e)) from None
        log(f'{role}: {path}')
        log(_report('as given', lvis_split_counts(data)))
        if role == 'train':
            dst = Path(out_train) if out_train else out / 'lvis_v1_train_base.json'
            write_json(split, dst)
            info_dst = dst.with_name(dst.stem + '_cat_info.json')
            write_json(info, info_dst)
            written.update(train=str(dst), category_info=str(info_dst))
            log(_report(f'-> {dst}', lvis_split_counts(split)))
            log(f'  -> {info_dst}: {sum(c["image_count"] > 0 for c in info)} base categories (weight 1), '
                f'{sum(c["image_count"] == 0 for c in info)} with weight 0')
        categories = categories or data['categories']
    cats = sorted(categories, key=lambda c: c['id'])
    for key, names in (('classes', [c['name'] for c in cats]),
                       ('rare_classes', [c['name'] for c in cats if c['frequency'] == 'r'])):
        p = out / f'lvis_v1_{key}.txt'
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('\n'.join(names) + '\n')
        written[key] = str(p)
    log(f'class names ({len(cats)}, category-id order) -> {written["classes"]}')
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 2 on an input problem (message on stderr)."""
    ap = argparse.ArgumentParser(description='Write the OV-LVIS base-only train json from LVIS v1.',
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--train', help='LVIS lvis_v1_train.json')
    ap.add_argument('--val', help='LVIS lvis_v1_val.json (checked and counted, not rewritten)')
    ap.add_argument('--out-dir', required=True, help='folder for the outputs')
    ap.add_argument('--out-train', help='train output path (default: OUT_DIR/lvis_v1_train_base.json); the '
                    'category info goes next to it as <name>_cat_info.json')
    args = ap.parse_args(argv)
    try:
        prepare(args.train, args.val, args.out_dir, args.out_train)
    except PrepareError as e:
        print(f'prepare_ov_lvis: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
