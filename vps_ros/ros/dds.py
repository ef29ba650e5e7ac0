"""Fast DDS configuration of processes that publish camera-sized images.

Fast DDS carries a sample between processes of one machine through the publisher's
shared-memory segment, 512 KiB by default. A 1080p image does not fit: it goes out in
fragments, and a best-effort subscriber loses nearly every frame (measured in
docs/cameras.md). ``config/fastdds.xml`` keeps Fast DDS's default transports with a
32 MiB segment; :func:`use_large_frame_profile` makes it this process's default profile
unless the user chose a profile or transports of their own. It must run before
``rclpy.init`` (Fast DDS reads the variable when the participant is created).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

from vps_ros.resources import config_path

PROFILE_NAME = "fastdds.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
USER_CHOICES = PROFILE_VARIABLES + ("FASTDDS_BUILTIN_TRANSPORTS", "FASTDDS_ENVIRONMENT_FILE")
DEFAULT_FILES = ("DEFAULT_FASTDDS_PROFILES.xml", "DEFAULT_FASTRTPS_PROFILES.xml")


def _uses_fast_dds(environ: MutableMapping[str, str]) -> bool:
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    return rmw == "" or rmw.startswith("rmw_fastrtps")


def use_large_frame_profile(environ: MutableMapping[str, str] = os.environ,
                            cwd: Path | None = None) -> str:
    """Set the package's Fast DDS profile in ``environ`` where nothing else decides the
    transports; returns one line for the log saying which profile applies and why."""
    if not _uses_fast_dds(environ):
        return f"DDS: {environ['RMW_IMPLEMENTATION']} (not Fast DDS): its own transports"
    for name in USER_CHOICES:
        if environ.get(name):
            return f"DDS: Fast DDS transports from {name}={environ[name]}"
    folder = cwd if cwd is not None else Path.cwd()
    for name in DEFAULT_FILES:
        if (folder / name).is_file():
            return f"DDS: Fast DDS profile {folder / name} (working directory)"
    profile = config_path(PROFILE_NAME)
    environ[PROFILE_VARIABLES[0]] = str(profile)
    return f"DDS: Fast DDS profile {profile} (32 MiB shared memory for camera-sized images)"
