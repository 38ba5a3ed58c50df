"""The batch job: ``ocr-targets precompute`` (also ``python -m precompute``), ``verify``, ``info``, ``show``."""
