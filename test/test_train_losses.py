"""Losses on hand-made predictions: masks, mask-id, semantic and association."""
import torch

from vps_ros.train.batch import Target
from vps_ros.train.config import LossConfig
from vps_ros.train.frames import NO_TRACK
from vps_ros.train.losses import Criterion, Match, association_loss, mask_losses


def target(classes, tracks, labels):
    """A Target on a small grid from a map of segment labels (-1 = void)."""
    labels = torch.tensor(labels)
    g = len(classes)
    masks = torch.stack([(labels == i).float() for i in range(g)]) if g else torch.zeros(0, *labels.shape)
    return Target(masks, torch.tensor(classes, dtype=torch.long),
                  torch.tensor(tracks, dtype=torch.long), labels >= 0, labels)


def test_mask_losses_reward_the_right_mask_and_ignore_invalid_pixels():
    t = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False]])
    good_bce, good_dice = mask_losses(torch.tensor([[9.0, 9.0, -9.0, 9.0]]), t, valid)
    bad_bce, bad_dice = mask_losses(torch.tensor([[-9.0, 9.0, 9.0, 9.0]]), t, valid)
    assert good_bce < 1e-3 and good_dice < 1e-3      # the invalid 4th pixel does not count
    assert bad_bce > 5 and bad_dice > 0.35


def test_criterion_prefers_predictions_that_match_the_ground_truth():
    torch.manual_seed(0)
    labels = [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, -1], [2, 2, 2, 2]]
    targets = [target([0, 3, 4], [NO_TRACK, 3005, 4001], labels)]
    criterion = Criterion(LossConfig(deep_supervision=False), num_classes=5)
    n = 4

    def outputs(right: bool):
        class_logits = torch.full((1, n, 6), -4.0)
        mask_logits = torch.full((1, n, 4, 4), -6.0)
        lab = torch.tensor(labels) if right else torch.tensor(labels).T  # wrong shapes
        for q, (segment, cls) in enumerate([(0, 0), (1, 3), (2, 4)]):
            class_logits[0, q, cls if right else (cls + 1) % 5] = 4.0
            mask_logits[0, q][lab == segment] = 6.0
        class_logits[0, 3, 5] = 4.0                      # a "no object" query
        return {"class_logits": class_logits, "mask_logits": mask_logits,
                "embeddings": torch.randn(1, n, 4)}

    good, good_parts = criterion(outputs(True), targets)
    bad, bad_parts = criterion(outputs(False), targets)
    assert good < bad
    for name in ("class", "bce", "dice", "mask_id"):
        assert good_parts[name] < bad_parts[name], name
    assert good_parts["mask_id"] < 0.01 and good_parts["dice"] < 0.01


def test_association_loss_is_low_when_same_tracks_have_same_embeddings():
    labels = [[0, 1], [2, 2]]
    pair = [target([6, 6, 0], [6001, 6002, NO_TRACK], labels),
            target([6, 6, 0], [6002, 6001, NO_TRACK], labels)]
    matches = [Match(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))] * 2
    e1, e2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    stuff = torch.tensor([0.0, 0.0, 1.0])
    aligned = torch.stack([torch.stack([e1, e2, stuff]), torch.stack([e2, e1, stuff])])
    swapped = torch.stack([torch.stack([e1, e2, stuff]), torch.stack([e1, e2, stuff])])
    good = association_loss(aligned, pair, matches, temperature=0.1)
    bad = association_loss(swapped, pair, matches, temperature=0.1)
    assert good[0] < 1e-3 and good[1] < 1e-6            # eq. 1 and eq. 2
    assert bad[0] > 5 and abs(float(bad[1]) - 1.0) < 1e-6


def test_association_loss_without_shared_tracks_or_things_is_zero_and_differentiable():
    pair = [target([6], [6001], [[0]]), target([6], [6009], [[0]])]
    matches = [Match(torch.tensor([0]), torch.tensor([0]))] * 2
    embeddings = torch.randn(2, 1, 4, requires_grad=True)
    contrastive, auxiliary = association_loss(embeddings, pair, matches, 0.1)
    assert contrastive == 0 and auxiliary > 0
    (contrastive + auxiliary).backward()
    assert torch.isfinite(embeddings.grad).all()


def test_frames_without_segments_only_learn_no_object():
    criterion = Criterion(LossConfig(deep_supervision=False), num_classes=5)
    empty = target([], [], [[-1, -1], [-1, -1]])
    outputs = {"class_logits": torch.zeros(1, 3, 6, requires_grad=True),
               "mask_logits": torch.zeros(1, 3, 2, 2, requires_grad=True),
               "embeddings": torch.zeros(1, 3, 4, requires_grad=True)}
    total, parts = criterion(outputs, [empty])
    total.backward()
    assert parts["bce"] == parts["dice"] == parts["mask_id"] == 0 and parts["class"] > 0
