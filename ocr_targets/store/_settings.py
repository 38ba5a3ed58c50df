"""What a store is made with: one frozen object, written to the store and read back from it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..choices import DEFAULT_BLOCK
from ..config import ALGORITHM_VERSION, TargetConfig
from ._layout import ArraySpec, layout

# Measured: a process at --block 64, --size 640 holds about 700 MB (27 bytes a pixel of its block).
PROCESS_BYTES_PER_PIXEL = 28


@dataclass(frozen=True)
class StoreSettings:
    """The settings fixed when a store is made. A new setting is a field here (and, to be
    chosen on the command line, an option): the store records it, the writer refuses a run
    that asks for another value, and every reader gets it back."""

    config: TargetConfig = field(default_factory=TargetConfig)
    size: int = 640  # the side of the square targets
    pad: str = "center"  # where the resized image sits in the square (geometry.PAD_MODES)
    thresh_dtype: str = "float32"  # how the threshold map is stored (_layout.THRESH_DTYPES)
    with_images: bool = False  # whether the store holds the transformed images too
    block: int = DEFAULT_BLOCK  # images per shard, and per task of the job

    def to_dict(self) -> dict[str, Any]:
        """As the store's root attributes hold them (with the algorithm version that wrote it)."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return {**values, "config": self.config.to_dict(), "algorithm_version": ALGORITHM_VERSION}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StoreSettings:
        known = {item.name for item in fields(cls)} - {"config"}
        return cls(TargetConfig(**values["config"]), **{name: values[name] for name in known})

    @property
    def layout(self) -> dict[str, ArraySpec]:
        """Every sharded array of such a store."""
        return layout(self.size, self.thresh_dtype, self.with_images)

    @property
    def process_bytes(self) -> int:
        """About the memory a job's process holds at most: its block's values (maps, images) and
        zarrs' copy of each shard as it writes it, PROCESS_BYTES_PER_PIXEL a pixel of the block."""
        per_pixel = PROCESS_BYTES_PER_PIXEL + (6 if self.with_images else 0)
        return self.block * self.size**2 * per_pixel

    @property
    def block_bytes(self) -> int:
        """A block's threshold maps as float32: the largest array a task fills and zarrs copies."""
        return self.block * self.size**2 * 4
