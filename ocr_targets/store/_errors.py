"""The errors the store raises: StoreError, and the kinds a reader acts on."""


class StoreError(RuntimeError):
    """A store that is missing, locked, of another version or settings, or damaged."""


class NotDone(StoreError):
    """An entry that does not hold its image's targets: never completed (``holder`` None), or
    holding another image's (``holder``: its name, or ``"?"`` for a name not in the file list)."""

    def __init__(self, path: str, index: int, name: str, holder: str | None) -> None:
        if holder is None:
            why = "was never completed (its image failed, or a run was interrupted)"
        else:
            why = f"holds the targets of another image ({holder}): its file list and its entries disagree"
        super().__init__(f"{path}: entry {index} ({name}) {why}; rerun `ocr-targets precompute`")
        self.path, self.index, self.name, self.holder = path, index, name, holder

    def __reduce__(self) -> tuple:  # pickled from a worker process (joblib, DataLoader) with its fields
        return type(self), (self.path, self.index, self.name, self.holder)


class Changed(StoreError):
    """A store that a precompute run changed since a reader opened it: what the reader holds
    (file list, layout) may now point at other images' entries."""

    def __init__(self, path: str, writing: str | None) -> None:
        cause = f"a precompute job is writing it: {writing}" if writing else "a precompute run rewrote it"
        super().__init__(
            f"{path}: the store changed since it was opened ({cause}), so its entries may now be other images'; "
            "this read is refused: open it again (open_store, or a new StoreCollate or StoreDataset)"
            + (" once that job is done" if writing else "")
        )
        self.path, self.writing = path, writing

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.writing)


class Unowned(StoreError):
    """A store's folder that holds files no store wrote (``paths``), which ``--overwrite`` would
    delete with it: refused, nothing deleted."""

    def __init__(self, path: str, paths: list[str]) -> None:
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        super().__init__(
            f"{path}: --overwrite deletes the store, and its folder also holds what no precompute job wrote "
            f"({shown}); nothing was deleted: move those out of it, or choose another --out"
        )
        self.path, self.paths = path, paths

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.paths)


class Unreadable(StoreError):
    """Objects of a store that the storage will not give (``problems``: each object, then why),
    where a read needed them."""

    def __init__(self, path: str, what: str, problems: list[str]) -> None:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        super().__init__(f"{path}: cannot read {what}: {shown}")
        self.path, self.what, self.problems = path, what, problems

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.what, self.problems)


class OtherStack(StoreError):
    """A store made for another training stack's transform and targets than the reader serves
    (``stack``: the store's; ``wanted``: the reader's)."""

    def __init__(self, path: str, stack: str, wanted: str, reader: str) -> None:
        super().__init__(
            f"{path}: made for the {stack} stack (its transform and targets), and {reader} serves the {wanted} "
            f"stack's; make a store for it with `ocr-targets precompute --stack {wanted}`"
        )
        self.path, self.stack, self.wanted, self.reader = path, stack, wanted, reader

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.stack, self.wanted, self.reader)
