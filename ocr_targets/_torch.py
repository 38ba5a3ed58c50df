"""PyTorch, an optional dependency: imported here so the message on its absence is said once."""

try:
    import torch
except ImportError as error:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "the dataset and collate need PyTorch: pip install 'ocr-targets[torch]' (torch==2.13.0 for a CPU build)"
    ) from error

__all__ = ["torch"]
