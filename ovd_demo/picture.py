"""The demo's picture: val images in a grid, enlarged, with ground truth and detections, novel classes marked."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Everything that decides how the picture looks (part of the picture stage's cache key).
LAYOUT = dict(panel=384, columns=4, margin=12, title=26, header=58, font=15, score_thr=0.3, max_detections=6)
_BACKGROUND = (250, 250, 250)
_TEXT = (20, 20, 20)
_TRUTH = {False: (255, 255, 255), True: (255, 200, 0)}  # base / novel ground truth: dashed
_DETECTION = {False: (0, 170, 255), True: (255, 0, 160)}  # base / novel detections: solid


@dataclass
class Box:
    """One box to draw: ``box`` x1, y1, x2, y2 in the image's pixels; ``score`` None for ground truth."""

    box: Sequence[float]
    label: str
    novel: bool
    score: float | None = None


@dataclass
class Panel:
    """One val image (H, W, 3) uint8 RGB with its ground truth and detections."""

    image: np.ndarray
    title: str
    truth: list[Box] = field(default_factory=list)
    detections: list[Box] = field(default_factory=list)


def grid_layout(num_panels: int, layout: dict = LAYOUT) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The picture's (width, height) and each panel's top-left corner (of its image square)."""
    cols = max(1, min(layout['columns'], num_panels))
    rows = max(1, math.ceil(num_panels / cols))
    side, margin, title = layout['panel'], layout['margin'], layout['title']
    width = cols * side + (cols + 1) * margin
    height = layout['header'] + rows * (side + title) + (rows + 1) * margin
    corners = [(margin + (i % cols) * (side + margin),
                layout['header'] + margin + (i // cols) * (side + title + margin) + title)
               for i in range(num_panels)]
    return (width, height), corners


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: Sequence[float], color, width: int, dash: int = 8) -> None:
    x1, y1, x2, y2 = box
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        pos = a
        while pos < b:
            end = min(pos + dash, b)
            line = [(pos, fixed), (end, fixed)] if horizontal else [(fixed, pos), (fixed, end)]
            draw.line(line, fill=color, width=width)
            pos += 2 * dash


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color, font, above: bool) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left + 6, bottom - top + 4
    x, y = xy[0], xy[1] - h if above else xy[1]
    y = max(y, 0)  # a box at the image's top edge keeps its label inside the panel
    draw.rectangle([x, y, x + w, y + h], fill=color, outline=(0, 0, 0))
    draw.text((x + 3 - left, y + 2 - top), text, fill=(0, 0, 0), font=font)


def shown_detections(panel: Panel, layout: dict = LAYOUT) -> list[Box]:
    """The detections a panel draws, best first."""
    kept = [d for d in panel.detections if (d.score or 0.0) >= layout['score_thr']]
    return sorted(kept, key=lambda d: -d.score)[:layout['max_detections']]


def draw_panel(panel: Panel, layout: dict = LAYOUT) -> Image.Image:
    """The image scaled (nearest neighbour, keeping its aspect) into a ``layout['panel']`` square,
    ground truth dashed (labelled below the box's top edge), the ``layout['max_detections']`` best
    detections scoring at least ``layout['score_thr']`` solid (labelled above it); novel classes in
    their own colours and marked ``*``."""
    side = layout['panel']
    h, w = panel.image.shape[:2]
    scale = side / max(h, w)
    image = Image.fromarray(panel.image).resize((round(w * scale), round(h * scale)), Image.NEAREST)
    canvas = Image.new('RGB', (side, side), _BACKGROUND)
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(layout['font'])
    for b in panel.truth:
        box = [v * scale for v in b.box]
        _dashed_rectangle(draw, box, _TRUTH[b.novel], width=2)
        _label(draw, (box[0], box[1] + 2), f'{b.label}{"*" if b.novel else ""}', _TRUTH[b.novel], font, above=False)
    for d in shown_detections(panel, layout)[::-1]:  # the best drawn last, on top
        box = [v * scale for v in d.box]
        draw.rectangle(box, outline=_DETECTION[d.novel], width=3)
        _label(draw, (box[0], box[1]), f'{d.label}{"*" if d.novel else ""} {d.score:.2f}', _DETECTION[d.novel],
               font, above=True)
    return canvas


def draw_grid(panels: Sequence[Panel], layout: dict = LAYOUT) -> Image.Image:
    """All panels in rows of ``layout['columns']`` under a legend; size from :func:`grid_layout`."""
    if not panels:
        raise ValueError('draw_grid needs at least one panel (the val split is empty?)')
    size, corners = grid_layout(len(panels), layout)
    grid = Image.new('RGB', size, _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = _font(layout['font'] + 1)
    margin = layout['margin']
    draw.text((margin, margin), 'ground truth: dashed, labelled inside;  detections (score >= '
              f'{layout["score_thr"]}, best {layout["max_detections"]}): solid, labelled above;  '
              '* = novel class (no training boxes)',
              fill=_TEXT, font=font)
    x = margin
    for text, color in (('base truth', _TRUTH[False]), ('novel truth', _TRUTH[True]),
                        ('base detection', _DETECTION[False]), ('novel detection', _DETECTION[True])):
        _label(draw, (x, margin + 22), text, color, font, above=False)
        x += draw.textbbox((0, 0), text, font=font)[2] + 24
    for panel, (x0, y0) in zip(panels, corners):
        draw.text((x0, y0 - layout['title'] + 4), panel.title, fill=_TEXT, font=font)
        grid.paste(draw_panel(panel, layout), (x0, y0))
    return grid
