"""Export: a Hub-style folder that loads as is, feeds each trainer's contract, and keeps its
promises (splits, bytes untouched, redaction, validation, determinism)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import load_fresh

from curate.errors import CurateError
from curate.export import ExportParams, export
from curate.export.validate import validate
from curate.pipeline.build import build
from curate.rewards import compute_score, trl_reward
from curate.rewards.entrypoints import easyr1_compute_score
from curate.store.core import open_store

REPO = Path(__file__).resolve().parents[1]


def secret_episode(root: Path) -> None:
    """A native episode with credentials where people leave them."""
    folder = root / "secrets"
    (folder / "frames").mkdir(parents=True)
    from PIL import Image

    for index, colour in enumerate([(10, 10, 10), (200, 200, 200), (90, 30, 30)]):
        Image.new("RGB", (320, 200), colour).save(folder / "frames" / f"{index}.png")
    (folder / "episode.json").write_text(json.dumps({
        "curate_native": 1, "terminated": True,
        "instruction": "Log in as jane.doe@example.org and pay with 4111 1111 1111 1111."}))
    steps = [
        {"action": {"type": "click", "x": 0.5, "y": 0.4,
                    "target": {"role": "password", "text": "Password"}},
         "frame": "frames/0.png", "next_frame": "frames/1.png"},
        {"action": {"type": "type", "text": "hunter2-secret"}, "frame": "frames/1.png",
         "next_frame": "frames/2.png", "thought": "my api_key=abcdef0123456789abcd"},
        {"action": {"type": "tool_call", "tool_name": "http",
                    "tool_args": {"auth": "Bearer sk-proj-abcdefghijklmnop1234"}},
         "frame": "frames/2.png", "next_frame": "frames/2.png"},
        {"action": "done()", "frame": "frames/2.png"},
    ]
    (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    recordings = root / "recordings"
    shutil.copytree(REPO / "examples" / "recordings", recordings)
    secret_episode(recordings)
    build([recordings], root / "dist", recipe="tracer1", workers=1)
    return root / "dist"


def rows(dist: Path, config: str) -> list[dict]:
    dataset = load_fresh(dist, config)
    return [row for split in dataset.values() for row in split]


def test_load_dataset_opens_both_configs_with_images(built: Path) -> None:
    stage1, stage2 = rows(built, "stage1"), rows(built, "stage2")
    assert stage1 and stage2
    gui = [r for r in stage2 if r["platform"] != "tool"]
    assert gui and all(r["image"].size == (r["image_width"], r["image_height"]) for r in gui)
    assert all(len(r["target_actions"]) == r["horizon"] == len(r["mask"]) for r in stage1)


def test_exported_images_are_the_recorded_bytes(built: Path) -> None:
    store = open_store(built.with_name("dist.store"))
    recorded = {hashlib.sha256(b).hexdigest()[:32]
                for b in store.read("frames").column("bytes").to_pylist()}
    table = pq.read_table(next((built / "data" / "stage2").glob("*.parquet")))
    for image in table.column("image").to_pylist():
        if image is not None:
            assert hashlib.sha256(image["bytes"]).hexdigest()[:32] in recorded
            assert image["path"].split(".")[0] in recorded


def test_overlapping_windows_never_straddle_splits(built: Path) -> None:
    split_of: dict[str, set[str]] = {}
    for config in ("stage1", "stage2", "stage1_verl"):
        for row in rows(built, config):
            episode = row.get("episode_id") or row["extra_info"]["episode_id"]
            split_of.setdefault(episode, set()).add(row.get("split")
                                                    or row["extra_info"]["split"])
    assert all(len(splits) == 1 for splits in split_of.values())


def test_verl_rows_meet_verls_contract_and_score_one_with_the_reference(built: Path) -> None:
    for config in ("stage1_verl", "stage2_verl"):
        for row in rows(built, config):
            text = row["prompt"][0]["content"]
            assert isinstance(text, str) and text.count("<image>") == len(row["images"])
            assert row["reward_model"]["style"] == "rule"
            truth = row["reward_model"]["ground_truth"]
            assert isinstance(truth, str) and isinstance(json.loads(truth), dict)
            assert isinstance(row["extra_info"]["index"], int)
            reference = "\n".join(a["type"] and _text(a) for a in json.loads(truth)["actions"]
                                  [: sum(json.loads(truth).get("mask", [1]))])
            score = compute_score(row["data_source"], reference, truth, row["extra_info"])
            assert score["score"] == pytest.approx(1.0), (reference, score)


def _text(action: dict) -> str:
    from curate.actions import Action, Target, format_action_text

    values = dict(action)
    target = values.pop("target", None)
    values["keys"] = tuple(values.get("keys", ()))
    values["target"] = Target(**target) if target else None
    return format_action_text(Action(**values))


def test_easyr1_reads_the_parquet_files_not_the_folder(built: Path) -> None:
    files = sorted(str(p) for p in (built / "data" / "stage2_verl").glob("train-*.parquet"))
    dataset = load_fresh("parquet", data_files={"train": files})["train"]
    row = dataset[0]
    assert isinstance(row["problem"], str) and isinstance(row["answer"], str)
    assert row["problem"].count("<image>") == len(row["images"])
    assert all(isinstance(image["bytes"], bytes) for image in
               pq.read_table(files[0]).column("images").to_pylist()[0])
    result = easyr1_compute_score([{"response": "garbage", "ground_truth": row["answer"]}])
    assert result[0]["overall"] == 0.0
    # EasyR1 hands its reward only `answer`: a stage2 answer names its step (the envelope).
    envelope = json.loads(row["answer"])
    step = {k: row["extra_info"][k] for k in ("episode_id", "step_index")}
    assert envelope["step"] == step
    assert envelope["ground_truth"] == json.loads(row["reward_model"]["ground_truth"])
    reference = "\n".join(_text(a) for a in envelope["ground_truth"]["actions"])
    right = easyr1_compute_score([{"response": reference, "ground_truth": row["answer"]}])
    assert right[0]["overall"] == pytest.approx(1.0)


def test_trl_rows_are_conversational_and_the_completion_earns_full_reward(built: Path) -> None:
    for config in ("stage1_trl", "stage2_trl"):
        data = rows(built, config)
        for row in data:
            message = row["prompt"][0]
            assert message["role"] == "user"
            parts = [p["type"] for p in message["content"]]
            assert parts.count("image") == len(row["images"])
        rewards = trl_reward([r["completion"] for r in data], solution=[r["solution"]
                                                                      for r in data])
        assert rewards == pytest.approx([1.0] * len(data))


def test_secrets_are_redacted_with_typed_placeholders(built: Path) -> None:
    text = json.dumps([r for r in rows(built, "stage2") if r["source_format"] == "native"],
                      default=str)
    for secret in ("jane.doe@example.org", "4111 1111 1111 1111", "hunter2-secret",
                   "abcdef0123456789abcd", "sk-proj-abcdefghijklmnop1234"):
        assert secret not in text
    for placeholder in ("<EMAIL>", "<CARD_NUMBER>", "<PASSWORD>", "<SECRET>"):
        assert placeholder in text
    report = json.loads((built / "redaction_report.json").read_text())
    assert report["enabled"] and report["distinct_secrets"]["email"] >= 1


def test_every_stage2_step_has_an_instruction_with_its_source(built: Path) -> None:
    from curate.pipeline.instructions import SOURCES

    stage2 = rows(built, "stage2")
    assert {r["step_instruction_source"] for r in stage2} <= set(SOURCES)
    assert all((r["step_instruction"] is None) == (r["step_instruction_source"] == "none")
               for r in stage2)
    derived = [r for r in stage2 if r["step_instruction_source"] == "derived"]
    assert derived and all(r["step_instruction"] for r in derived)
    # Built from the redacted action: what was typed after the password field is not spelt.
    typed = [r["step_instruction"] for r in stage2 if r["source_format"] == "native"
             and r["action"]["type"] == "type"]
    assert 'type "<PASSWORD>"' in typed
    # The prompt's "Next step" is the source's own instruction only: a derived one would
    # name the reference's target.
    prompts = {r["extra_info"]["id"]: r["problem"] for r in rows(built, "stage2_verl")}
    for row in stage2:
        own = row["step_instruction_source"] == "recorded"
        assert (f"Next step: {row['step_instruction']}" in prompts[row["id"]]) == own, row["id"]
    # The EasyR1 answer's step instructions name their sources, one per answer step.
    for row in rows(built, "stage1_easyr1"):
        assert row["answer"].count("Step ") == len(row["step_instruction_sources"]) > 0
        assert set(row["step_instruction_sources"]) <= set(SOURCES) - {"none"}


def test_no_redact_keeps_the_text(built: Path, tmp_path: Path) -> None:
    store = built.with_name("dist.store")
    export(store, tmp_path / "raw", params=ExportParams(redact=False, flavours=("plain",)))
    text = json.dumps(rows(tmp_path / "raw", "stage2"), default=str)
    assert "hunter2-secret" in text
    assert "Redaction was turned off" in (tmp_path / "raw" / "README.md").read_text()


def test_export_is_byte_identical_when_repeated(built: Path, tmp_path: Path) -> None:
    store = built.with_name("dist.store")
    params = ExportParams(flavours=("plain", "verl"))
    export(store, tmp_path / "a", params=params)
    export(store, tmp_path / "b", params=params)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_card_has_metadata_plots_columns_and_recipe(built: Path) -> None:
    card = (built / "README.md").read_text()
    for needle in ("config_name: stage1", "config_name: stage2", "license:", "pretty_name:",
                   "task_categories:", "size_categories:", "plots/action_types.png",
                   "## Columns", "`target_actions`", "`ground_truth`", "name: tracer1",
                   "## Redaction", "## Limitations"):
        assert needle in card, needle
    assert "## Stage-2 executability" not in card  # nothing was executed
    for plot in ("action_types", "episode_lengths", "sources", "consistency"):
        assert (built / "plots" / f"{plot}.png").stat().st_size > 1000


def test_every_exported_column_is_explained_in_the_card(built: Path) -> None:
    from curate.export.columns import column_docs
    from curate.export.params import CONFIGS, FLAVOURS

    for config in CONFIGS:
        for flavour in FLAVOURS:
            undocumented = [name for name, _, doc in column_docs(config, flavour) if not doc]
            assert not undocumented, (config, flavour, undocumented)


def test_croissant_metadata_validates(built: Path) -> None:
    mlcroissant = pytest.importorskip("mlcroissant", reason="mlcroissant is a dev dependency")
    dataset = mlcroissant.Dataset(jsonld=str(built / "croissant.json"))
    assert dataset.metadata.name


def test_validate_finds_leakage_bad_coordinates_and_card_gaps(built: Path,
                                                              tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(built, broken)
    shard = next((broken / "data" / "stage2").glob("train-*.parquet"))
    table = pq.read_table(shard)
    action = table.column("action").to_pylist()
    action[0]["x"] = 1.7
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("action"),
                             table.schema.field("action"),
                             pa.array(action, table.schema.field("action").type))
    pq.write_table(table, shard)
    test_shard = broken / "data" / "stage2" / "test-00000-of-00001.parquet"
    if test_shard.exists():  # move one train row's episode into test too
        test_table = pq.read_table(test_shard)
        leaked = table.slice(0, 1).set_column(
            table.schema.get_field_index("split"), "split", pa.array(["test"]))
        pq.write_table(pa.concat_tables([test_table, leaked.cast(test_table.schema)]),
                       test_shard)
    card = (broken / "README.md").read_text().replace("pretty_name:", "pretty_nam:")
    (broken / "README.md").write_text(card)
    report = validate(broken)
    text = "\n".join(report.problems)
    assert not report.ok
    assert "x=1.7 outside [0, 1]" in text
    assert "'pretty_name' is missing" in text
    if test_shard.exists():
        assert "split leakage: episode" in text


def test_validate_finds_a_stage2_answer_naming_another_step(built: Path,
                                                            tmp_path: Path) -> None:
    import pyarrow as pa

    broken = tmp_path / "broken"
    shutil.copytree(built, broken)
    shard = next((broken / "data" / "stage2_verl").glob("train-*.parquet"))
    table = pq.read_table(shard)
    answers = table.column("answer").to_pylist()
    envelope = json.loads(answers[0])
    envelope["step"]["step_index"] += 1000
    answers[0] = json.dumps(envelope)
    table = table.set_column(table.schema.get_field_index("answer"),
                             table.schema.field("answer"), pa.array(answers, pa.string()))
    pq.write_table(table, shard)
    problems = validate(broken).problems
    assert len([p for p in problems if "answer names step" in p]) == 1, problems


def test_export_refuses_a_store_without_labels(tmp_path: Path, native_episode) -> None:
    from curate.pipeline.ingest import ingest

    native_episode("a")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    with pytest.raises(CurateError, match="run `curate label"):
        export(tmp_path / "store", tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_every_column_is_compressed_nested_ones_and_images_too(built: Path) -> None:
    """pyarrow applies a codec dict by leaf path ("history.list.element"): keyed by top-level
    names, nested columns were written uncompressed; screenshots stored as-is made an export
    larger than a plain pyarrow zstd write (issue 21)."""
    nested = images = 0
    for shard in sorted((built / "data").rglob("*.parquet")):
        metadata = pq.ParquetFile(shard).metadata
        for group in range(metadata.num_row_groups):
            for index in range(metadata.num_columns):
                column = metadata.row_group(group).column(index)
                assert column.compression == "ZSTD", (shard.name, column.path_in_schema)
                nested += "." in column.path_in_schema
                images += column.path_in_schema.endswith(".bytes")
    assert nested > 0 and images > 0


def test_the_export_command_writes_the_same_files_without_importing_pandas(
        built: Path, tmp_path: Path) -> None:
    # pyarrow imports pandas on its first conversion unless refused (curate.without_pandas);
    # the command refuses it and must write what the library writes with pandas allowed.

    import pandas  # noqa: F401  (imported here: the library run below may use it)

    from tests.fresh_command import run_without_pandas

    store = built.with_name("dist.store")
    export(store, tmp_path / "library", params=ExportParams(flavours=("plain", "easyr1")))
    run_without_pandas("export", str(store), "-o", str(tmp_path / "command"),
                       "--flavour", "plain", "--flavour", "easyr1")
    files = sorted(p.relative_to(tmp_path / "library") for p in
                   (tmp_path / "library").rglob("*") if p.is_file())
    assert any(name.suffix == ".parquet" for name in files)
    for name in files:
        assert ((tmp_path / "command" / name).read_bytes()
                == (tmp_path / "library" / name).read_bytes()), name
