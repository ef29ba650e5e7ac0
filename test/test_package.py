"""package.xml is valid, and declares a rosdep key for every module the code imports: the
keys of optional extras under the condition of their extra, pip-only extras in setup.py."""
import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

from conftest import REPO

# import name -> rosdep key. A new third-party import must be added here and to
# package.xml, so that `rosdep install` gives ROS 2 users everything the code needs.
# None: rosdistro has no key (checked in rosdep/python.yaml, 2026-08-22); allowed only
# for modules of an optional extra, which colcon users add with pip (docs/install.md).
ROSDEP_KEYS = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "scipy": "python3-scipy",
    "yaml": "python3-yaml", "torch": "python3-torch", "rosbags": "python3-rosbags-pip",
    "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib",
    "mcap": "mcap-ros2-support",  # no key for mcap itself; mcap-ros2-support requires it
    "transformers": "python3-transformers-pip",
    "huggingface_hub": "python3-huggingface-hub-pip",
    "safetensors": "python3-transformers-pip",  # a requirement of transformers
    "onnxruntime": "python3-onnxruntime-pip", "onnx": None, "openvino": None, "nncf": None,
    "pywuffs": None, "PIL": "python3-pil",
    "ray": None, "tensorboard": "python3-tensorboard-pip",
    "rclpy": "rclpy", "sensor_msgs": "sensor_msgs", "std_msgs": "std_msgs",
    "std_srvs": "std_srvs", "geometry_msgs": "geometry_msgs",
    "diagnostic_msgs": "diagnostic_msgs", "lifecycle_msgs": "lifecycle_msgs",
    "visualization_msgs": "visualization_msgs", "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces", "launch": "launch", "launch_ros": "launch_ros",
    "pytest": "python3-pytest", "hypothesis": "python3-hypothesis",
    "catkin_pkg": "python3-catkin-pkg", "packaging": "python3-packaging",
    "hotcoco": None,  # the COCO PQ reference of tests and benchmarks only (dev.txt, pip)
}
# ROS packages: from the distribution (or the ROS wheels of `make setup`), not pip metadata.
ROS_PACKAGES = {"rclpy", "sensor_msgs", "std_msgs", "std_srvs", "geometry_msgs",
                "diagnostic_msgs", "lifecycle_msgs", "visualization_msgs", "rcl_interfaces",
                "builtin_interfaces", "launch", "launch_ros"}
# Test helpers that are files of this repository's test/ folder, not packages.
# benchmarks import one another as scripts (benchmarks/ is first on sys.path when run)
LOCAL_TEST_MODULES = ({p.stem for p in (REPO / "test").glob("*.py")} | {"testkit"}
                      | {p.stem for p in (REPO / "benchmarks").glob("*.py")})


def _imported_top_level_modules(paths):
    names = set()
    for path in paths:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _python_files():
    files = [p for p in (REPO / "vps_ros").rglob("*.py")]
    files += [p for p in (REPO / "launch").glob("*.py")]
    files += [p for p in (REPO / "scripts").iterdir() if p.is_file() and
              p.read_text(errors="ignore").startswith("#!/usr/bin/env python3")]
    return files


def test_package_xml_parses_with_catkin_pkg():
    package = parse_package(str(REPO / "package.xml"))
    package.validate()
    assert package.name == "vps_ros"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_cmake"


def test_every_imported_module_has_a_declared_rosdep_key():
    package = parse_package(str(REPO / "package.xml"))
    run_keys = {d.name for d in package.exec_depends + package.build_depends
                + package.buildtool_depends}
    test_keys = {d.name for d in package.test_depends}
    third_party = (_imported_top_level_modules(_python_files()) - set(sys.stdlib_module_names)
                   - {"vps_ros"})
    unknown = sorted(third_party - set(ROSDEP_KEYS))
    assert not unknown, f"imports without a known rosdep key (add to ROSDEP_KEYS and package.xml): {unknown}"
    # a None key (an extra rosdistro has no key for) is checked by the extras test below
    missing = sorted(ROSDEP_KEYS[m] for m in third_party
                     if ROSDEP_KEYS[m] is not None and ROSDEP_KEYS[m] not in run_keys)
    assert not missing, f"package.xml lacks exec/build dependencies: {missing}"

    test_files = [*(REPO / "test").rglob("*.py"), *(REPO / "testkit").glob("*.py"),
                  *(REPO / "benchmarks").glob("*.py")]
    test_imports = (_imported_top_level_modules(test_files) - set(sys.stdlib_module_names)
                    - {"vps_ros"} - LOCAL_TEST_MODULES)
    unknown = sorted(test_imports - set(ROSDEP_KEYS))
    assert not unknown, f"test imports without a known rosdep key: {unknown}"
    missing = sorted(ROSDEP_KEYS[m] for m in test_imports
                     if ROSDEP_KEYS[m] is not None and ROSDEP_KEYS[m] not in run_keys | test_keys)
    assert not missing, f"package.xml lacks test dependencies: {missing}"


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_distributions():
    """Distribution name -> None (core) or the name of the extra that declares it."""
    def names(path):
        lines = (line.strip() for line in path.read_text().splitlines())
        return {_canonical(re.split(r"[<>=!~;\[ ]", line)[0]) for line in lines
                if line and not line.startswith("#")}
    owner = {name: None for name in names(REPO / "requirements" / "core.txt")}
    for path in (REPO / "requirements").glob("extra-*.txt"):
        owner.update({name: path.stem.removeprefix("extra-") for name in names(path)})
    return owner


def test_runtime_imports_are_declared_in_setup_and_package_xml_with_their_extra():
    package = parse_package(str(REPO / "package.xml"))
    conditions = {d.name: d.condition for d in package.exec_depends}
    owners = _declared_distributions()
    distributions = importlib.metadata.packages_distributions()
    third_party = (_imported_top_level_modules(_python_files()) - set(sys.stdlib_module_names)
                   - {"vps_ros"} - ROS_PACKAGES)
    for module in sorted(third_party):
        dists = [_canonical(d) for d in distributions.get(module, [])]
        declared = [d for d in dists if d in owners]
        assert declared, f"{module} (from {dists}) is not in requirements/core.txt or extra-*.txt"
        extra = owners[declared[0]]
        key = ROSDEP_KEYS[module]
        if extra is None:
            assert key is not None, f"core dependency {module} needs a rosdep key"
            assert conditions[key] is None, f"core key {key} must not be conditional"
        elif key is not None:
            want = f"$VPS_ROS_WITH_{extra.upper()} == 1"
            assert conditions[key] == want, f"{key} (extra {extra}) needs condition {want!r}"


def test_extra_keys_are_installed_by_rosdep_only_when_asked():
    package = parse_package(str(REPO / "package.xml"))
    package.evaluate_conditions({})
    plain = {d.name for d in package.exec_depends if d.evaluated_condition}
    package.evaluate_conditions({"VPS_ROS_WITH_HF": "1"})
    with_hf = {d.name for d in package.exec_depends if d.evaluated_condition}
    assert with_hf - plain == {"python3-transformers-pip", "python3-huggingface-hub-pip"}
    assert {"python3-numpy", "python3-torch", "mcap-ros2-support"} <= plain
