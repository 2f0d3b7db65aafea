"""What a SoC means for the camera and the encoder, and the agent's one hardware H.264 encoder rule.

The rule is checked pure, then through the real agent over loopback on Pi 4 fixture trees where the two
sources disagree (the codec overlay off; no node list at all), so /info, the telemetry board fragment and
the stream checks can be seen giving one answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.soc import (
    camera_buffers_from_cma,
    camera_isp_is_pisp,
    hardware_h264_encoder,
    soc_has_h264_encoder,
)
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import build_pi4_platform, remove_node
from tests.agent.test_api import agent_config, auth, base_url


@pytest.mark.parametrize(
    ("soc", "encoder", "cma", "pisp"),
    [
        ("BCM2835", True, True, False),
        ("BCM2836", True, True, False),
        ("BCM2837", True, True, False),
        ("BCM2711", True, True, False),
        ("BCM2712", False, False, True),
        ("BCM9999", None, None, None),
        (None, None, None, None),
    ],
)
def test_soc_table(soc: str | None, encoder: bool | None, cma: bool | None, pisp: bool | None) -> None:
    assert soc_has_h264_encoder(soc) is encoder
    assert camera_buffers_from_cma(soc) is cma
    if pisp is not None:
        assert camera_isp_is_pisp(soc, hardware_h264_encoder=not pisp) is pisp  # the SoC decides
        assert camera_isp_is_pisp(soc, hardware_h264_encoder=pisp) is pisp
    else:  # an unknown chip: only VideoCore chips have the encoder
        assert camera_isp_is_pisp(soc, hardware_h264_encoder=True) is False
        assert camera_isp_is_pisp(soc, hardware_h264_encoder=False) is True


@pytest.mark.parametrize(
    ("node", "soc", "answer"),
    [
        (True, "BCM2711", True),
        (False, "BCM2711", False),  # a Pi 4 with the codec overlay off: no encoder, whatever the SoC
        (None, "BCM2711", True),  # no node list: the SoC answers
        (None, "BCM2712", False),
        (False, "BCM2712", False),
        (True, None, True),
        (False, None, False),
        (None, None, None),
    ],
)
def test_the_rule(node: bool | None, soc: str | None, answer: bool | None) -> None:
    assert hardware_h264_encoder(node, soc) is answer


# --------------------------------------------------------------------------- the agent's one answer


def pi4_without_encoder_node(tree: FixtureTree) -> None:
    build_pi4_platform(tree)
    remove_node(tree, "video11")  # bcm2835-codec-encode: the codec overlay is off


def pi4_without_node_list(tree: FixtureTree) -> None:
    """No /sys/class/video4linux at all: the node scan cannot answer."""


@pytest.fixture
def make_agent(tmp_path: Path) -> Callable[[Callable[[FixtureTree], None]], Any]:
    agents: list[Agent] = []

    async def start(build: Callable[[FixtureTree], None]) -> Agent:
        tree = FixtureTree(tmp_path / f"root{len(agents)}")
        tree.write("proc/cpuinfo", fixture_text("cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt"))
        tree.write("proc/meminfo", "MemTotal: 1000 kB\n")
        build(tree)
        agent = Agent(
            dataclasses.replace(
                agent_config(tmp_path / f"state{len(agents)}"), simulate=False, root=tree.base
            )
        )
        agents.append(agent)
        await agent.start()
        return agent

    return start


async def _answers(agent: Agent) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    stream = {
        "id": "cam",
        "source": {"type": "test"},
        "encoder": "hardware",
        **{"width": 640, "height": 480, "fps": 10, "bitrate": "1M"},
    }
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/info") as response:
            info = await response.json()
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            sample = await response.json()
        async with session.post(base_url(agent) + "/api/v1/streams/validate", json=stream) as response:
            validation = await response.json()
    return info, sample, validation["problems"]


@pytest.mark.parametrize(
    ("build", "answer"),
    [(pi4_without_encoder_node, False), (pi4_without_node_list, True)],
)
async def test_info_telemetry_and_stream_checks_give_one_answer(
    make_agent: Any, build: Callable[[FixtureTree], None], answer: bool
) -> None:
    agent = await make_agent(build)
    try:
        info, sample, problems = await _answers(agent)
    finally:
        await agent.stop()
    assert info["board"]["soc"] == "BCM2711"
    # Before: without a node list /info said null while the streams used the SoC's yes, and with the overlay
    # off /info's board said true next to capabilities' false. Now one answer, published once.
    assert info["capabilities"]["hardware_h264_encoder"] is answer
    assert "hardware_h264_encoder" not in info["board"]
    assert "hardware_h264_encoder" not in sample["board"]
    errors = [(p["field"], p["severity"]) for p in problems if p["severity"] == "error"]
    assert errors == ([] if answer else [("encoder", "error")])
