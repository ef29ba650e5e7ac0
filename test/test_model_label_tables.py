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
