"""A model's labels mapped by name onto the class tables of config/."""
import pytest

from vps_ros.errors import ConfigError
from vps_ros.model.label_tables import label_index, match_table, normalise_label
from vps_ros.types import ClassTable

SYNTHETIC = ClassTable.builtin("synthetic")


@pytest.mark.parametrize("spelling", ["traffic light", "Traffic_Light", "traffic-light",
                                      "  TRAFFIC   light ", "traffic__light"])
def test_case_spaces_underscores_and_dashes_do_not_matter(spelling):
    assert normalise_label(spelling) == "traffic light"


def test_labels_in_another_order_and_a_subset_map_onto_table_ids():
    # model label 0 is "sky" (table id 5), 1 is "car" (6), 2 is "road" (0)
    index = label_index(["Sky", "car", "ROAD"], SYNTHETIC)
    assert index.tolist() == [2, -1, -1, -1, -1, 0, 1, -1, -1, -1]


@pytest.mark.parametrize("labels", [["road", "Road"], ["road", "lamp post"]])
def test_a_label_twice_or_an_unknown_label_fits_no_table(labels):
    assert label_index(labels, SYNTHETIC) is None


def test_the_first_table_in_file_order_that_names_every_label_is_chosen():
    table, index = match_table(["person", "car"], "model 'x'")
    assert table.name == "cityscapes-vps"          # before kitti-step, which also fits
    assert index[table.id_of("person")] == 0 and index[table.id_of("car")] == 1
    table, _ = match_table(["pedestrian", "car"], "model 'x'")
    assert table.name == "synthetic"
    with pytest.raises(ConfigError, match=r"model 'x': its 2 labels \(person, dragon\) match "
                                          r"no class table in config/"):
        match_table(["person", "dragon"], "model 'x'")


#: COCO panoptic's category names as its panoptic models' id2label spell them (the
#: order of panoptic_coco_categories.json), written out here from COCO's release rather
#: than read from config/, so that the shipped table is checked against them.
COCO_THINGS = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light "
    "fire_hydrant stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear "
    "zebra giraffe backpack umbrella handbag tie suitcase frisbee skis snowboard "
    "sports_ball kite baseball_bat baseball_glove skateboard surfboard tennis_racket bottle "
    "wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop "
    "mouse remote keyboard cell_phone microwave oven toaster sink refrigerator book clock "
    "vase scissors teddy_bear hair_drier toothbrush").split()
COCO_STUFF = (
    "banner blanket bridge cardboard counter curtain door-stuff floor-wood flower fruit "
    "gravel house light mirror-stuff net pillow platform playingfield railroad river road "
    "roof sand sea shelf snow stairs tent towel wall-brick wall-stone wall-tile wall-wood "
    "water-other window-blind window-other tree-merged fence-merged ceiling-merged "
    "sky-other-merged cabinet-merged table-merged floor-other-merged pavement-merged "
    "mountain-merged grass-merged dirt-merged paper-merged food-other-merged "
    "building-other-merged rock-merged wall-other-merged rug-merged").split()


def test_a_coco_panoptic_models_labels_get_the_shipped_coco_table_in_its_order():
    labels = [n.replace("_", " ") for n in COCO_THINGS + COCO_STUFF]
    assert (len(COCO_THINGS), len(COCO_STUFF)) == (80, 53)
    table, index = match_table(labels, "model 'x'")
    assert table.name == "coco-panoptic" and len(table) == 133
    assert index.tolist() == list(range(133))      # label k is class k
    assert table.thing_ids == list(range(80))
    assert [table[k].name for k in (0, 62, 80, 132)] == ["person", "tv", "banner",
                                                          "rug-merged"]
    assert len({c.color for c in table}) == 133    # every class drawn in its own colour
    # a COCO model's labels in another order still map each to its named class
    shuffled = labels[::-1]
    _, index = match_table(shuffled, "model 'x'")
    assert [shuffled[index[c.id]] for c in table] == labels
