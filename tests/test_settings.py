"""StoreSettings: what shapes the targets enters the content hash, by construction; what an older store lacks."""

import dataclasses
import hashlib
import json

import pytest

from ocr_targets import ALGORITHM_VERSION, TargetConfig
from ocr_targets.hashing import settings_digest
from ocr_targets.store import StoreError, StoreSettings

OTHER = {"config": TargetConfig(shrink_ratio=0.5), "size": 512, "pad": "top-left", "thresh_dtype": "uint8",
         "with_images": True, "block": 8}  # fmt: skip


def test_every_setting_is_either_shaping_or_storage_and_only_shaping_ones_change_the_digest():
    default = StoreSettings()
    shaping = set(default.shaping())
    assert shaping == {"config", "size", "pad"}  # and the stack and its options, where not the baseline's (below)
    assert set(OTHER) | {"stack", "stack_options"} == {item.name for item in dataclasses.fields(StoreSettings)}
    for name, value in OTHER.items():
        changed = settings_digest(dataclasses.replace(default, **{name: value})) != settings_digest(default)
        assert changed == (name in shaping), name


def test_a_store_without_a_storage_setting_gets_its_default_without_a_shaping_one_is_refused():
    recorded = StoreSettings(**OTHER).to_dict()
    assert StoreSettings.from_dict(recorded) == StoreSettings(**OTHER)
    older = {key: value for key, value in recorded.items() if key != "block"}
    assert StoreSettings.from_dict(older).block == StoreSettings().block
    with pytest.raises(StoreError, match="records no 'pad' setting: made by an older ocr-targets; rebuild it"):
        StoreSettings.from_dict({key: value for key, value in recorded.items() if key != "pad"})


def test_the_stack_setting_leaves_every_existing_store_as_it_was_and_refuses_a_stack_without_a_store():
    """Stores made before the setting existed are the baseline's: they read back so, and their
    digest (so every content hash) is the one they were made with."""
    before = {"algorithm": ALGORITHM_VERSION, "config": TargetConfig().to_dict(), "size": 640, "pad": "center"}
    assert settings_digest(StoreSettings()) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    recorded = {key: value for key, value in StoreSettings().to_dict().items() if key != "stack"}
    assert StoreSettings.from_dict(recorded).stack == "baseline"
    with pytest.raises(ValueError, match="the paddleocr stack pads none, not 'center'"):
        StoreSettings(stack="paddleocr")
    with pytest.raises(ValueError, match="unknown training stack 'mmocr': one of baseline, paddleocr, doctr"):
        StoreSettings(stack="mmocr")


def test_a_stacks_options_enter_the_digest_only_where_given():
    """A store's stack options are the ones that differ from its Pipeline's defaults: none for the
    baseline, so the baseline's digest is as it was; each option given changes it."""
    paddle = StoreSettings(stack="paddleocr", pad="none")
    assert "stack_options" not in paddle.shaping() and "stack_options" not in StoreSettings().shaping()
    digests = {
        settings_digest(dataclasses.replace(paddle, stack_options=options))
        for options in ({}, {"min_text_size": 4}, {"ignore_orientation": True})
    }
    assert len(digests) == 3
    recorded = dataclasses.replace(paddle, stack_options={"min_text_size": 4}).to_dict()
    assert StoreSettings.from_dict(recorded).stack_options == {"min_text_size": 4}


def test_the_options_that_make_a_store_are_those_that_differ_from_a_plain_runs():
    assert StoreSettings().options() == []
    assert StoreSettings(**OTHER).options() == [
        "--size", "512", "--shrink-ratio", "0.5", "--pad", "top-left", "--thresh-dtype", "uint8", "--with-images",
        "--block", "8",
    ]  # fmt: skip
    assert StoreSettings().options("size", "pad") == ["--size", "640", "--pad", "center"]
    assert StoreSettings(stack="doctr", size=1024).options() == ["--stack", "doctr", "--size", "1024"]
    paddle = StoreSettings(stack="paddleocr", pad="none", size=960, stack_options={"min_text_size": 8})
    assert paddle.options() == ["--paddle-config", "<the config it was made from>"]  # its size is the config's
