"""The trimmed text forward (up to the batch's longest end-of-text token) is the untrimmed one, cheaper."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from clim.models import CLIPModel

CAPTIONS = ['a dog', 'two red buses parked next to a tall building on a rainy street',
            'a cat sitting on a wooden table', 'pizza']


def _seen_lengths(model: CLIPModel) -> list[int]:
    seen: list[int] = []
    model.clip.transformer.register_forward_pre_hook(lambda m, args: seen.append(int(args[0].shape[1])))
    return seen


def test_trimmed_text_forward_equals_untrimmed_and_stops_at_longest_eot(tiny_model: CLIPModel) -> None:
    tokens = tiny_model.tokenize(CAPTIONS)
    longest = int(tokens.argmax(dim=-1).max()) + 1
    assert longest < tiny_model.context_length  # the test must actually trim something
    seen = _seen_lengths(tiny_model)
    with torch.no_grad():
        full = tiny_model.encode_text(tokens, normalize=True)
        trimmed = tiny_model.encode_text_trimmed(tokens, normalize=True)
        raw_full = tiny_model.encode_text(tokens, normalize=False)
        raw_trimmed = tiny_model.encode_text_trimmed(tokens, normalize=False)
    assert seen == [tiny_model.context_length, longest, tiny_model.context_length, longest]
    # Same function; kernels of other shapes round differently (~1e-7), so not bit for bit.
    torch.testing.assert_close(trimmed, full, atol=2e-6, rtol=0)
    torch.testing.assert_close(raw_trimmed, raw_full, atol=2e-6, rtol=1e-5)
    assert not torch.allclose(raw_trimmed, F.normalize(raw_trimmed, dim=-1))  # normalize=False is honoured


def test_trimmed_text_forward_of_a_caption_filling_the_context(tiny_model: CLIPModel) -> None:
    # Truncated to the context length: EOT at the last position, nothing to trim, same result.
    tokens = tiny_model.tokenize(['word ' * 100, 'a dog'])
    assert int(tokens[0].argmax()) == tiny_model.context_length - 1
    with torch.no_grad():
        torch.testing.assert_close(tiny_model.encode_text_trimmed(tokens), tiny_model.encode_text(tokens),
                                   atol=2e-6, rtol=0)


def test_trimmed_text_forward_each_row_is_its_own_caption(tiny_model: CLIPModel) -> None:
    # A caption's feature must not depend on which other captions share its batch (beyond rounding).
    tokens = tiny_model.tokenize(CAPTIONS)
    with torch.no_grad():
        together = tiny_model.encode_text_trimmed(tokens)
        alone = torch.cat([tiny_model.encode_text_trimmed(tokens[i:i + 1]) for i in range(len(CAPTIONS))])
    torch.testing.assert_close(together, alone, atol=2e-6, rtol=0)
    assert (together[0] - together[1]).abs().max() > 1e-2  # distinct captions, distinct features
