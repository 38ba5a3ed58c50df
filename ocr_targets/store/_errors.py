"""The one error the store raises."""


class StoreError(RuntimeError):
    """A store that is missing, locked, of another version or settings, or damaged."""
