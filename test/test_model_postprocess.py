"""Mask-wise merge on hand-made logits: thresholds, score order, overlap, areas, stuff
merging, boxes and embeddings."""
import numpy as np
import pytest
import torch

from vps_ros.config import from_mapping
from vps_ros.errors import ConfigError
from vps_ros.model.config import PostprocessConfig
from vps_ros.model.postprocess import merge_masks

IS_THING = np.array([False, False, True, True])  # classes 0, 1 stuff; 2, 3 things
NO_MIN = PostprocessConfig(min_area_thing=0, min_area_stuff=0)
H, W = 8, 10


def logits_for(classes_scores):
    """Class logits giving query i class c with probability p (rest on "no object")."""
    rows = []
    for class_id, p in classes_scores:
        probs = np.full(5, (1 - p) / 4 * 0.999)
        probs[class_id] = p
        probs[-1] += 1 - probs.sum()
        rows.append(np.log(probs))
    return torch.tensor(np.array(rows), dtype=torch.float32)


def masks_for(*boxes):
    """Mask logits +10 inside (x0, y0, x1, y1) boxes, -10 elsewhere, at H x W."""
    out = torch.full((len(boxes), H, W), -10.0)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        out[i, y0:y1, x0:x1] = 10.0
    return out


def merge(class_logits, mask_logits, config=NO_MIN, embeddings=None):
    n = len(class_logits)
    embeddings = torch.arange(n * 3, dtype=torch.float32).view(n, 3) + 1 \
        if embeddings is None else embeddings
    return merge_masks(class_logits, mask_logits, embeddings, IS_THING, (H, W), config)


def test_queries_below_the_class_threshold_are_dropped():
    seg = merge(logits_for([(2, 0.9), (3, 0.4)]), masks_for((0, 0, 3, 3), (5, 5, 8, 8)))
    assert seg.num_segments == 1 and seg.class_ids.tolist() == [2]
    assert seg.scores[0] == pytest.approx(0.9, abs=1e-3)


def test_higher_scores_paste_first_and_keep_the_overlap():
    # Query 0 (score 0.6) and query 1 (score 0.9) overlap in columns 4..5.
    seg = merge(logits_for([(2, 0.6), (3, 0.9)]), masks_for((0, 0, 6, 8), (4, 0, 10, 8)),
                PostprocessConfig(overlap_threshold=0.5, min_area_thing=0))
    assert seg.class_ids.tolist() == [3, 2]              # in score order
    assert (seg.segment_map[:, 4:] == 0).all() and (seg.segment_map[:, :4] == 1).all()
    assert seg.areas.tolist() == [48, 32]


def test_a_mask_mostly_covered_by_better_segments_is_dropped():
    config = PostprocessConfig(overlap_threshold=0.8, min_area_thing=0)
    seg = merge(logits_for([(2, 0.6), (3, 0.9)]), masks_for((0, 0, 6, 8), (4, 0, 10, 8)), config)
    # Query 0 keeps 32 of its 48 pixels (0.67 < 0.8): dropped, its pixels stay void.
    assert seg.class_ids.tolist() == [3]
    assert (seg.segment_map[:, :4] == -1).all()


def test_minimum_areas_for_things_and_stuff():
    class_logits = logits_for([(2, 0.9), (0, 0.8), (3, 0.7)])
    masks = masks_for((0, 0, 2, 2), (2, 0, 10, 2), (0, 4, 10, 8))   # areas 4, 16, 40
    seg = merge(class_logits, masks, PostprocessConfig(min_area_thing=5, min_area_stuff=17))
    assert seg.class_ids.tolist() == [3]
    seg = merge(class_logits, masks, PostprocessConfig(min_area_thing=4, min_area_stuff=16))
    assert seg.class_ids.tolist() == [2, 0, 3]


def test_stuff_of_one_class_is_merged_and_things_are_not():
    class_logits = logits_for([(0, 0.9), (0, 0.8), (2, 0.7), (2, 0.6)])
    masks = masks_for((0, 0, 10, 2), (0, 6, 10, 8), (0, 2, 4, 6), (6, 2, 10, 6))
    seg = merge(class_logits, masks)
    assert seg.class_ids.tolist() == [0, 2, 2]
    assert seg.areas.tolist() == [40, 16, 16]
    assert (seg.segment_map[:2] == 0).all() and (seg.segment_map[6:] == 0).all()
    unmerged = merge(class_logits, masks, PostprocessConfig(merge_stuff=False, min_area_thing=0,
                                                            min_area_stuff=0))
    assert unmerged.class_ids.tolist() == [0, 0, 2, 2]


def test_boxes_areas_and_normalised_embeddings():
    embeddings = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    seg = merge(logits_for([(2, 0.9), (3, 0.8)]), masks_for((1, 2, 4, 7), (6, 0, 10, 1)),
                embeddings=embeddings)
    assert seg.boxes.tolist() == [[1, 2, 4, 7], [6, 0, 10, 1]]     # x1, y1 exclusive
    assert seg.areas.tolist() == [15, 4]
    np.testing.assert_allclose(seg.embeddings, [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]], atol=1e-6)
    assert seg.segment_map.dtype == np.int32 and seg.is_thing.tolist() == [True, True]
    assert seg.embeddings.dtype == np.float32 and seg.scores.dtype == np.float32


def test_mask_threshold_and_max_segments():
    class_logits = logits_for([(2, 0.9), (3, 0.8), (2, 0.7)])
    masks = masks_for((0, 0, 2, 2), (4, 4, 6, 6), (8, 0, 10, 2))
    masks[1] = torch.where(masks[1] > 0, torch.tensor(0.5), masks[1])  # sigmoid 0.62
    seg = merge(class_logits, masks, PostprocessConfig(mask_threshold=0.7, min_area_thing=0))
    assert seg.class_ids.tolist() == [2, 2]
    seg = merge(class_logits, masks, PostprocessConfig(max_segments=2, min_area_thing=0))
    assert seg.num_segments == 2


def test_masks_at_lower_resolution_are_resized_to_the_output():
    class_logits = logits_for([(2, 0.9)])
    low = torch.full((1, 4, 5), -10.0)
    low[0, :2, :] = 10.0                                   # top half
    seg = merge_masks(class_logits, low, torch.ones(1, 3), IS_THING, (H, W), NO_MIN)
    assert seg.image_size == (H, W) and seg.areas.tolist() == [40]


def test_nothing_confident_gives_an_empty_frame():
    seg = merge(logits_for([(2, 0.2)]), masks_for((0, 0, 3, 3)))
    assert seg.num_segments == 0 and (seg.segment_map == -1).all()
    assert seg.embeddings.shape == (0, 3)


def test_postprocess_thresholds_are_validated():
    with pytest.raises(ConfigError, match="perception.yaml: segmenter.class_threshold: 1.5"):
        from_mapping(PostprocessConfig, {"class_threshold": 1.5}, "perception.yaml: segmenter")


def _two_blobs(first=(0, 0, 3, 3), second=(5, 4, 10, 8)):
    """One query's mask covering two separate boxes."""
    masks = masks_for(first)
    x0, y0, x1, y1 = second
    masks[0, y0:y1, x0:x1] = 10.0
    return masks


def test_a_thing_mask_in_separate_parts_becomes_one_segment_per_part():
    embeddings = torch.tensor([[0.0, 3.0, 4.0]])
    seg = merge(logits_for([(2, 0.9)]), _two_blobs(), embeddings=embeddings)
    # The largest part (5 x 4) keeps the query's segment; the other is appended.
    assert seg.class_ids.tolist() == [2, 2] and seg.areas.tolist() == [20, 9]
    assert seg.boxes.tolist() == [[5, 4, 10, 8], [0, 0, 3, 3]]
    assert seg.scores[0] == seg.scores[1]
    np.testing.assert_allclose(seg.embeddings, [[0.0, 0.6, 0.8]] * 2, atol=1e-6)
    whole = merge(logits_for([(2, 0.9)]), _two_blobs(),
                  PostprocessConfig(min_area_thing=0, min_area_stuff=0, split_things=False))
    assert whole.num_segments == 1 and whole.areas.tolist() == [29]


def test_small_parts_become_void_and_diagonal_neighbours_are_one_part():
    seg = merge(logits_for([(2, 0.9)]), _two_blobs(),
                PostprocessConfig(min_area_thing=10, min_area_stuff=0))
    assert seg.num_segments == 1 and seg.areas.tolist() == [20]
    assert seg.boxes.tolist() == [[5, 4, 10, 8]] and (seg.segment_map[:3, :3] == -1).all()
    touching = merge(logits_for([(3, 0.9)]), _two_blobs(second=(3, 3, 6, 6)))
    assert touching.num_segments == 1 and touching.areas.tolist() == [18]


def test_stuff_in_separate_parts_stays_one_segment():
    seg = merge(logits_for([(0, 0.9)]), _two_blobs())
    assert seg.num_segments == 1 and seg.areas.tolist() == [29]


def test_splitting_respects_max_segments():
    class_logits = logits_for([(2, 0.9), (3, 0.8)])
    masks = torch.cat([_two_blobs(), masks_for((0, 5, 2, 8))])
    config = PostprocessConfig(min_area_thing=0, min_area_stuff=0, max_segments=2)
    assert merge(class_logits, masks, config).class_ids.tolist() == [2, 3]
    config = PostprocessConfig(min_area_thing=0, min_area_stuff=0, max_segments=3)
    assert merge(class_logits, masks, config).class_ids.tolist() == [2, 3, 2]
