"""What a store is made with: one frozen object, written to the store and read back from it."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from ..choices import DEFAULT_BLOCK, DEFAULT_SIZE, PAD_MODES, THRESH_DTYPES
from ..config import ALGORITHM_VERSION, TargetConfig
from ..stacks import BASELINE, Pipeline, pipeline, stack
from ._errors import StoreError
from ._layout import ArraySpec, layout

# Measured: a process at --block 64, --size 640 holds about 700 MB (27 bytes a pixel of its block).
PROCESS_BYTES_PER_PIXEL = 28


def _shapes(default: Any = MISSING, factory: Any = MISSING, implied: Any = MISSING) -> Any:
    """A setting that shapes the targets: it enters every content hash (:meth:`StoreSettings.shaping`).

    ``implied``: for a setting added after stores existed, the value those stores were made with.
    A store that records no such field has it; and the setting enters a content hash only where
    it differs from it, so adding a setting leaves every existing store's hashes as they were."""
    return field(default=default, default_factory=factory, metadata={"shapes": True, "implied": implied})


@dataclass(frozen=True)
class StoreSettings:
    """The settings fixed when a store is made. A new setting is a field here (and, to be
    chosen on the command line, an option): the store records it, the writer refuses a run
    that asks for another value, and every reader gets it back. A setting that shapes the
    targets is declared with ``_shapes``: it enters every content hash, by construction; the
    others say only how the store keeps the targets."""

    stack: str = _shapes(BASELINE, implied=BASELINE)  # whose transform and targets: a name of ocr_targets.stacks
    config: TargetConfig = _shapes(factory=TargetConfig)
    size: int = _shapes(DEFAULT_SIZE)  # the side of the square targets
    pad: str = _shapes(PAD_MODES[0])  # where the resized image sits in the square (the stack's pads)
    stack_options: dict[str, Any] = _shapes(factory=dict, implied={})  # the stack's Pipeline's own settings
    thresh_dtype: str = THRESH_DTYPES[0]  # how the threshold map is stored (choices.THRESH_DTYPES)
    with_images: bool = False  # whether the store holds the transformed images too
    block: int = DEFAULT_BLOCK  # images per shard, and per task of the job

    def __post_init__(self) -> None:
        row = stack(self.stack)  # an unknown name: ValueError naming the known ones
        if row.pipeline is None:
            raise ValueError(f"no store can be made for the {self.stack} stack: it makes its targets {row.where}")
        if self.pad not in row.pads:
            raise ValueError(f"the {self.stack} stack pads {' or '.join(row.pads)}, not {self.pad!r}")

    def shaping(self) -> dict[str, Any]:
        """The settings that shape the targets, as recorded (what a content hash covers)."""
        return {
            item.name: _recorded(getattr(self, item.name))
            for item in fields(self)
            if item.metadata.get("shapes") and getattr(self, item.name) != item.metadata["implied"]
        }

    def to_dict(self) -> dict[str, Any]:
        """As the store's root attributes hold them (with the algorithm version that wrote it)."""
        values = {item.name: _recorded(getattr(self, item.name)) for item in fields(self)}
        return {**values, "algorithm_version": ALGORITHM_VERSION}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StoreSettings:
        """The settings a store recorded. A storage setting it lacks (a store made before that
        setting existed) takes its default; a missing setting that shapes the targets is a
        StoreError, since a default could describe other targets than the ones stored."""
        found = {}
        for item in fields(cls):
            if item.name in values:
                found[item.name] = values[item.name]
            elif item.metadata.get("shapes") and item.metadata["implied"] is not MISSING:
                found[item.name] = item.metadata["implied"]
            elif item.metadata.get("shapes"):
                raise StoreError(
                    f"the store records no {item.name!r} setting: made by an older ocr-targets; "
                    "rebuild it with `ocr-targets precompute --overwrite`"
                )
        if "config" in found:
            found["config"] = TargetConfig(**found["config"])
        return cls(**found)

    def options(self, *spelled: str) -> list[str]:
        """The ``ocr-targets precompute`` options that make a store of these settings: those that
        differ from a plain run's defaults (a rerun into the store must repeat them, or is refused),
        and the ``spelled`` ones (``size``, ``pad``) at their default too, where a fix changes them.
        A PaddleOCR config's values are the config's, whose file the store does not record."""
        if self.stack_options:  # the config gives the size and DB parameters too
            options = ["--paddle-config", "<the config it was made from>"]
        else:
            options = [] if self.stack == BASELINE else ["--stack", self.stack]
            options += ["--size", str(self.size)] if self.size != DEFAULT_SIZE or "size" in spelled else []
            for name, value in self.config.to_dict().items():
                if value != getattr(TargetConfig(), name):
                    options += ["--" + name.replace("_", "-"), str(value)]
        options += ["--pad", self.pad] if self.pad != stack(self.stack).pads[0] or "pad" in spelled else []
        options += [] if self.thresh_dtype == THRESH_DTYPES[0] else ["--thresh-dtype", self.thresh_dtype]
        options += ["--with-images"] if self.with_images else []
        options += [] if self.block == DEFAULT_BLOCK else ["--block", str(self.block)]
        return options

    def pipeline(self) -> Pipeline:
        """The stack's Pipeline, made with this store's ``stack_options``: what its entries are computed with."""
        return pipeline(self.stack, **self.stack_options)

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


def _recorded(value: Any) -> Any:
    return value.to_dict() if isinstance(value, TargetConfig) else value
