"""Parameters of the DB target maps."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Bump whenever a change to the geometry or the maps could change a stored value:
# it is part of every content hash, so stores made by an older algorithm recompute.
ALGORITHM_VERSION = "3"  # 2: the baseline's data path (centered pad, clamp, EXIF words, word filters, eps);
# 3: its keypoints dropped by the resize, later words shifted


@dataclass(frozen=True)
class TargetConfig:
    """DBNet target parameters, defaulting to the competition baseline's values.

    ``shrink_ratio`` is the ``r`` of the DB paper: a word is shrunk (and its border
    widened) by ``D = area * (1 - r**2) / perimeter``. The threshold map is scaled
    into ``[thresh_min, thresh_max]``.
    """

    shrink_ratio: float = 0.4
    thresh_min: float = 0.3
    thresh_max: float = 0.7

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"TargetConfig.{name} must be a finite number, got {value!r}")
        if not 0.0 < self.shrink_ratio < 1.0:
            raise ValueError(f"TargetConfig.shrink_ratio must lie in (0, 1), got {self.shrink_ratio}")
        if not 0.0 <= self.thresh_min < self.thresh_max <= 1.0:
            raise ValueError(
                "TargetConfig needs 0 <= thresh_min < thresh_max <= 1, "
                f"got thresh_min={self.thresh_min}, thresh_max={self.thresh_max}"
            )

    def to_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}
