"""What the job's inputs can be wrong with, as a type with fields rather than a string to parse."""

from __future__ import annotations


class InputError(ValueError):
    """A file the job reads that cannot be used, said as ``where: problem (detail)``: ``where``
    the file (or the file's entry), ``problem`` what is wrong with it (failures are grouped by
    it), ``detail`` this file's particulars."""

    def __init__(self, where: object, problem: str, detail: str = "") -> None:
        super().__init__(f"{where}: {problem}" + (f" ({detail})" if detail else ""))
        self.where, self.problem, self.detail = str(where), problem, detail

    def __reduce__(self) -> tuple:  # pickled from a worker process with its fields
        return type(self), (self.where, self.problem, self.detail)


class AnnotationError(InputError):
    """An annotation file, or one image's entry in it, that cannot be used."""


# The problem of an image entry some of whose words cannot be used, the words told in its detail:
# one problem for all such images, so that the job's summary groups them on one line.
WORDS_UNUSABLE = "words that cannot be used"
