"""Chart captions follow the number of seeds: bands and error bars are named only when there
is a spread to draw."""

from ui.lessons.curves import chart_caption
from ui.lessons.hurts import head_start_caption


def test_curve_caption_names_bands_only_with_several_seeds():
    several = chart_caption(3, "test accuracy on the UCI digits")
    assert "bands: ±1 standard deviation over seeds" in several
    assert "mean test accuracy on the UCI digits" in several
    one = chart_caption(1)
    assert "one seed" in one and "no spread" in one
    assert "bands:" not in one and "mean" not in one


def test_head_start_caption_names_error_bars_only_with_several_seeds():
    assert "error bars: ±1 standard deviation" in head_start_caption(2)
    one = head_start_caption(1)
    assert "one seed" in one and "error bars:" not in one and "mean over seeds" not in one
