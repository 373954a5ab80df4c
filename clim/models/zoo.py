"""The model zoo: every pretrained model clim-ovd knows, where its weights live in ``ckpt/`` and how to
build it by name.

Each :class:`ZooEntry` records the expected location (relative to the weights folder, see
:func:`clim.models.hub.ckpt_root`), the on-disk format, a download hint and the config that builds it.
``dict(type='ZooModel', name='metaclip-vit-b-16')`` builds any loadable entry through mmdet's MODELS
registry (CLIP-like entries give a :class:`~clim.models.CLIPModel`, or its subclass
:class:`~clim.models.HFTextCLIPModel` for Hugging Face text towers; vision-only entries a detection
backbone; CLIPSeg a :class:`~clim.models.CLIPSegModel`); configs may also name the weights directly,
e.g. ``CLIPModel(pretrained='ckpt/models--...')``.

``tools/check_ckpt.py`` prints the table (present / missing, size and format checks, which configs use
each entry). Nothing here downloads.
"""
from __future__ import annotations

import copy
import functools
import json
import logging
import os
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmdet.registry import MODELS

from .checkpoint import CheckpointError, is_torchscript_archive
from .clip import CLIPModel
from .clipseg import CLIPSEG_FILES
from .hf_clip import TOKENIZER_FILES, export_clip_type, hf_text_download, hf_text_download_hint
from .hub import (OPEN_CLIP_WEIGHT_FILES, HubCacheError, ckpt_root, hub_cache_dirname, hub_cache_roots,
                  hub_snapshot, set_offline_env, snapshot_dir, snapshot_file)

__all__ = ['ZooEntry', 'ZOO', 'get_entry', 'find_entry', 'list_entries', 'build_zoo_model', 'clip_cfg_for',
           'check_entry',
           'config_references', 'configs_using', 'REPO_ROOT']

REPO_ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)
_README = 'ckpt/README.md'


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained model.

    Attributes:
        name: the zoo name configs use (``ZooModel(name=...)``).
        title: human description.
        kind: ``'clip'`` (image + text towers, the CLIPModel interface), ``'vision'`` (backbone only) or
            ``'segmenter'`` (text-prompted masks: CLIPSeg, a region-recognition baseline).
        fmt: on-disk format: ``'torchscript'`` (OpenAI ``.pt``; a plain state dict is accepted too),
            ``'state_dict'`` (``torch.save`` of tensors, possibly a training checkpoint around it),
            ``'hf_hub_cache'`` (``models--org--name/{refs/main, snapshots/<hash>/...}``) or
            ``'torch_hub'`` (``checkpoints/<file>`` of the torch hub dir).
        path: expected location relative to the weights folder.
        download: how to get it (a command or a URL).
        library: the library that builds the model (open_clip, timm, torchvision, transformers).
        build: registry config (``pretrained`` filled in at build time); None: not loadable yet.
        hub_repo: ``org/name`` for hub caches.
        hub_files: files the snapshot must hold; each item is a tuple of alternatives.
        keys: state-dict keys the file must contain (format check), after unwrapping ``state_dict`` /
            ``model`` and stripping ``module.``.
        size_mb: approximate size of the real file(s), for the size sanity check.
        requires: extra Python packages needed to build it.
        extra_hub: other hub repos the model reads from the hub caches (a Hugging Face text tower's
            ``config.json`` and tokenizer); checked and reported with the entry.
    """

    name: str
    title: str
    kind: str
    fmt: str
    path: str
    download: str
    library: str
    build: Mapping[str, Any] | None = None
    hub_repo: str | None = None
    hub_files: tuple[tuple[str, ...], ...] = ()
    keys: tuple[str, ...] = ()
    size_mb: float = 0.0
    requires: tuple[str, ...] = ()
    notes: str = ''
    aliases: tuple[str, ...] = field(default=())
    extra_hub: tuple[str, ...] = ()

    # --------------------------------------------------------------------------------------------
    def expected_path(self, root: str | os.PathLike | None = None) -> Path:
        """Where the weights are expected (``root`` defaults to :func:`ckpt_root`)."""
        return Path(root if root is not None else ckpt_root()) / self.path

    def candidates(self, root: str | os.PathLike | None = None) -> list[Path]:
        """Every location searched, in order (the expected path first)."""
        out = [self.expected_path(root)]
        if self.fmt == 'hf_hub_cache':
            extra = [root] if root is not None else []
            out += [Path(r) / hub_cache_dirname(self.hub_repo) for r in hub_cache_roots(extra)]
        elif self.fmt == 'torch_hub' and os.environ.get('TORCH_HOME'):
            out.append(Path(os.environ['TORCH_HOME']) / 'hub' / self.path)
        seen: list[Path] = []
        for p in out:
            if p not in seen:
                seen.append(p)
        return seen

    def locate(self, root: str | os.PathLike | None = None) -> Path | None:
        """The first candidate that exists, else None."""
        for p in self.candidates(root):
            if (p.is_dir() if self.fmt == 'hf_hub_cache' else p.is_file()):
                return p
        return None

    def missing_message(self, root: str | os.PathLike | None = None) -> str:
        """What is missing, where it was looked for and how to get it."""
        searched = ', '.join(f"'{p}'" for p in self.candidates(root))
        what = 'hub cache folder' if self.fmt == 'hf_hub_cache' else 'file'
        return (f"{self.name} ({self.title}): {what} not found; looked for {searched}. "
                f'Get it: {self.download}. See {_README}.')

    def resolve(self, root: str | os.PathLike | None = None, open_clip_weights: bool = False) -> Path:
        """The weights on disk: the file, or for hub caches the snapshot folder (or, with
        ``open_clip_weights``, its open_clip weight file).

        Raises:
            CheckpointError: missing (message: searched paths + download hint) or incomplete.
        """
        found = self.locate(root)
        if found is None:
            raise CheckpointError(self.missing_message(root))
        if self.fmt != 'hf_hub_cache':
            return found
        try:
            if open_clip_weights:
                return snapshot_file(found, OPEN_CLIP_WEIGHT_FILES)
            snap = snapshot_dir(found)
            for alternatives in self.hub_files:
                snapshot_file(found, alternatives)
            return snap
        except HubCacheError as e:
            raise HubCacheError(f'{self.name}: {e} Get it: {self.download}.') from e

    def build_cfg(self, root: str | os.PathLike | None = None, **overrides: Any) -> dict:
        """The registry config with the resolved weights (``pretrained``) and ``overrides`` merged."""
        if self.build is None:
            needs = f" (needs {', '.join(self.requires)})" if self.requires else ''
            raise NotImplementedError(f'{self.name}: no loader yet{needs}. {self.notes}')
        cfg = copy.deepcopy(dict(self.build))
        if 'pretrained' not in overrides:
            cfg['pretrained'] = str(self.resolve(root, open_clip_weights=self.library == 'open_clip'))
        cfg.update(overrides)
        return cfg


_OPENAI_KEYS = ('visual.conv1.weight', 'visual.proj', 'token_embedding.weight', 'text_projection')
_HF_OFFLINE = 'hf download {repo} --cache-dir ckpt'  # `huggingface-cli download` before huggingface_hub 1.0
# The text tower of BiomedCLIP and UniMed-CLIP ViT-B/16: its config.json and tokenizer come from its own
# hub entry (the weights are inside the CLIP files).
BIOMEDBERT = 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract'
_BIOMEDBERT_GET = hf_text_download(BIOMEDBERT)
# UniMed-CLIP ViT-B/16 as an open_clip model config (its release builds open_clip's ViT-B-16-quickgelu image
# tower, initialised from MetaCLIP, and this HF text tower: mlp projection, [CLS] pooling, 256 tokens).
UNIMED_VIT_B16_CFG: dict[str, Any] = {
    'embed_dim': 512,
    'quick_gelu': True,
    'vision_cfg': {'image_size': 224, 'layers': 12, 'width': 768, 'patch_size': 16},
    'text_cfg': {'hf_model_name': BIOMEDBERT, 'hf_tokenizer_name': BIOMEDBERT, 'hf_proj_type': 'mlp',
                 'hf_pooler_type': 'cls_last_hidden_state_pooler', 'context_length': 256},
}

ZOO: dict[str, ZooEntry] = {e.name: e for e in [
    ZooEntry(
        name='openai-vit-b-16', title='OpenAI CLIP ViT-B/16', kind='clip', fmt='torchscript',
        path='ViT-B-16.pt', library='open_clip', size_mb=335, keys=_OPENAI_KEYS,
        download='https://openaipublic.azureedge.net/clip/models/'
                 '5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt',
        build=dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True)),
    ZooEntry(
        name='openai-vit-l-14', title='OpenAI CLIP ViT-L/14', kind='clip', fmt='torchscript',
        path='ViT-L-14.pt', library='open_clip', size_mb=890, keys=_OPENAI_KEYS,
        download='https://openaipublic.azureedge.net/clip/models/'
                 'b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt',
        build=dict(type='CLIPModel', model_name='ViT-L-14', quick_gelu=True)),
    ZooEntry(
        name='clim-openai-vit-b-16-coco', title='CLIM-refined OpenAI ViT-B/16 (our export)', kind='clip',
        fmt='state_dict', path='openai_vitb16_coco_clim.pt', library='open_clip', size_mb=570,
        keys=('visual.conv1.weight',),
        download='train it: tools/train.py configs/clim/clim_vitb16_coco.py, then copy '
                 'work_dirs/clim_vitb16_coco/clip_latest.pt to ckpt/openai_vitb16_coco_clim.pt',
        build=dict(type='CLIPModel')),
    ZooEntry(
        name='metaclip-vit-b-16', title='MetaCLIP ViT-B/16 (400M), open_clip ViT-B-16-quickgelu',
        kind='clip', fmt='hf_hub_cache', path='models--timm--vit_base_patch16_clip_224.metaclip_400m',
        hub_repo='timm/vit_base_patch16_clip_224.metaclip_400m', library='open_clip', size_mb=570,
        hub_files=(OPEN_CLIP_WEIGHT_FILES,), keys=_OPENAI_KEYS,
        download=_HF_OFFLINE.format(repo='timm/vit_base_patch16_clip_224.metaclip_400m')
        + ' --include "open_clip_*"',
        build=dict(type='CLIPModel', model_name='ViT-B-16', quick_gelu=True),
        aliases=('metaclip_400m', 'ViT-B-16-quickgelu/metaclip_400m')),
    ZooEntry(
        name='unimed-clip-vit-b-16', title='UniMed-CLIP ViT-B/16 (BiomedBERT text tower)', kind='clip',
        fmt='state_dict', path='unimed_clip_vit_b16.pt', library='open_clip', size_mb=800,
        keys=('visual.conv1.weight', 'visual.proj', 'text_encoder.transformer.embeddings.word_embeddings.weight',
              'text_encoder.proj.0.weight'),
        requires=('transformers',), extra_hub=(BIOMEDBERT,),
        download='the UniMed-CLIP release: github.com/mbzuai-oryx/UniMed-CLIP (README, "Model Zoo"), '
                 f'file unimed_clip_vit_b16.pt; and its text tower\'s config + tokenizer: {_BIOMEDBERT_GET}',
        # The release's CLIP class calls the text tower `text_encoder`; open_clip's CustomTextCLIP `text`.
        build=dict(type='HFTextCLIPModel', model_cfg=UNIMED_VIT_B16_CFG, key_map={'text_encoder.': 'text.'}),
        notes='open_clip ViT-B-16-quickgelu image tower + HF BiomedBERT text tower (open_clip CustomTextCLIP).'),
    ZooEntry(
        name='biomedclip', title='BiomedCLIP PubMedBERT_256 ViT-B/16 (open_clip hf-hub model)', kind='clip',
        fmt='hf_hub_cache', path='models--microsoft--BiomedCLIP-PubMedBERT_256-vit_base_patch16_224',
        hub_repo='microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224', library='open_clip',
        hub_files=(('open_clip_config.json',), OPEN_CLIP_WEIGHT_FILES), size_mb=784,
        keys=('visual.trunk.patch_embed.proj.weight', 'text.proj.0.weight'), requires=('transformers',),
        extra_hub=(BIOMEDBERT,),
        download=_HF_OFFLINE.format(repo='microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224')
        + f'; and its text tower\'s config + tokenizer: {_BIOMEDBERT_GET}',
        build=dict(type='HFTextCLIPModel'),  # the architecture is the snapshot's open_clip_config.json
        notes='timm vit_base_patch16_224 image tower + HF PubMedBERT text tower (open_clip CustomTextCLIP).'),
    ZooEntry(
        name='clipseg-rd64-refined', title='CLIPSeg rd64 refined (transformers)', kind='segmenter',
        fmt='hf_hub_cache', path='models--CIDAS--clipseg-rd64-refined', hub_repo='CIDAS/clipseg-rd64-refined',
        library='transformers', hub_files=CLIPSEG_FILES, size_mb=603, requires=('transformers',),
        keys=('clip.vision_model.embeddings.patch_embedding.weight', 'decoder.film_mul.weight'),
        download=_HF_OFFLINE.format(repo='CIDAS/clipseg-rd64-refined'),
        build=dict(type='CLIPSegModel'),
        notes='transformers CLIPSegForImageSegmentation: the text-prompted dense baseline of region '
              'recognition (configs/region_eval/region_eval_clipseg_coco.py).'),
    ZooEntry(
        name='dinov2-vit-b-14', title='DINOv2 ViT-B/14 (vision only, timm vit_base_patch14_dinov2)',
        kind='vision', fmt='state_dict', path='dinov2_vitb14_pretrain.pth', library='timm', size_mb=330,
        keys=('cls_token', 'pos_embed', 'patch_embed.proj.weight', 'blocks.0.attn.qkv.weight'),
        download='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth',
        build=dict(type='DINOv2Backbone', model_name='vit_base_patch14_dinov2')),
    ZooEntry(
        name='resnet18', title='ResNet-18 ImageNet (torchvision IMAGENET1K_V1)', kind='vision',
        fmt='torch_hub', path='checkpoints/resnet18-f37072fd.pth', library='torchvision', size_mb=44.7,
        keys=('conv1.weight', 'layer4.1.bn2.weight', 'fc.weight'),
        download='https://download.pytorch.org/models/resnet18-f37072fd.pth (or TORCH_HOME=<tmp> python -c '
                 '"import torchvision; torchvision.models.resnet18(weights=\'IMAGENET1K_V1\')" and copy '
                 '<tmp>/hub/checkpoints/resnet18-f37072fd.pth)',
        build=dict(type='TorchvisionResNet', depth=18)),
    ZooEntry(
        name='resnet50', title='ResNet-50 ImageNet (torchvision IMAGENET1K_V1), BARON-KD backbone init',
        kind='vision', fmt='state_dict', path='resnet50-0676ba61.pth', library='torchvision', size_mb=97.8,
        keys=('conv1.weight', 'layer4.2.bn3.weight', 'fc.weight'),
        download='https://download.pytorch.org/models/resnet50-0676ba61.pth (copy it to ckpt/)',
        build=dict(type='TorchvisionResNet', depth=50)),
]}


def list_entries() -> list[ZooEntry]:
    """All entries, in table order."""
    return list(ZOO.values())


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name`` (or one of its aliases).

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    entry = find_entry(name=name)
    if entry is None:
        raise KeyError(f'unknown zoo model {name!r}; known: {sorted(ZOO)}')
    return entry


def _norm_rel(value: str) -> str | None:
    """``'ckpt/x/y'`` / ``'./ckpt/x'`` -> ``'x/y'``; anything else None."""
    v = value.replace('\\', '/')
    while v.startswith('./'):
        v = v[2:]
    root = str(ckpt_root()).replace('\\', '/').rstrip('/')
    for prefix in ('ckpt/', root + '/'):
        if v.startswith(prefix):
            return v[len(prefix):]
    return None


def find_entry(name: str | None = None, path: str | None = None, hub_repo: str | None = None) -> ZooEntry | None:
    """The entry with this name / alias, whose expected location contains ``path`` (``ckpt/...``, or
    a path inside a hub-cache entry), or whose hub repo is ``hub_repo``; None if none."""
    for e in ZOO.values():
        if name is not None and (name == e.name or name in e.aliases):
            return e
        if hub_repo is not None and e.hub_repo == hub_repo.strip('/'):
            return e
        if path is not None:
            rel = _norm_rel(path)
            if rel is not None and (rel == e.path or rel.startswith(e.path + '/')):
                return e
    return None


def _local_file(pretrained: str) -> Path:
    """A config's weights path as a file: as given, else a ``ckpt/...`` path under :func:`ckpt_root`."""
    path = Path(pretrained)
    rel = None if path.is_file() else _norm_rel(pretrained)
    return ckpt_root() / rel if rel is not None else path


def clip_cfg_for(cfg: Mapping[str, Any]) -> dict:
    """A CLIP registry config whose class is the one its weights need.

    CLIM exports record the class that wrote them (``clip_arch['type']``, see
    :func:`~clim.models.hf_clip.export_clip_type`). A ``CLIPModel`` config (the type the project's configs
    and F-ViT's backbone default to) naming an ``HFTextCLIPModel`` export becomes an ``HFTextCLIPModel``
    config: architecture and activation then come from the export; a ``model_name`` (and the
    ``quick_gelu`` that goes with it) describes another architecture and is dropped, with a log line.
    Every other config is returned as a copy, unchanged (OpenAI / open_clip files are never exports).
    """
    out = dict(cfg)
    pretrained = out.get('pretrained')
    if out.get('type', 'CLIPModel') not in ('CLIPModel', CLIPModel) or not isinstance(pretrained, str):
        return out
    if export_clip_type(_local_file(pretrained)) != 'HFTextCLIPModel':
        return out
    dropped = [k for k in ('model_name', 'quick_gelu') if out.get('model_name') and out.get(k) is not None]
    if dropped:
        logger.info('%s is an HFTextCLIPModel export: building it from its recorded architecture; %s', pretrained,
                    ', '.join(f'{k}={out[k]!r}' for k in dropped) + ' of the config ignored')
    keep = ('pretrained', 'model_cfg', 'quick_gelu', 'key_map', 'text_model', 'tokenizer', 'init_cfg')
    return dict(type='HFTextCLIPModel', **{k: out[k] for k in keep if k in out and k not in dropped})


@MODELS.register_module(name='ZooModel')
def build_zoo_model(name: str | None = None, ckpt_dir: str | None = None, **overrides: Any):
    """Build a zoo model by name through the registry (``dict(type='ZooModel', name=...)``).

    Args:
        name: zoo name (see :data:`ZOO`); None: a CLIP from ``pretrained`` alone (a CLIM export, whatever
            class wrote it: ``dict(type='ZooModel', pretrained='work_dirs/.../clip_latest.pt')``).
        ckpt_dir: weights folder (default :func:`ckpt_root`).
        overrides: merged into the entry's config (e.g. ``model_cfg`` for a small test architecture,
            ``pretrained`` for a CLIM export of that model, or backbone options such as ``out_indices``).

    Returns:
        A :class:`~clim.models.CLIPModel` (CLIP-like; ``HFTextCLIPModel`` with a HF text tower, also when
        ``pretrained`` is a CLIM export of one), a :class:`~clim.models.CLIPSegModel` (segmenter) or a
        detection backbone (vision only).
    """
    set_offline_env()
    if name is None:
        if not overrides.get('pretrained'):
            raise ValueError("ZooModel needs a zoo name or, for a CLIP, pretrained=<weights file>")
        return MODELS.build(clip_cfg_for(dict(type='CLIPModel', **overrides)))
    entry = get_entry(name)
    pretrained = overrides.get('pretrained')
    if entry.kind == 'clip' and isinstance(pretrained, str) and \
            export_clip_type(_local_file(pretrained)) == 'HFTextCLIPModel':
        # A CLIM export of this model (e.g. an F-ViT config's zoo CLIP with pretrained=clip_latest.pt): it
        # records its own architecture; the entry's build config (the release's model_cfg and key names)
        # describes the release file, not the export.
        return MODELS.build(clip_cfg_for(dict(type='CLIPModel', **overrides)))
    cfg = entry.build_cfg(ckpt_dir, **overrides)
    return MODELS.build(clip_cfg_for(cfg) if entry.kind == 'clip' else cfg)


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------
def _dir_size(p: Path) -> int:
    """Bytes of a file, or of a hub-cache folder (its blobs/ when present: snapshots link into it)."""
    if p.is_file():
        return p.stat().st_size
    base = p / 'blobs' if (p / 'blobs').is_dir() else p
    return sum(f.stat().st_size for f in base.rglob('*') if f.is_file())


def _state_keys(path: Path) -> list[str]:
    """Top-level tensor keys of a weights file, read cheaply (mmap / safetensors header)."""
    import torch

    if path.suffix == '.safetensors':
        with open(path, 'rb') as f:
            (n,) = struct.unpack('<Q', f.read(8))
            header = json.loads(f.read(n))
        return [k for k in header if k != '__metadata__']
    if is_torchscript_archive(path):
        return list(torch.jit.load(str(path), map_location='cpu').state_dict())
    obj = torch.load(str(path), map_location='cpu', weights_only=True, mmap=zipfile.is_zipfile(path))
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'holds a {type(obj).__name__}, not a state dict')
    for k in ('state_dict', 'model'):
        if k in obj and isinstance(obj[k], Mapping):
            obj = obj[k]
            break
    keys = [str(k) for k in obj]
    if keys and all(k.startswith('module.') for k in keys):
        keys = [k[len('module.'):] for k in keys]
    return keys


def check_entry(entry: ZooEntry, root: str | os.PathLike | None = None, deep: bool = True) -> dict[str, Any]:
    """Presence, size and format of one entry's weights.

    Returns:
        ``{'name', 'path' (expected), 'found' (path or None), 'status': 'present' | 'missing' | 'bad',
        'size_mb', 'size_ok' (bool | None), 'format', 'detail'}``. ``bad``: present but unreadable /
        wrong format / incomplete hub snapshot (``detail`` says why).
    """
    res: dict[str, Any] = dict(name=entry.name, path=str(entry.expected_path(root)), found=None,
                               status='missing', size_mb=None, size_ok=None, format=entry.fmt, detail='')
    found = entry.locate(root)
    if found is None:
        res['detail'] = entry.missing_message(root)
        return res
    res['found'] = str(found)
    res['size_mb'] = round(_dir_size(found) / 2 ** 20, 1)
    if entry.size_mb:
        res['size_ok'] = res['size_mb'] >= 0.9 * entry.size_mb
    try:
        if entry.fmt == 'hf_hub_cache':
            snap = entry.resolve(root)
            files = [snapshot_file(found, alt) for alt in entry.hub_files]
            for f in snap.glob('*.json'):
                json.loads(f.read_text())
            weights = [f for f in files if f.suffix in ('.bin', '.safetensors', '.pt', '.pth')]
            detail = f'snapshot {snap.name[:12]}: ' + ', '.join(f.name for f in files)
        else:
            weights = [found]
            detail = ''
            if entry.fmt == 'torchscript':
                detail = 'TorchScript archive' if is_torchscript_archive(found) else 'state dict (not TorchScript)'
        if deep:
            for w in weights:
                keys = _state_keys(w)
                lacking = [k for k in entry.keys if k not in keys]
                if not keys or lacking:
                    raise CheckpointError(f'{w.name}: {len(keys)} tensors, lacks expected keys {lacking}')
                detail += f'{"; " if detail else ""}{w.name}: {len(keys)} tensors'
        res.update(status='present', detail=detail)
    except Exception as e:  # noqa: BLE001 - any read failure is reported, not raised
        res.update(status='bad', detail=f'{type(e).__name__}: {e}')
        return res
    # Other hub entries it reads (a text tower's config + tokenizer): without them it cannot be built.
    for repo in entry.extra_hub:
        roots = hub_cache_roots([root]) if root is not None else None
        try:
            snap = hub_snapshot(repo, [('config.json',), TOKENIZER_FILES], hf_text_download_hint(repo), roots=roots)
            res['detail'] += f'; {repo}: snapshot {snap.name[:12]}'
        except HubCacheError as e:
            res.update(status='missing', detail=f'{res["detail"]}; but it also needs {e}')
    return res


# ------------------------------------------------------------------------------------------------
# configs
# ------------------------------------------------------------------------------------------------
def _walk(obj: Any, key: str = '') -> Iterator[tuple[str, str]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _walk(v, str(k))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _walk(v, key)
    elif isinstance(obj, str):
        yield key, obj


def config_references(cfg: Any) -> tuple[list[ZooEntry], list[str]]:
    """Zoo entries a config needs, and other ``ckpt/...`` paths it names.

    Args:
        cfg: an mmengine ``Config``, a dict, or a config file path.

    Returns:
        ``(entries, other_paths)``: entries referenced by path (``ckpt/...``), ``hf-hub:`` id or by name
        (``ZooModel(name=...)`` / ``pretrained=<name>``); ``ckpt/`` paths no entry covers.
    """
    if isinstance(cfg, (str, os.PathLike)):
        from mmengine.config import Config
        cfg = Config.fromfile(str(cfg), import_custom_modules=False)
    data = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    if 'model' in data:
        # Only what gets built or loaded: top-level helper variables (e.g. a base config's `clip_cfg`
        # that a child overrides inside `model`) are not requirements.
        data = {k: data[k] for k in ('model', 'load_from') if data.get(k) is not None}
    entries: list[ZooEntry] = []
    other: list[str] = []
    for key, value in _walk(data):
        entry = None
        if value.startswith('hf-hub:'):
            entry = find_entry(hub_repo=value[len('hf-hub:'):])
        elif key in ('name', 'pretrained', 'zoo', 'checkpoint'):
            entry = find_entry(name=value)
        if entry is None:
            entry = find_entry(path=value)
        if entry is not None:
            if entry not in entries:
                entries.append(entry)
        elif _norm_rel(value) is not None and value not in other:
            other.append(value)
    return entries, other


@functools.lru_cache(maxsize=256)
def _config_entry_names(path: str, mtime_ns: int, root: str) -> tuple[str, ...]:
    """Names of the entries a config file references (cached per file version and weights folder)."""
    return tuple(e.name for e in config_references(path)[0])


def list_configs(config_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every config file under ``configs/`` (``_base_`` fragments excluded)."""
    root = Path(config_dir) if config_dir else REPO_ROOT / 'configs'
    return sorted(p for p in root.rglob('*.py') if '_base_' not in p.parts)


def configs_using(config_dir: str | os.PathLike | None = None,
                  configs: Sequence[str | os.PathLike] | None = None) -> dict[str, list[str]]:
    """Zoo name -> the configs (paths relative to the repo when inside it) that reference it.
    Configs that fail to parse are skipped."""
    usage: dict[str, list[str]] = {name: [] for name in ZOO}
    for path in (configs if configs is not None else list_configs(config_dir)):
        path = Path(path)
        try:
            names = _config_entry_names(str(path.resolve()), path.stat().st_mtime_ns, str(ckpt_root()))
        except Exception:  # noqa: BLE001, S112 - a broken config is not this tool's concern
            continue
        try:
            shown = str(path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            shown = str(path)
        for name in names:
            usage[name].append(shown)
    return usage
