import numpy as np


def assert_same_targets(fast, reference):
    """Targets (or stored entries) equal within the contract: maps, masks, shrunk polygons."""
    np.testing.assert_array_equal(fast.prob_map, reference.prob_map)
    np.testing.assert_allclose(fast.thresh_map, reference.thresh_map, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(fast.prob_mask, reference.prob_mask)
    np.testing.assert_array_equal(fast.thresh_mask, reference.thresh_mask)
    assert len(fast.shrunk_polygons) == len(reference.shrunk_polygons)
    for a, b in zip(fast.shrunk_polygons, reference.shrunk_polygons, strict=True):
        np.testing.assert_array_equal(a, b)
