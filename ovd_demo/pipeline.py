"""The demo pipeline: the stages of :mod:`ovd_demo.stages` in order, ending in ``summary.json``."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from .settings import DemoSettings
from .stages import REGION_MODES, DemoStages, class_names


class DemoPipeline:
    """Runs every demo stage in ``work_dir`` with ``settings``; :meth:`run` returns the summary.

    Re-running reuses every stage whose key did not change (``<work_dir>/<stage>/stage.json``).
    The summary (also written to ``<work_dir>/summary.json``) holds the settings, the class names,
    ``region`` (v2 mAcc before / after CLIM), ``region_modes`` (``{mode: {'before_clim', 'after_clim'}}``
    for every dense mode), ``ov`` / ``ov_without_clim`` (AP50s), ``inference``, ``picture``, and
    each stage's ``seconds`` and ``reused`` flag.
    """

    def __init__(self, work_dir: str | os.PathLike, settings: DemoSettings,
                 log: Callable[[str], None] = print) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.settings = settings
        self.log = log
        self.stages = DemoStages(self.work_dir, settings, log)

    def run(self) -> dict:
        st = self.stages
        data = st.data()
        pretrain = st.pretrain(data)
        clim = st.clim(data, pretrain)
        clips = {'before_clim': pretrain, 'after_clim': clim}
        region = st.region(data, clips)
        embed = st.embed(data, clim)
        fvit = st.fvit(data, clim, embed)
        ov = st.ov_eval(data, fvit)
        inference = st.inference(data, fvit)
        ov_without_clim = None
        if self.settings.compare_without_clim:
            # The same detector recipe on the pre-trained CLIP: CLIM's effect on open-vocabulary detection.
            embed0 = st.embed(data, pretrain, name='embed_without_clim')
            fvit0 = st.fvit(data, pretrain, embed0, name='fvit_without_clim')
            ov_without_clim = st.ov_eval(data, fvit0, name='ov_eval_without_clim')['result']
        # Added after the stages above (not between them), so that those run exactly as they did before.
        picture = st.picture(data, fvit)
        region_modes = {'v2': region['result']}
        for mode in REGION_MODES[1:]:
            region_modes[mode] = st.region(data, clips, mode=mode)['result']
        records = st.cache.records
        summary = {'settings': asdict(self.settings), 'classes': class_names(data['result']['root']),
                   'region': region['result'], 'region_modes': region_modes, 'ov': ov['result'],
                   'ov_without_clim': ov_without_clim, 'inference': inference['result'],
                   'picture': picture['result'],
                   'seconds': {k: v['seconds'] for k, v in records.items()},
                   'reused': {k: v['reused'] for k, v in records.items()}}
        (self.work_dir / 'summary.json').write_text(json.dumps(summary, indent=2, default=str))
        return summary
