"""The model zoo table: every pretrained model clim-ovd knows, where its weights live in ``ckpt/``, what the
file must hold and the registry config that builds it.

This module is data: it imports nothing of clim-ovd and touches no file system. Each :class:`ZooEntry`
records the expected location (relative to the weights folder), the on-disk format, a download hint and the
build config. What uses the table lives elsewhere, each importing it one way:

- :mod:`clim.models.hub` finds an entry's weights on disk (``locate_entry``, ``resolve_entry``,
  ``entry_build_cfg``, ``find_entry`` by name / path / hub repo) and resolves ``pretrained`` values;
- :mod:`clim.models.factory` builds an entry by name: ``dict(type='ZooModel', name='metaclip-vit-b-16')``
  (CLIP-like entries give a CLIP with the TowerCLIP interface, vision-only entries a detection backbone,
  CLIPSeg a :class:`~clim.models.CLIPSegModel`);
- :mod:`clim.models.zoo_report` checks presence, size and format and which configs use each entry
  (``tools/check_ckpt.py`` prints it).

Nothing here downloads.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ['ZooEntry', 'ZOO', 'get_entry', 'list_entries', 'OPEN_CLIP_WEIGHT_FILES', 'TOKENIZER_FILES',
           'CLIPSEG_FILES', 'hub_cache_dirname', 'hf_text_download']

# Hub-cache layout names the table's rows are written in (pure strings; clim.models.hub re-exports them).
# open_clip's weight-file names in a hub repo, preferred first (open_clip.pretrained: HF_WEIGHTS_NAME
# and its safetensors alternative).
OPEN_CLIP_WEIGHT_FILES = ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin')
# A tokenizer folder holds one of these (fast tokenizer, WordPiece vocab, BPE vocab).
TOKENIZER_FILES = ('tokenizer.json', 'vocab.txt', 'vocab.json')
# What a CLIPSeg snapshot must hold: config, weights, tokenizer (preprocessor_config.json is optional).
CLIPSEG_FILES = (('config.json',), ('model.safetensors', 'pytorch_model.bin'), TOKENIZER_FILES)


def hub_cache_dirname(repo_id: str) -> str:
    """``'org/name'`` -> ``'models--org--name'`` (huggingface_hub's cache folder name)."""
    return 'models--' + repo_id.strip('/').replace('/', '--')


def hf_text_download(repo_id: str) -> str:
    """The command that puts a text model's config and tokenizer (not its weights) into ``ckpt/``."""
    return f'hf download {repo_id} config.json vocab.txt tokenizer_config.json --cache-dir ckpt'


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained model (a table row; :mod:`clim.models.hub` finds its files).

    Attributes:
        name: the zoo name configs use (``ZooModel(name=...)``).
        title: human description.
        kind: ``'clip'`` (image + text towers, the TowerCLIP interface), ``'vision'`` (backbone only) or
            ``'segmenter'`` (text-prompted masks: CLIPSeg, a region-recognition baseline).
        fmt: on-disk format: ``'torchscript'`` (OpenAI ``.pt``; a plain state dict is accepted too),
            ``'state_dict'`` (``torch.save`` of tensors, possibly a training checkpoint around it),
            ``'hf_hub_cache'`` (``models--org--name/{refs/main, snapshots/<hash>/...}``) or
            ``'torch_hub'`` (``checkpoints/<file>`` of the torch hub dir).
        path: expected location relative to the weights folder (``/``-separated).
        download: how to get it (a command or a URL).
        library: the library that builds the model (open_clip, timm, torchvision, transformers).
        build: registry config (``pretrained`` filled in at build time); None: not loadable yet.
        hub_repo: ``org/name`` for hub caches.
        hub_files: files the snapshot must hold; each item is a tuple of alternatives.
        keys: state-dict keys the file must contain (format check), after unwrapping ``state_dict`` /
            ``model`` and stripping ``module.``.
        size_mb: approximate size of the real file(s), for the size sanity check.
        requires: extra Python packages needed to build it.
        notes: free text shown when it cannot be built.
        aliases: other names that find it (a release file's stem, an open_clip ``model/tag``).
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

    def is_called(self, name: str) -> bool:
        """Whether ``name`` is this entry's name or one of its aliases."""
        return name == self.name or name in self.aliases

    def covers(self, rel: str) -> bool:
        """Whether ``rel`` (a ``/``-separated path relative to the weights folder) is this entry's location
        or lies inside it (a file in a hub-cache folder)."""
        return rel == self.path or rel.startswith(self.path + '/')


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

_EVA_RELEASE_KEYS = ('visual.pos_embed', 'visual.blocks.0.attn.q_bias', 'visual.blocks.0.mlp.w1.weight',
                     'visual.head.weight', 'text.token_embedding.weight', 'text.text_projection')
_EVA_HUB_KEYS = ('visual.trunk.pos_embed', 'visual.trunk.blocks.0.mlp.fc1_g.weight', 'text.token_embedding.weight')
_EVA_GET = 'hf download QuanSun/EVA-CLIP {file} --local-dir ckpt'
_CLIPSELF_GET = ('the CLIPSelf release (github.com/wusize/CLIPSelf, README "Checkpoints": the Google Drive folder '
                 'of the EVA CLIPs refined by CLIPSelf); copy {file} to ckpt/')


def _eva_entries() -> list[ZooEntry]:
    """EVA-02 CLIP B/16 and L/14-336: the EVA-CLIP release files, open_clip's hub caches of the same runs,
    CLIPSelf's refined COCO checkpoints (training files, state_dict in release names). All build an
    ``EvaCLIPModel`` (the reference spec's ``eva_clip.md``); sizes are the fp16 parameter counts (not verified)."""
    out = []
    for tag, model, release, hub, size, cs_tag in (
            ('b-16', 'EVA02-B-16', 'EVA02_CLIP_B_psz16_s8B.pt', 'timm/eva02_base_patch16_clip_224.merged2b_s8b_b131k',
             290, 'vitb16'),
            ('l-14-336', 'EVA02-L-14-336', 'EVA02_CLIP_L_336_psz14_s6B.pt',
             'timm/eva02_large_patch14_clip_336.merged2b_s6b_b61k', 820, 'vitl14')):
        build = dict(type='EvaCLIPModel', model_name=model)
        title = f"EVA-02 CLIP {model.split('-', 1)[1].replace('-', '/', 1)}"
        out.append(ZooEntry(
            name=f'eva02-clip-{tag}', title=f'{title} (EVA-CLIP release)', kind='clip', fmt='state_dict',
            path=release, library='timm', size_mb=size, keys=_EVA_RELEASE_KEYS, build=build,
            download=_EVA_GET.format(file=release), aliases=(release.removesuffix('.pt'),),
            notes='EVA names (q_bias, inner_attn_ln, w1/w2/w3, ffn_ln); rope buffers dropped on load.'))
        out.append(ZooEntry(
            name=f'eva02-clip-{tag}-openclip', title=f'{title} (open_clip hub weights of the same run)',
            kind='clip', fmt='hf_hub_cache', path=hub_cache_dirname(hub), hub_repo=hub, library='open_clip',
            hub_files=(OPEN_CLIP_WEIGHT_FILES,), keys=_EVA_HUB_KEYS, size_mb=size, build=build,
            download=_HF_OFFLINE.format(repo=hub) + ' --include "open_clip_*"',
            aliases=(f"{model}/{hub.rsplit('.', 1)[1]}",)))
        for mode in ('patches', 'proposals'):
            file = f'eva_{cs_tag}_coco_clipself_{mode}.pt'
            out.append(ZooEntry(
                name=f'clipself-eva02-{tag}-coco-{mode}', title=f'{title} refined by CLIPSelf (COCO {mode})',
                kind='clip', fmt='state_dict', path=file, library='timm', size_mb=size,
                keys=_EVA_RELEASE_KEYS, build=build, download=_CLIPSELF_GET.format(file=file),
                notes='CLIPSelf training file {epoch, name, state_dict, optimizer, scaler}; module. prefixes.'))
    return out


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
    *_eva_entries(),
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
    """The entry called ``name`` (or one of its aliases); :func:`clim.models.hub.find_entry` also finds
    entries by path and hub repo.

    Raises:
        KeyError: unknown name, listing the known ones.
    """
    for entry in ZOO.values():
        if entry.is_called(name):
            return entry
    raise KeyError(f'unknown zoo model {name!r}; known: {sorted(ZOO)}')
