"""package.xml is valid, and declares a rosdep key for every module the code imports."""
import ast
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

from conftest import REPO

# import name -> rosdep key. A new third-party import must be added here and to
# package.xml, so that `rosdep install` gives ROS 2 users everything the code needs.
ROSDEP_KEYS = {
    "numpy": "python3-numpy", "cv2": "python3-opencv", "scipy": "python3-scipy",
    "yaml": "python3-yaml", "torch": "python3-torch", "rosbags": "python3-rosbags-pip",
    "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib",
    "rclpy": "rclpy", "sensor_msgs": "sensor_msgs", "std_msgs": "std_msgs",
    "std_srvs": "std_srvs", "geometry_msgs": "geometry_msgs",
    "diagnostic_msgs": "diagnostic_msgs", "lifecycle_msgs": "lifecycle_msgs",
    "visualization_msgs": "visualization_msgs", "rcl_interfaces": "rcl_interfaces",
    "builtin_interfaces": "builtin_interfaces", "launch": "launch", "launch_ros": "launch_ros",
    "pytest": "python3-pytest", "hypothesis": "python3-hypothesis",
    "catkin_pkg": "python3-catkin-pkg",
}
# Test helpers that are files of this repository's test/ folder, not packages.
LOCAL_TEST_MODULES = {p.stem for p in (REPO / "test").glob("*.py")}


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
    missing = sorted(ROSDEP_KEYS[m] for m in third_party if ROSDEP_KEYS[m] not in run_keys)
    assert not missing, f"package.xml lacks exec/build dependencies: {missing}"

    test_files = list((REPO / "test").rglob("*.py")) + list((REPO / "benchmarks").glob("*.py"))
    test_imports = (_imported_top_level_modules(test_files) - set(sys.stdlib_module_names)
                    - {"vps_ros"} - LOCAL_TEST_MODULES)
    unknown = sorted(test_imports - set(ROSDEP_KEYS))
    assert not unknown, f"test imports without a known rosdep key: {unknown}"
    missing = sorted(ROSDEP_KEYS[m] for m in test_imports
                     if ROSDEP_KEYS[m] not in run_keys | test_keys)
    assert not missing, f"package.xml lacks test dependencies: {missing}"
