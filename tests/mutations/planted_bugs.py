"""Planted bugs: each one is a change a user would feel (wrong data, wrong numbers, wrong weights)
that the listed tests must catch. ``tools/mutation_check.py`` applies each to a temporary copy of the
tree and runs its tests; see docs/testing.md.

A planted bug is a dict:
    name: short id (``area/what``).
    file: path from the repo root.
    original: a snippet that occurs exactly once in ``file``.
    mutated: what replaces it.
    tests: pytest node ids / files (from the repo root) that must fail when it is planted.
    why: one line: what a user would see.

Add one next to the code you guard (same area prefix) when a test is written for a bug that survived.
"""
from __future__ import annotations

PLANTED_BUGS: list[dict] = [
    # -- clim: streaming caption data -------------------------------------------------------------------
    dict(name='webdataset/same-shards-everywhere',
         file='clim/datasets/web_caption_dataset.py',
         original='mine = [int(i) for i in order[gid::total]]',
         mutated='mine = [int(i) for i in order]',
         tests=['tests/clim/test_clim_webdataset_split.py', 'tests/clim/test_clim_data.py'],
         why='every rank and worker reads the same shards: 1/N of CC3M seen N times per epoch'),
    dict(name='webdataset/no-reshuffle',
         file='clim/datasets/web_caption_dataset.py',
         original='np.random.default_rng([self.seed, self._epoch]).permutation',
         mutated='np.random.default_rng([self.seed]).permutation',
         tests=['tests/clim/test_clim_webdataset_split.py', 'tests/clim/test_clim_data.py'],
         why='the shard order is the same every epoch'),
    # -- ovdet: the OV-COCO split and metric -------------------------------------------------------------
    dict(name='ov_coco/base-classes-ignored',
         file='ovdet/datasets/ov_coco.py',
         original='base = set(base_classes) if base_classes is not None else {c["name"] for c in cats} - novel',
         mutated='base = {c["name"] for c in cats} - novel',
         tests=['tests/metrics/test_ov_coco_metric.py', 'tests/data/test_ov_coco_dataset.py'],
         why='base_ap50 averages categories the config left out of the base split'),
    dict(name='ov_coco/all-ap50-over-unsplit',
         file='ovdet/metrics/ov_coco_metric.py',
         original='all_ids = by_split["novel"] + by_split["base"] if splits else [int(c["id"]) for c in categories]',
         mutated='all_ids = [int(c["id"]) for c in categories]',
         tests=['tests/metrics/test_ov_coco_metric.py'],
         why='all_ap50 averages categories in neither split (OV-COCO: the 15 unevaluated ones)'),
    # -- ovdet: F-ViT ---------------------------------------------------------------------------------
    dict(name='fvit/clip-pooling-stride-from-img-shape',
         file='ovdet/models/roi_heads/fvit_roi_head.py',
         original="pad_h, pad_w = batch_img_metas[0]['batch_input_shape']",
         mutated="pad_h, pad_w = batch_img_metas[0]['img_shape'][:2]",
         tests=['tests/fvit/test_fvit_padded_batch.py', 'tests/fvit/test_fvit_head.py'],
         why='CLIP scores pooled from the wrong cells (or a crash) on padded, non-square batches'),
    dict(name='fvit/clip-softmax-without-background',
         file='ovdet/models/roi_heads/score_fusion.py',
         original='emb = torch.cat([class_embeddings.float(), background_embedding.float().reshape(1, -1)])',
         mutated='emb = torch.cat([class_embeddings.float(), 0 * background_embedding.float().reshape(1, -1)])',
         tests=['tests/fvit/test_fvit_reference_parity.py', 'tests/fvit/test_fvit_head.py'],
         why='CLIP scores differ from the reference: no background column in the CLIP softmax'),
    dict(name='fvit/background-not-base-in-fusion',
         file='ovdet/models/roi_heads/text_bbox_head.py',
         original='return torch.cat([self.base_mask, self.base_mask.new_ones(1)])',
         mutated='return torch.cat([self.base_mask, self.base_mask.new_zeros(1)])',
         tests=['tests/fvit/test_fvit_reference_parity.py', 'tests/fvit/test_fvit_head.py'],
         why='the background column takes beta instead of alpha: fused scores differ from the reference'),
    dict(name='fvit/converter-drops-background-bias',
         file='ovdet/models/detectors/fvit_checkpoint.py',
         original="    'bg_embedding.bias': 'fc_cls.background.bias',\n",
         mutated='',
         tests=['tests/fvit/test_fvit_reference_checkpoints.py'],
         why="a CLIM release checkpoint loads without its background bias (or is refused)"),
    dict(name='fvit/resume-without-rng-state',
         file='clim/engine/rng_state.py',
         original='            restore_rng_state(self._pending)\n',
         mutated='            pass\n',
         tests=['tests/fvit/test_fvit_resume.py'],
         why='--resume of a detector continues with other random crops / samples than the uninterrupted run'),
    # -- clim: export -----------------------------------------------------------------------------------
    dict(name='clim-export/val-on-trained-weights',
         file='configs/_base_/schedules/clim_schedule.py',
         original="dict(type='CLIPExportHook', alpha=0.7, interval=1),",
         mutated="dict(type='CLIPExportHook', alpha=0.7, interval=1, eval_ensemble=False),",
         tests=['tests/clim/test_clim_export_runner.py', 'tests/clim/test_clim_export.py'],
         why='the val numbers during training are not those of the exported (ensembled) CLIP'),
    dict(name='clim-export/no-restore-after-val',
         file='clim/method/export.py',
         original='                params[k].copy_(v)\n',
         mutated='                pass\n',
         tests=['tests/clim/test_clim_export_runner.py', 'tests/clim/test_clim_export.py'],
         why='training continues from the ensembled weights after every validation'),
    # -- clim: distributed loss -----------------------------------------------------------------------------
    dict(name='clim-dist/gradient-times-world-size',
         file='clim/method/loss.py',
         original=('                                label_offset=rank * image_features.shape[0])\n'
                   '        return self.loss_weight * loss\n'),
         mutated=('                                label_offset=rank * image_features.shape[0])\n'
                  '            loss = loss * world - loss.detach() * (world - 1)  # same value, world x gradient\n'
                  '        return self.loss_weight * loss\n'),
         tests=['tests/clim/test_clim_distributed.py'],
         why='gradients summed instead of averaged over ranks: the lr silently scales with the GPU count'),
    # -- clim: v1 extraction ------------------------------------------------------------------------------
    dict(name='clim/v1-extraction-ignored',
         file='clim/method/clim.py',
         original=('feats.append(self.clip.region_features(torch.cat(mosaics), boxes, normalized=True,\n'
                   '                                                   mode=self.extraction_mode).float())'),
         mutated=('feats.append(self.clip.region_features(torch.cat(mosaics), boxes, normalized=True,\n'
                  "                                                   mode='v2').float())"),
         tests=['tests/clim/test_clim_v1_extraction.py', 'tests/clim/test_clim_region.py'],
         why="extraction_mode='v1' silently trains with v2 features"),
]
