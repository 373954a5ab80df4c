"""The demo picture's panels: enlarged image, ground truth and detections in their split's colours."""
from __future__ import annotations

import numpy as np

from ovd_demo import picture
from ovd_demo.picture import LAYOUT, Box, Panel, draw_grid, draw_panel, grid_layout


def _has(region: np.ndarray, color: tuple[int, int, int]) -> bool:
    return bool((region == np.array(color)).all(-1).any())


def test_boxes_are_drawn_at_scale_in_the_colours_of_their_split() -> None:
    image = np.full((64, 64, 3), 120, np.uint8)
    panel = Panel(image=image, title='x', truth=[Box([8, 8, 40, 40], 'star', novel=True)],
                  detections=[Box([20, 30, 60, 60], 'square', novel=False, score=0.9),
                              Box([0, 50, 10, 60], 'ring', novel=True, score=LAYOUT['score_thr'] / 2)])
    drawn = np.asarray(draw_panel(panel))
    scale = LAYOUT['panel'] // 64
    assert drawn.shape == (LAYOUT['panel'], LAYOUT['panel'], 3)
    # the novel ground truth's bottom edge (dashed) in the novel-truth colour
    assert _has(drawn[40 * scale - 2:40 * scale + 2, 8 * scale:40 * scale], picture._TRUTH[True])
    # the base detection's right edge in the base-detection colour
    assert _has(drawn[40 * scale:60 * scale, 60 * scale - 2:60 * scale + 2], picture._DETECTION[False])
    # the detection under the score threshold is not drawn: no novel-detection colour anywhere
    assert not _has(drawn, picture._DETECTION[True])
    # away from the boxes the image is only enlarged
    assert (drawn[62 * scale:, 62 * scale:] == 120).all()


def test_grid_has_one_panel_per_image_in_rows() -> None:
    layout = dict(LAYOUT, columns=2)
    panels = [Panel(image=np.full((32, 48, 3), 40 * (i + 1), np.uint8), title=str(i)) for i in range(3)]
    grid = np.asarray(draw_grid(panels, layout))
    (w, h), corners = grid_layout(3, layout)
    assert grid.shape == (h, w, 3) and len(corners) == 3
    assert corners[0][1] == corners[1][1] < corners[2][1] and corners[2][0] == corners[0][0]  # 2 + 1
    side = layout['panel']
    for i, (x0, y0) in enumerate(corners):
        # a 48 x 32 image fills the panel's width and two thirds of its height
        assert (grid[y0:y0 + side * 2 // 3, x0:x0 + side] == 40 * (i + 1)).all()
        assert not (grid[y0 + side * 2 // 3 + 1:y0 + side, x0:x0 + side] == 40 * (i + 1)).all(-1).any()
