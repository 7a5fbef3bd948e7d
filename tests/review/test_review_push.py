"""Push is idempotent against a real Label Studio, also when the network is not: a lost
import response, a doubled import, an item that changed since its task was pushed."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.actions import Action, format_action_text
from curate.review import ReviewError, pull, push
from curate.review import read_reviews as read_review_table
from curate.review.client import connect, find_project, iter_tasks
from curate.store.core import open_store
from curate.store.layout import batch_file

from .conftest import LabelStudioServer
from .proxy import faulty_proxy
from .test_review_roundtrip import NATIVE, annotate, choice, project_name

pytestmark = pytest.mark.slow
IMPORTS = r"^/api/projects/\d+/import"


def project_tasks(server: LabelStudioServer, project: str) -> list[dict]:
    connection = connect(server.url, server.token)
    found = find_project(connection, project)
    assert found is not None
    return list(iter_tasks(connection, int(found.id)))


def test_a_lost_import_response_does_not_double_the_tasks(label_studio: LabelStudioServer,
                                                         sample_store: Path) -> None:
    project = project_name("lost")
    with faulty_proxy(label_studio.url, IMPORTS, lose=1) as proxy:
        summary = push(sample_store, project=project, url=proxy.url,
                       api_key=label_studio.token, filter_sql=f"episode_id = '{NATIVE}'")
    assert proxy.lost == 1
    tasks = project_tasks(label_studio, project)
    assert len(tasks) == 5 and summary.created == 5
    assert sorted(summary.task_ids) == sorted(int(t["id"]) for t in tasks)


def test_push_checks_the_task_count_after_importing(label_studio: LabelStudioServer,
                                                   sample_store: Path) -> None:
    project = project_name("doubled")
    with faulty_proxy(label_studio.url, IMPORTS, repeat=1) as proxy, \
            pytest.raises(ReviewError, match=r"holds 10 tasks after the push, 5 expected"):
        push(sample_store, project=project, url=proxy.url, api_key=label_studio.token,
             filter_sql=f"episode_id = '{NATIVE}'")


def change_step(store: Path, episode_id: str, step_index: int, x: float) -> None:
    """Rewrite one step's click, as a re-ingest with a fixed adapter would."""
    opened = open_store(store)
    for batch in opened.manifest.batches:
        path = batch_file(store, "steps", batch)
        table = pq.read_table(path)
        rows = table.to_pylist()
        hits = [r for r in rows if (r["episode_id"], r["step_index"]) == (episode_id,
                                                                           step_index)]
        if not hits:
            continue
        action = Action.from_row(hits[0]["action"])
        moved = Action(action.type, x=x, y=action.y, target=action.target)
        hits[0]["action"], hits[0]["action_text"] = moved.to_row(), format_action_text(moved)
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
        return
    raise AssertionError(f"no step {episode_id}:{step_index}")


def test_a_changed_item_replaces_its_stale_task_and_keeps_the_old_review(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project = project_name("changed")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}'")
    old = next(t for t in project_tasks(label_studio, project)
               if t["data"]["curate_key"] == f"step:{NATIVE}:0")
    annotate(label_studio, old, choice("verdict", "reject"))
    change_step(sample_store, NATIVE, 0, 0.105)
    again = push(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token, filter_sql=f"episode_id = '{NATIVE}'")
    assert (again.created, again.already_present, again.superseded) == (1, 4, 1)
    tasks = project_tasks(label_studio, project)
    assert len(tasks) == 6
    history = next(t for t in tasks if t["id"] == old["id"])
    assert history["data"]["curate_superseded"] is True
    assert [a["result"][0]["value"]["choices"] for a in history["annotations"]] == [["reject"]]
    fresh = next(t for t in tasks if t["data"]["curate_key"] == f"step:{NATIVE}:0"
                 and t["id"] != old["id"])
    assert "x=0.105" in fresh["data"]["action_text"]
    annotate(label_studio, fresh, choice("verdict", "accept"))
    pulled = pull(sample_store, project=project, url=label_studio.url,
                  api_key=label_studio.token)
    assert (pulled.reviews, pulled.history, pulled.skipped) == (1, 1, [])
    reviews = read_review_table(open_store(sample_store))
    assert reviews is not None and reviews.column("verdict").to_pylist() == ["accept"]
    third = push(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token, filter_sql=f"episode_id = '{NATIVE}'")
    assert (third.created, third.already_present, third.superseded) == (0, 5, 0)


def test_the_filter_example_in_push_help_selects_steps(sample_store: Path) -> None:
    import re

    from click.testing import CliRunner

    from curate.cli import cli
    from curate.review.select import select_items

    shown = " ".join(CliRunner().invoke(cli, ["review", "push", "--help"]).output.split())
    example = re.search(r'e\.g\. "([^"]+)"', shown)
    assert example is not None, shown
    keys = select_items(open_store(sample_store), "step", filter_sql=example.group(1))
    assert all(k.startswith("step:") for k in keys)  # it runs: a WHERE condition


def test_the_placeholder_of_a_step_without_screenshot_keeps_its_spaces() -> None:
    import io

    from PIL import Image

    from curate.review.images import PLACEHOLDER_TEXT, placeholder

    image = Image.open(io.BytesIO(placeholder().data)).convert("L")
    inked = [any(image.getpixel((x, y)) < 150 for y in range(image.height))
             for x in range(image.width)]
    first, last = inked.index(True), len(inked) - inked[::-1].index(True)
    gaps, blank = 0, 0
    for column in inked[first:last]:
        blank = blank + 1 if not column else 0
        gaps += blank == 4  # a space: at least 4 blank columns (letters are 1-2 apart)
    assert gaps == PLACEHOLDER_TEXT.count(" ")
