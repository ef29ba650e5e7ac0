"""Transformers models given bad or partial inputs: a config without id2label, a
tokenizer without OneFormer's task words, the hub refusing a request (a real HTTP server
on loopback), transformers not installed; and classes of the table that the model lacks,
which it must never predict."""
import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch
from transformers import CLIPTokenizer

from testkit import hf_models
from testkit.scenes import CLASSES
from vps_ros.errors import ConfigError
from vps_ros.model import PostprocessConfig
from vps_ros.model.registry import LoadOptions, open_segmenter
from vps_ros.pipeline import PipelineConfig, load_segmenter

LOOSE = PostprocessConfig(class_threshold=0.0, mask_threshold=0.5, overlap_threshold=0.0,
                          min_area_thing=0, min_area_stuff=0)


def test_a_config_without_id2label_says_its_classes_are_unknown(tmp_path):
    folder = hf_models.save_mask2former(tmp_path / "m2f")
    config = json.loads((folder / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=rf"model '{folder}'.*config.json has no id2label, so "
                                          r"its classes are unknown"):
        open_segmenter(str(folder))


def test_a_tokenizer_without_the_task_words_is_refused(tmp_path):
    folder = hf_models.save_oneformer(tmp_path / "oneformer", tokenizer=False)
    letters = sorted(set("theaskis"))             # no p, n, o, c: "panoptic" is unknown
    vocab = {t: i for i, t in enumerate(letters + [c + "</w>" for c in letters])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                  pad_token="<|endoftext|>").save_pretrained(folder)
    with pytest.raises(ConfigError, match=r"OneFormer is told its task by text .*its "
                                          r"vocabulary does not hold the words of 'the task "
                                          r"is panoptic'"):
        open_segmenter(str(folder))


class _Refusing(BaseHTTPRequestHandler):
    def _refuse(self):
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        body = b'{"error": "access to this model is refused"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _refuse

    def log_message(self, *args):
        pass


def test_the_hub_refusing_a_request_is_one_error_naming_the_model(tmp_path, monkeypatch):
    from huggingface_hub import constants
    server = HTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
        with pytest.raises(ConfigError, match=r"model 'hf:acme/tiny-m2f': the hub refused it "
                                              r"\(.*403"):
            load_segmenter(PipelineConfig(model="hf:acme/tiny-m2f"))
    finally:
        server.shutdown()
        server.server_close()


def test_transformers_not_installed_names_the_extra(tmp_path, monkeypatch):
    folder = hf_models.save_mask2former(tmp_path / "m2f")
    monkeypatch.setitem(sys.modules, "transformers", None)   # `import transformers` fails
    with pytest.raises(ConfigError, match=rf"model '{folder}'.*needs the optional transformers "
                                          r"package: pip install 'vps_ros\[hf\]'"):
        open_segmenter(str(folder))


def test_classes_of_the_table_that_the_model_lacks_are_never_predicted(tmp_path):
    """A model without 'truck' and 'cyclist' against the full synthetic table: those two
    columns are -inf (never chosen), every other column is the model's own logit."""
    lacking = [n for n in hf_models.LABELS if n not in ("truck", "cyclist")]
    folder = hf_models.save_mask2former(tmp_path / "m2f", labels=lacking)
    segmenter = open_segmenter(str(folder), LoadOptions(postprocess=LOOSE, classes="synthetic"))
    assert segmenter.classes == CLASSES
    names = [c.name for c in CLASSES]
    absent = [names.index("truck"), names.index("cyclist")]
    images = [np.random.default_rng(k).integers(0, 256, (64, 128, 3), dtype=np.uint8)
              for k in range(4)]
    logits = segmenter.predict(np.stack(images))["class_logits"]
    assert torch.isinf(logits[..., absent]).all() and (logits[..., absent] < 0).all()
    present = [j for j in range(len(CLASSES) + 1) if j not in absent]
    assert torch.isfinite(logits[..., present]).all()
    found = np.concatenate([s.class_ids for s in segmenter.segment(images)])
    assert len(found) > 0 and not set(found.tolist()) & set(absent)
