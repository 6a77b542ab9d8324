"""The modality codes a modality-aware network reads beside its inputs (FusionUNet's ``modality_classes``).

One row per input, one-hot over :data:`CODE_MODALITIES`; an input whose modality is not known gets a row of
zeros, which such a network is trained to read as "any modality" (``training/trainer.py``, ``MODALITY_DROPOUT``).
numpy only: ONNX Runtime inference, training and the export share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CODE_MODALITIES = ("ct", "mr", "pet", "spect")  # the order of a code's entries: never reorder (weights depend on it)


def modality_codes(modalities: Sequence[str | None]) -> np.ndarray:
    """Codes (n_inputs, len(CODE_MODALITIES)) float32 of one modality name (any case) or None per input; an
    unknown name is a ValueError."""
    codes = np.zeros((len(modalities), len(CODE_MODALITIES)), np.float32)
    for i, name in enumerate(modalities):
        if name is None:
            continue
        key = str(name).lower()
        if key not in CODE_MODALITIES:
            raise ValueError(f"unknown modality {name!r} (known: {', '.join(CODE_MODALITIES)})")
        codes[i, CODE_MODALITIES.index(key)] = 1.0
    return codes
