"""Detect a free-text vocabulary in one image with a trained open-vocabulary detector.

    python tools/demo.py IMAGE --config CFG --checkpoint CKPT --vocab "cat, zebra, red umbrella" \
        --out result.png [--score-thr 0.3] [--base-classes "cat"] [--device cpu]

The class embeddings of the vocabulary are computed on the fly with the detector's own CLIP text
tower (prompt-template ensemble). Every vocabulary class counts as novel in the detector / CLIP score
ensemble unless listed in --base-classes (see ovdet/apis/inference.py). Without --vocab the
detector's training vocabulary (its class-embedding file) is used.
"""
from __future__ import annotations

import argparse
import sys



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', help='input image file')
    parser.add_argument('--config', required=True, help='detector config')
    parser.add_argument('--checkpoint', required=True, help='trained detector checkpoint')
    parser.add_argument('--vocab', default=None,
                        help='comma-separated class names, e.g. "cat, zebra, red umbrella"')
    parser.add_argument('--base-classes', default='',
                        help='comma-separated vocabulary names to treat as base')
    parser.add_argument('--templates', default=None,
                        help="prompt templates: 'full' (default), 'short' or 'none'")
    parser.add_argument('--out', default='result.png', help='output image (boxes drawn)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='draw detections scoring at least this')
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda', 'cuda:1', ...")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ovdet.apis import ImageReadError, detect, load_detector, parse_vocabulary, read_image

    try:
        image = read_image(args.image)  # BGR; checked before the model is built
    except (FileNotFoundError, ImageReadError) as e:
        print(f'demo: error: {e}', file=sys.stderr)
        return 2
    model = load_detector(args.config, args.checkpoint, device=args.device)
    base = parse_vocabulary(args.base_classes) if args.base_classes.strip() else []
    result = detect(image, args.vocab, model=model, base_classes=base, templates=args.templates,
                    score_thr=args.score_thr, out_file=args.out, draw_thr=args.score_thr)
    classes = model.dataset_meta.get('classes') or ()
    inst = result.pred_instances
    print(f'{len(inst)} detections (score >= {args.score_thr}) -> {args.out}')
    for box, score, label in zip(inst.bboxes.tolist(), inst.scores.tolist(), inst.labels.tolist()):
        name = classes[label] if label < len(classes) else str(label)
        print(f'  {name:20s} {score:.3f}  [{", ".join(f"{v:.1f}" for v in box)}]')
    return 0


if __name__ == '__main__':
    sys.exit(main())
