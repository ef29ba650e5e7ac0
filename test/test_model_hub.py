import pytest

from vps_ros.errors import ConfigError
from vps_ros.model.hub import is_hub_id, parse_hub_id


def test_hub_ids_with_and_without_a_revision():
    assert parse_hub_id("hf:facebook/mask2former-swin-tiny-cityscapes-panoptic") == (
        "facebook/mask2former-swin-tiny-cityscapes-panoptic", None)
    assert parse_hub_id("hf:shi-labs/oneformer_cityscapes_swin_large@v1.2") == (
        "shi-labs/oneformer_cityscapes_swin_large", "v1.2")
    assert is_hub_id("hf:a/b") and not is_hub_id("models/default.pt")


@pytest.mark.parametrize("bad", ["hf:", "hf:noslash", "hf:a/b@", "hf:/b", "hf:a/b/c",
                                 "facebook/x"])
def test_malformed_hub_ids_name_the_expected_form(bad):
    with pytest.raises(ConfigError, match=r"ORG/NAME\[@REVISION\]"):
        parse_hub_id(bad)
