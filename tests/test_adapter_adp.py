"""Agent Data Protocol standardized and ATIF trajectories (``adp``): the real samples read
without a rejected record, and round trips through ``curate export --format adp|atif`` that
keep actions, observations and their order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.sources import adapters
from curate.sources.adapters.adp import convert_action
from curate.sources.adapters.base import FILE_MISSING, FINAL_STATE_NOT_RECORDED, TEXT_ONLY
from curate.store import open_store
from tests.conftest import realdata
from tests.test_models_client import png

ADP_SAMPLES = ["neulab_upstream/datasets/android_in_the_wild", "zhu-yiqi_fork/datasets/"
               "agenttuning_mind2web", "zhu-yiqi_fork/datasets/androidcontrol",
               "zhu-yiqi_fork/datasets/nnetnav-live", "zhu-yiqi_fork/datasets/omniact",
               "zhu-yiqi_fork/datasets/synatra"]
ATIF_SAMPLES = ["neulab_upstream/datasets/android_in_the_wild", "neulab_upstream/datasets/synatra"]


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def ingest_and_export(source: Path, tmp_path: Path, form: str) -> list[dict[str, Any]]:
    store, out = tmp_path / "store", tmp_path / f"out_{form}"
    run("ingest", str(source), "-o", str(store), "--no-progress")
    run("export", str(store), "-o", str(out), "--format", form)
    name = "trajectories_std.json" if form == "adp" else "trajectories_atif.json"
    written: list[dict[str, Any]] = json.loads((out / name).read_text(encoding="utf-8"))
    return written


def adp_signature(trajectory: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a round trip must keep: every item's class in order, each action's function and
    arguments (or code, or message), each observation's image path, page and text."""
    out: list[tuple[Any, ...]] = []
    for item in trajectory["content"]:
        kind = item["class_"]
        if kind == "api_action":
            out.append((kind, item["function"], json.dumps(item["kwargs"], sort_keys=True)))
        elif kind == "code_action":
            out.append((kind, item["language"], item["content"]))
        elif kind == "web_observation":
            out.append((kind, item.get("axtree"), item.get("html"), item.get("url")))
        else:
            out.append((kind, item["content"]))
    return out


def atif_signature(trajectory: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The ATIF round trip keeps the user task, tool calls (function and arguments), agent
    messages without calls, and image paths, in order (not how they are grouped in steps)."""
    out: list[tuple[Any, ...]] = []
    for step in trajectory["steps"]:
        if step["source"] == "user":
            out.append(("user", step["message"]))
        for call in step.get("tool_calls") or []:
            out.append(("call", call["function_name"],
                        json.dumps(call["arguments"], sort_keys=True)))
        if step["source"] == "agent" and not step.get("tool_calls") and step["message"]:
            out.append(("message", step["message"]))
        for result in (step.get("observation") or {}).get("results", []):
            content = result.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image":
                    out.append(("image", part["source"]["path"]))
            web = (result.get("extra") or {}).get("web")
            if web:
                out.append(("web", web.get("axtree")))
    return out


def check_atif(trajectory: dict[str, Any]) -> None:
    """The rules of the ATIF RFC (Harbor RFC 0001) that its validator enforces on a file:
    required top-level fields, step ids 1..n in order, sources, agent-only fields, tool calls
    with ids, observation results that point at a call of their own step."""
    assert str(trajectory["schema_version"]).startswith("ATIF-v1.")
    assert isinstance(trajectory["session_id"], str) and trajectory["session_id"]
    assert {"name", "version"} <= set(trajectory["agent"])
    assert [s["step_id"] for s in trajectory["steps"]] == list(
        range(1, len(trajectory["steps"]) + 1))
    for step in trajectory["steps"]:
        assert step["source"] in ("system", "user", "agent")
        assert isinstance(step["message"], str)
        if step["source"] != "agent":
            assert not {"tool_calls", "reasoning_content", "metrics"} & set(step)
        calls = {c["tool_call_id"] for c in step.get("tool_calls") or []}
        for call in step.get("tool_calls") or []:
            assert isinstance(call["function_name"], str) and isinstance(call["arguments"],
                                                                          dict)
        for result in (step.get("observation") or {}).get("results", []):
            assert result.get("source_call_id") in calls | {None}


def check_adp(trajectory: dict[str, Any]) -> None:
    """ADP's pydantic schema (schema/trajectory.py and its action / observation classes):
    id and content required, every item one of the six classes with its required fields."""
    assert isinstance(trajectory["id"], str) and isinstance(trajectory["content"], list)
    required = {"api_action": {"function", "kwargs"}, "code_action": {"language", "content"},
                "message_action": {"content"}, "text_observation": {"content", "source"},
                "image_observation": {"content", "source"}, "web_observation": set()}
    for item in trajectory["content"]:
        assert required[item["class_"]] <= set(item)
        if "source" in item:
            assert item["source"] in ("user", "agent", "environment")


@pytest.mark.parametrize("folder", ADP_SAMPLES)
def test_real_adp_std_round_trips_through_export(folder: str, tmp_path: Path) -> None:
    source = realdata("adp") / folder / "sample_std.json"
    expected = json.loads(source.read_text(encoding="utf-8"))
    written = ingest_and_export(source, tmp_path, "adp")
    assert [t["id"] for t in written] == sorted(str(t["id"]) for t in expected) or len(
        written) == len(expected)
    by_id = {t["id"]: t for t in written}
    for trajectory in expected:
        mine = by_id[str(trajectory["id"])]
        check_adp(mine)
        assert adp_signature(mine) == adp_signature(trajectory)


@pytest.mark.parametrize("folder", ATIF_SAMPLES)
def test_real_atif_round_trips_through_export(folder: str, tmp_path: Path) -> None:
    source = realdata("adp") / folder / "sample_atif.json"
    expected = json.loads(source.read_text(encoding="utf-8"))
    written = ingest_and_export(source, tmp_path, "atif")
    by_id = {t["session_id"]: t for t in written}
    assert len(by_id) == len(expected)
    for trajectory in expected:
        mine = by_id[trajectory["trajectory_id"]]
        check_atif(mine)
        assert atif_signature(mine) == atif_signature(trajectory)


def test_adp_std_exported_as_atif_matches_adps_own_atif_of_the_same_trajectory(
        tmp_path: Path) -> None:
    folder = realdata("adp") / "neulab_upstream/datasets/android_in_the_wild"
    (theirs,) = json.loads((folder / "sample_atif.json").read_text(encoding="utf-8"))
    (mine,) = ingest_and_export(folder / "sample_std.json", tmp_path, "atif")
    check_atif(mine)
    assert atif_signature(mine) == atif_signature(theirs)


def test_every_real_adp_file_ingests_with_no_rejected_record(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("ingest", str(realdata("adp")), "-o", str(store), "--no-progress")
    opened = open_store(store)
    rejects = opened.read_rejects().to_pylist()
    # Only the screenshots the sample does not ship are reported, one line per trajectory.
    assert {r["level"] for r in rejects} == {"frame"}
    assert all("image(s) the trajectory references" in r["reason"] for r in rejects)
    sources = opened.read("sources").to_pylist()
    # sample_raw.json is the records ADP converted into the sample_std.json beside it.
    assert not any(s["source_path"].endswith("sample_raw.json") for s in sources)
    assert opened.read_episodes().num_rows == 28


def test_real_android_samples_become_gui_actions_with_their_coordinate_conventions(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    root = realdata("adp")
    run("ingest", str(root / "neulab_upstream/datasets/android_in_the_wild"),
        str(root / "zhu-yiqi_fork/datasets/androidcontrol"), "-o", str(store), "--no-progress")
    opened = open_store(store)
    episodes = {e["source_id"].replace("/sample_std.json", "").replace(
        "#12172380859428428757", ""): e for e in opened.read_episodes().to_pylist()}
    steps = opened.read_steps().to_pylist()
    aitw = [s for s in steps if s["episode_id"] == episodes["android_in_the_wild"]["episode_id"]]
    assert episodes["android_in_the_wild"]["instruction"] == "Open a new Chrome private window"
    assert [s["action"]["type"] for s in aitw] == ["click"] * 3
    assert aitw[0]["action"]["coord_space"] == "norm_1" and aitw[0]["action"]["x"] == 0.7089
    assert [s["frame_missing"] for s in aitw] == [FILE_MISSING] * 3
    assert aitw[-1]["next_frame_missing"] == FINAL_STATE_NOT_RECORDED
    control = [s for s in steps if s["episode_id"] == episodes["androidcontrol#0"]["episode_id"]]
    assert [s["action"]["type"] for s in control] == ["open_app", "wait", "click"]
    click = control[2]["action"]
    # AndroidControl's pixels without the (absent) screenshot are kept, not normalised.
    assert (click["px"], click["py"], click["x"], click["coord_space"]) == (
        540, 390, None, "screen_px")
    assert "x/y not normalised" in control[2]["warnings"][0]
    assert episodes["androidcontrol#0"]["platform"] == "mobile"


def test_web_states_are_state_text_and_bids_are_element_targets() -> None:
    action, _ = convert_action({"class_": "api_action", "function": "type",
                                "kwargs": {"bid": '"78"', "text": '"NLP model"',
                                           "press_enter_after": "0"}}, None)
    assert action.type == "type" and action.text == "NLP model"
    assert action.target is not None and action.target.element_id == "78"
    scroll, _ = convert_action({"class_": "api_action", "function": "scroll",
                                "kwargs": {"delta_x": 0, "delta_y": -300}}, None)
    assert (scroll.direction, scroll.amount) == ("up", 300.0)
    unknown, _ = convert_action({"class_": "api_action", "function": "select_option",
                                 "kwargs": {"bid": "12", "options": ["a"]}}, None)
    assert unknown.type == "tool_call" and unknown.tool_name == "select_option"
    assert json.loads(unknown.tool_args or "") == {"bid": "12", "options": ["a"]}


def test_real_synatra_web_observation_is_the_state_of_the_click(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("ingest", str(realdata("adp") / "zhu-yiqi_fork/datasets/synatra/sample_std.json"),
        "-o", str(store), "--no-progress")
    opened = open_store(store)
    episode = min(opened.read_episodes().to_pylist(), key=lambda e: e["source_id"])
    metadata = json.loads(episode["metadata"])
    assert metadata["state_text"]["0"].startswith("Tab 0 (current): Cold Turkey")
    (step,) = [s for s in opened.read_steps().to_pylist()
               if s["episode_id"] == episode["episode_id"]]
    assert step["action"]["target"]["element_id"] == "93"
    assert step["frame_missing"] == TEXT_ONLY
    assert step["thought"].startswith("# sub-task 4")


def test_bad_records_are_rejected_one_by_one_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "mixed_std.json"
    good = {"id": "a", "content": [
        {"class_": "text_observation", "content": "do it", "source": "user"},
        {"class_": "image_observation", "content": "gone.png", "source": "environment"},
        {"class_": "api_action", "function": "click", "kwargs": {"x": 3, "y": 4}},
        {"class_": "mystery_observation", "content": "?"}]}
    empty = {"id": "b", "content": [{"class_": "text_observation", "content": "only talk",
                                     "source": "user"}]}
    path.write_text(json.dumps([good, {"nothing": 1}, empty]), encoding="utf-8")
    found = adapters.detect(path)
    assert found is not None and found.name == "adp"
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["ingest", str(path), "-o", str(store), "--no-progress",
                                      "--strict"])
    assert result.exit_code == 1
    opened = open_store(store)
    reasons = sorted((r["level"], r["position"], r["reason"][:30])
                     for r in opened.read_rejects().to_pylist())
    assert reasons == [
        ("episode", "[1]", "not an ADP trajectory ({id, co"),
        ("episode", "[2]", "trajectory without any action"),
        ("frame", "[0]", "1 image(s) the trajectory refe"),
        ("step", "[0].content[3]", "unknown ADP item 'mystery_obse"),
    ]
    (step,) = opened.read_steps().to_pylist()
    assert step["frame_missing"] == FILE_MISSING and step["action"]["px"] == 3


def test_frames_beside_the_file_are_read_and_exported_as_images(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    (folder / "shots").mkdir(parents=True)
    (folder / "shots/0.png").write_bytes(png(40, 20, "black"))
    (folder / "shots/1.png").write_bytes(png(40, 20, "white"))
    (folder / "run_std.json").write_text(json.dumps([{"id": "t", "content": [
        {"class_": "text_observation", "content": "click it", "source": "user"},
        {"class_": "image_observation", "content": "shots/0.png", "source": "environment"},
        {"class_": "api_action", "function": "click", "kwargs": {"x": 10, "y": 5}},
        {"class_": "image_observation", "content": "shots/1.png", "source": "environment"},
        {"class_": "message_action", "content": "done"}]}]), encoding="utf-8")
    written = ingest_and_export(folder, tmp_path, "adp")
    (trajectory,) = written
    images = [c["content"] for c in trajectory["content"] if c["class_"] == "image_observation"]
    assert len(images) == 2 and all(p.startswith("images/") for p in images)
    assert (tmp_path / "out_adp" / images[0]).read_bytes() == (folder / "shots/0.png").read_bytes()
    store = open_store(tmp_path / "store")
    click = store.read_steps().to_pylist()[0]["action"]
    assert (click["x"], click["y"]) == (0.25, 0.25)
    again = tmp_path / "again"
    run("export", str(tmp_path / "store"), "-o", str(again), "--format", "adp")
    assert (again / "trajectories_std.json").read_bytes() == (
        tmp_path / "out_adp" / "trajectories_std.json").read_bytes()


def test_export_refuses_a_folder_curate_did_not_make(tmp_path: Path) -> None:
    source = realdata("adp") / "zhu-yiqi_fork/datasets/synatra/sample_std.json"
    store, out = tmp_path / "store", tmp_path / "mine"
    run("ingest", str(source), "-o", str(store), "--no-progress")
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", str(store), "-o", str(out), "--format", "atif"])
    assert result.exit_code != 0 and "not a curate export" in result.output
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"
