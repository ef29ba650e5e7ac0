"""Inference engines for segmenter networks: the ``backend`` parameter.

``torch`` runs a model's own network; every other backend is an engine that runs the
network in the file format of :mod:`.format`, written by :mod:`vps_ros.model.export`.
:mod:`.backends` lists the engines (one module each: :mod:`.openvino`,
:mod:`.onnxruntime`); :mod:`.segmenter` holds the one engine-backed segmenter, with one
session per network input size, and decides, for every kind of model, what runs when
the engine asked for cannot (docs/architecture.md).
"""
