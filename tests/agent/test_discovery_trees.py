"""The V4L2 fixture trees of :mod:`tests.agent.pi_trees` against the captures they are built from."""

from __future__ import annotations

import os

from pi_stream_agent.discovery.v4l2 import read_sysfs_nodes
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import (
    PI3_DWC,
    PI4_CAPTURE,
    PI4_MEDIA_CTL,
    PI5_MEDIA_CTL,
    PI5_USB_CAPTURE,
    PIZERO_CAPTURE,
    UsbCard,
    add_usb_card,
    build_pi4_platform,
    build_pi5_with_camera,
    build_pi5_with_card,
    build_pizero,
    groups_from_capture,
    groups_from_sysfs,
    parse_media_ctl_nodes,
    remove_node,
)


def test_media_ctl_helper_reads_entity_names_from_the_captures() -> None:
    assert parse_media_ctl_nodes(fixture_text(PI4_MEDIA_CTL)) == {
        "/dev/v4l-subdev0": "ov5647 10-0036",
        "/dev/video0": "unicam-image",
    }
    assert parse_media_ctl_nodes(fixture_text(PI5_MEDIA_CTL)) == {
        "/dev/video4": "rp1-cfe-fe_image0",
        "/dev/video5": "rp1-cfe-fe_image1",
        "/dev/video6": "rp1-cfe-fe_stats",
        "/dev/video7": "rp1-cfe-fe_config",
    }


def test_pi4_tree_reproduces_the_captured_list_devices(tree: FixtureTree) -> None:
    build_pi4_platform(tree)
    assert groups_from_sysfs(tree) == groups_from_capture(PI4_CAPTURE)


def test_pizero_tree_reproduces_the_captured_list_devices(tree: FixtureTree) -> None:
    build_pizero(tree)
    assert groups_from_sysfs(tree) == groups_from_capture(PIZERO_CAPTURE)


def test_pi5_card_tree_reproduces_the_captured_card_block(tree: FixtureTree) -> None:
    build_pi5_with_card(tree)
    groups = groups_from_sysfs(tree)
    assert groups["usb-xhci-hcd.1-1"] == groups_from_capture(PI5_USB_CAPTURE)["usb-xhci-hcd.1-1"]
    assert groups["usb-xhci-hcd.1-1"] == ["/dev/video0", "/dev/video1"]


def test_pi5_camera_tree_matches_the_rp1_cfe_captures(tree: FixtureTree) -> None:
    build_pi5_with_camera(tree)
    nodes, _ = read_sysfs_nodes(Root(tree.base))
    by_node = {node.node: node for node in nodes}
    assert by_node["video0"].name == "rp1-cfe-csi2_ch0"
    assert by_node["video0"].bus == "platform:1f00128000.csi"  # as in the --all capture's Bus info
    assert by_node["video4"].name == "rp1-cfe-fe_image0"
    assert by_node["video7"].name == "rp1-cfe-fe_config"
    assert by_node["video20"].bus == "platform:1000880000.pisp_be"  # media-ctl capture's bus info


def test_pi3_card_bus_matches_the_captured_bus_info(tree: FixtureTree) -> None:
    card = UsbCard(PI3_DWC, 1, "1.5", "FHD Capture: FHD Capture", product="FHD Capture")
    add_usb_card(tree, card, "video0", "video1", by_id=None)
    nodes, _ = read_sysfs_nodes(Root(tree.base))
    assert [node.bus for node in nodes] == ["usb-3f980000.usb-1.5", "usb-3f980000.usb-1.5"]  # --all capture


def test_remove_node_takes_dev_and_sysfs_entries(tree: FixtureTree) -> None:
    build_pi5_with_card(tree)
    remove_node(tree, "video1")
    assert not (tree.base / "dev/video1").exists()
    assert not os.path.lexists(tree.base / "sys/class/video4linux/video1")
    nodes, _ = read_sysfs_nodes(Root(tree.base))
    assert "video1" not in [node.node for node in nodes]
    assert "video0" in [node.node for node in nodes]
