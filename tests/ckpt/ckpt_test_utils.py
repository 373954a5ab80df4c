"""Writers of random-weight files in each zoo model's real on-disk layout (tests only)."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from tests.helpers import write_torchscript_state  # noqa: F401  (the ckpt tests' writer)

# A small DINOv2 (timm vit_base_patch14_dinov2 kwargs): same key names and code paths as ViT-B/14.
TINY_DINOV2_KWARGS = dict(img_size=56, embed_dim=64, depth=4, num_heads=2)
COMMIT = '0123456789abcdef0123456789abcdef01234567'


def write_hub_cache(cache_root: Path, repo_id: str, files: Mapping[str, bytes | Mapping | str],
                    commit: str = COMMIT) -> Path:
    """A huggingface_hub cache entry: ``models--org--name/{blobs/<sha256>, refs/main,
    snapshots/<commit>/<file> -> ../../blobs/<sha256>}``. ``files`` values: bytes, a dict (written as
    JSON) or a path to copy."""
    entry = cache_root / ('models--' + repo_id.replace('/', '--'))
    (entry / 'blobs').mkdir(parents=True, exist_ok=True)
    (entry / 'refs').mkdir(exist_ok=True)
    snap = entry / 'snapshots' / commit
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, Mapping):
            data = json.dumps(content, indent=2).encode()
        elif isinstance(content, (str, os.PathLike)):
            data = Path(content).read_bytes()
        else:
            data = bytes(content)
        sha = hashlib.sha256(data).hexdigest()
        (entry / 'blobs' / sha).write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(entry / 'blobs' / sha, link.parent)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(rel)
    (entry / 'refs' / 'main').write_text(commit)  # huggingface_hub writes the hash without a newline
    return entry


def state_bytes(state_dict: Mapping[str, torch.Tensor], fmt: str) -> bytes:
    """Serialize a state dict as ``'safetensors'`` or ``'torch'`` bytes."""
    if fmt == 'safetensors':
        from safetensors.torch import save
        return save({k: v.contiguous() for k, v in state_dict.items()})
    import io
    buf = io.BytesIO()
    torch.save(dict(state_dict), buf)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------
# Hugging Face text towers and CLIPSeg (tiny sizes, the real file layouts)
# ------------------------------------------------------------------------------------------------
BIOMEDBERT = 'microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract'
BIOMEDCLIP_REPO = 'microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224'
CLIPSEG_REPO = 'CIDAS/clipseg-rd64-refined'
# A WordPiece vocabulary: BERT's special tokens at their usual ids ([PAD] = 0), letters, a few words.
TINY_WORDPIECE = (['[PAD]', '[unused0]', '[unused1]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
                  + list('abcdefghijklmnopqrstuvwxyz.,') + ['##' + c for c in 'abcdefghijklmnopqrstuvwxyz']
                  + ['a', 'photo', 'of', 'the', 'cat', 'dog', 'chest', 'x', 'ray', 'lung', 'brain', 'scan'])
# BertConfig fields of the release (model_type bert, absolute positions), scaled down. 256 positions:
# the CLIP configs tokenize to 256.
TINY_BERT_CONFIG = dict(architectures=['BertForMaskedLM'], model_type='bert', hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=256,
                        vocab_size=len(TINY_WORDPIECE), type_vocab_size=2, pad_token_id=0, hidden_act='gelu',
                        layer_norm_eps=1e-12)
# BiomedCLIP's open_clip_config.json with a small timm ViT (timm's `test_vit`: 160 px, patch 16, width 64,
# 6 blocks, class-token pooling: the code paths of vit_base_patch16_224) and the same text tower fields.
TINY_BIOMEDCLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(timm_model_name='test_vit', timm_model_pretrained=False, timm_pool='', timm_proj='linear',
                    image_size=160),
    text_cfg=dict(hf_model_name=BIOMEDBERT, hf_tokenizer_name=BIOMEDBERT, hf_proj_type='mlp',
                  hf_pooler_type='cls_last_hidden_state_pooler', context_length=256))
# UniMed-CLIP ViT-B/16 (clim.models.zoo.UNIMED_VIT_B16_CFG) with a small ViT.
TINY_UNIMED_VISION = dict(image_size=64, layers=3, width=64, head_width=32, patch_size=16, mlp_ratio=2.0)


def write_tiny_bert(cache_root: Path) -> Path:
    """The BiomedBERT hub entry as users download it for the CLIP models: config.json, vocab.txt and
    tokenizer_config.json (no weights)."""
    return write_hub_cache(cache_root, BIOMEDBERT, {
        'config.json': TINY_BERT_CONFIG,
        'vocab.txt': ('\n'.join(TINY_WORDPIECE) + '\n').encode(),
        'tokenizer_config.json': dict(do_lower_case=True),
    }, commit='1' * 40)


def build_open_clip_reference(model_cfg: Mapping, bert_dir: Path, quick_gelu: bool | None = None) -> nn.Module:
    """Upstream open_clip's ``CustomTextCLIP`` for a config whose text tower names ``BIOMEDBERT``, with the
    text model read from ``bert_dir`` (random weights)."""
    import copy

    import open_clip

    cfg = copy.deepcopy(dict(model_cfg))
    cfg['text_cfg'] = dict(cfg['text_cfg'], hf_model_name=str(bert_dir), hf_tokenizer_name=str(bert_dir),
                           hf_model_pretrained=False)
    if quick_gelu is not None:
        cfg['quick_gelu'] = quick_gelu
    return open_clip.CustomTextCLIP(**cfg).eval()


def _with_position_ids(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The state dict as transformers < 4.31 wrote it: BERT's position_ids buffer included."""
    out = dict(sd)
    n = TINY_BERT_CONFIG['max_position_embeddings']
    out[f'{prefix}transformer.embeddings.position_ids'] = torch.arange(n).unsqueeze(0)
    return out


def write_tiny_biomedclip(cache_root: Path, model: nn.Module) -> Path:
    """BiomedCLIP's hub entry: open_clip_config.json + open_clip_pytorch_model.bin (torch.save of the
    state dict, text position_ids included) + its tokenizer files."""
    sd = _with_position_ids(model.state_dict(), 'text.')
    return write_hub_cache(cache_root, BIOMEDCLIP_REPO, {
        'open_clip_config.json': dict(model_cfg=TINY_BIOMEDCLIP_CFG, preprocess_cfg=dict(
            mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])),
        'open_clip_pytorch_model.bin': state_bytes(sd, 'torch'),
        'vocab.txt': ('\n'.join(TINY_WORDPIECE) + '\n').encode(),
        'tokenizer_config.json': dict(do_lower_case=True, tokenizer_class='BertTokenizer'),
    })


def write_tiny_unimed(path: Path, model: nn.Module) -> Path:
    """UniMed-CLIP's training checkpoint: ``{'epoch', 'name', 'state_dict': {'module.' + key}, 'optimizer'}``
    with the release's CLIP class key names (text tower ``text_encoder.``, not open_clip's ``text.``)."""
    sd = {('text_encoder.' + k[len('text.'):] if k.startswith('text.') else k): v
          for k, v in model.state_dict().items()}
    sd = _with_position_ids(sd, 'text_encoder.')
    torch.save({'epoch': 10, 'name': 'unimed_clip_vit_b16', 'state_dict': {f'module.{k}': v for k, v in sd.items()},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-5, 'params': [0, 1]}]}}, path)
    return path


def _byte_level_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE maps bytes to (GPT-2 / CLIP convention)."""
    visible = [*range(ord('!'), ord('~') + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    hidden = [b for b in range(256) if b not in visible]
    return [chr(c) for c in visible] + [chr(256 + i) for i in range(len(hidden))]


def tiny_clipseg(save_dir: Path) -> Path:
    """A random tiny ``CLIPSegForImageSegmentation`` saved with ``save_pretrained`` (config.json +
    model.safetensors), plus a CLIP BPE tokenizer (single-character vocabulary, no merges) and the
    release's preprocessor_config.json with a 64 px input."""
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    chars = _byte_level_alphabet()
    vocab = chars + [c + '</w>' for c in chars] + ['<|startoftext|>', '<|endoftext|>']
    bos, eos = len(vocab) - 2, len(vocab) - 1
    cfg = CLIPSegConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                         vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=bos, eos_token_id=eos,
                         pad_token_id=eos),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=16, extract_layers=[0, 1, 2], reduce_dim=8, decoder_num_attention_heads=2,
        decoder_intermediate_size=32)
    CLIPSegForImageSegmentation(cfg).save_pretrained(save_dir)
    (save_dir / 'vocab.json').write_text(json.dumps({v: i for i, v in enumerate(vocab)}))
    (save_dir / 'merges.txt').write_text('#version: 0.2\n')
    special = dict(bos_token='<|startoftext|>', eos_token='<|endoftext|>', unk_token='<|endoftext|>',
                   pad_token='<|endoftext|>')
    (save_dir / 'tokenizer_config.json').write_text(json.dumps(dict(tokenizer_class='CLIPTokenizer',
                                                                    model_max_length=77, **special)))
    (save_dir / 'special_tokens_map.json').write_text(json.dumps(special))
    (save_dir / 'preprocessor_config.json').write_text(json.dumps(dict(
        image_processor_type='ViTImageProcessor', processor_class='CLIPSegProcessor', do_normalize=True,
        do_rescale=True, do_resize=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
        rescale_factor=1 / 255, resample=2, size=dict(height=64, width=64))))
    return save_dir


def write_tiny_clipseg(cache_root: Path, src_dir: Path) -> Path:
    """CLIPSeg's hub entry holding the files of ``src_dir`` (see :func:`tiny_clipseg`)."""
    return write_hub_cache(cache_root, CLIPSEG_REPO, {p.name: p for p in sorted(src_dir.iterdir()) if p.is_file()})
