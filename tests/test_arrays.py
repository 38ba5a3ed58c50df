"""The table of maps (ocr_targets.arrays) against what holds and carries them."""

import dataclasses

from ocr_targets.arrays import BINARY_MAPS, MAPS
from ocr_targets.maps import Targets
from ocr_targets.store import Entry, StoreSettings
from ocr_targets.store._layout import MAP_ARRAYS


def test_every_map_of_the_table_is_a_field_of_targets_and_entries():
    names = [spec.name for spec in MAPS]
    targets = [field.name for field in dataclasses.fields(Targets)]
    assert names == [name for name in targets if name != "shrunk_polygons"]
    assert set(names) <= {field.name for field in dataclasses.fields(Entry)}


def test_the_store_lays_out_an_array_for_every_map():
    layout = StoreSettings().layout
    assert layout["binary_maps"].tail[0] == len(BINARY_MAPS)
    assert set(MAP_ARRAYS) <= set(layout)
    assert len({spec.batch_key for spec in MAPS}) == len(MAPS)
