"""The figures of the live demo (teaching/live_demo.ipynb): drawn outside pyplot, and showing what they claim."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from lenet import plotting


def test_figure_png_renders_a_figure_that_pyplot_never_holds():
    before = plt.get_fignums()
    png = plotting.figure_png(plotting.mask_tiles(torch.ones(6, 1, 3, 3)))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert plt.get_fignums() == before  # nothing left for a notebook to show again at the end of a cell


@pytest.mark.parametrize("shape", [(6, 1, 3, 3), (16, 6, 3, 3)])
def test_mask_tiles_shows_every_entry_of_a_conv_mask_once_and_numbers_every_filter(shape):
    mask = (torch.arange(np.prod(shape)).reshape(shape) % 3 == 0).float()
    image, labels = plotting._tiles(mask)
    assert (~np.isnan(image)).sum() == mask.numel() and np.nansum(image) == mask.sum()
    assert [text for _, _, text in labels] == [str(f) for f in range(shape[0])]
    rows = {y for _, y, _ in labels}
    assert len(rows) * len(labels) // len(rows) == shape[0]  # full rows of tiles: 2 x 3 for conv1, 1 x 16 for conv2


def test_mask_tiles_draws_a_linear_mask_as_its_matrix_and_refuses_other_shapes():
    mask = (torch.rand(10, 84, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    (image,) = plotting.mask_tiles(mask, "fc3").axes[0].get_images()
    assert np.array_equal(image.get_array(), mask.numpy())
    with pytest.raises(ValueError, match=r"2-D \(Linear\) or 4-D \(Conv2d\) mask, got shape \(6,\)"):
        plotting.mask_tiles(torch.ones(6))


def test_score_histogram_counts_pruned_and_kept_and_draws_the_threshold_only_when_given():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    pruned = scores <= 0.2
    legend = [t.get_text() for t in plotting.score_histogram(scores, pruned, 0.2).axes[0].get_legend().get_texts()]
    assert legend == ["pruned (2)", "kept (3)", "threshold 0.2"]
    legend = [t.get_text() for t in plotting.score_histogram(scores, pruned, None).axes[0].get_legend().get_texts()]
    assert legend == ["pruned (2)", "kept (3)"]
    with pytest.raises(ValueError, match="scores has 5 entries but pruned has 3"):
        plotting.score_histogram(scores, pruned[:3], None)


def test_kernel_steps_frames_exactly_the_values_that_changed_since_the_row_above():
    before, mask = torch.full((3, 3), 0.5), torch.ones(3, 3)
    after = before.clone()
    after[0, 1] = -0.25
    fig = plotting.kernel_steps({"first": {"w": before, "w_mask": mask}, "then": {"w": after, "w_mask": mask}})
    (frame,) = fig.axes[0].patches
    assert frame.get_xy() == pytest.approx((1 - 0.45, 4 - 0.45))  # column "w", row "then", entry [0, 1]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "-0.250" in texts and texts.count("1") == 18  # the masks print their 0s and 1s
    with pytest.raises(ValueError, match="3×3 tensors, got shapes"):
        plotting.kernel_steps({"first": {"w": torch.ones(2, 2)}})
    with pytest.raises(ValueError, match="same tensor names in every row"):
        plotting.kernel_steps({"first": {"w": before}, "then": {"v": before}})
