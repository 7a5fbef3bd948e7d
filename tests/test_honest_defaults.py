"""Defaults that tell the truth: the card does not depend on the hash seed and carries what
the Hub asks for, empty splits are said out loud, `query` cannot touch files, every table is
listed, an empty ingest is not a success under --strict, and every shard of a config has one
schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import load_fresh

from curate.cli import cli
from curate.errors import CurateError
from curate.export import ExportParams, export
from curate.export.card import read_card_header
from curate.pipeline.build import build
from curate.store.schema import DOCUMENTED_TABLES

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from hubserver.server import card_errors  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("honest")
    build([REPO / "examples" / "recordings"], root / "dist", recipe="tracer1", workers=1)
    return root / "dist.store"


def _export_in_process(store: Path, out: Path, seed: str) -> None:
    code = ("import sys; from curate.export import export; "
            "export(sys.argv[1], sys.argv[2])")
    environment = {**os.environ, "PYTHONHASHSEED": seed,
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code, str(store), str(out)],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_export_is_byte_identical_across_hash_seeds(store: Path, tmp_path: Path) -> None:
    # Seeds 1 and 5 order the set {("stage1", "trl"), ("stage1", "verl")} differently.
    for seed in ("1", "5"):
        _export_in_process(store, tmp_path / seed, seed)
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*")
                   if p.is_file())
    assert any(name.name == "README.md" for name in files)
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "5" / name).read_bytes(), name


def test_card_carries_license_and_language_the_hub_accepts(store: Path, tmp_path: Path) -> None:
    export(store, tmp_path / "dist")
    header = read_card_header(tmp_path / "dist")
    assert header["license"] == "other"
    assert header["license_name"] == "per-source-licenses"
    assert header["license_link"] == "LICENSE.md"
    assert header["language"] == ["en"]
    assert (tmp_path / "dist" / "LICENSE.md").read_text().count("- ") >= 1
    assert card_errors((tmp_path / "dist" / "README.md").read_bytes()) == []
    export(store, tmp_path / "mit", params=ExportParams(license="mit", languages=("en", "de")))
    mit = read_card_header(tmp_path / "mit")
    assert "license_name" not in mit and mit["language"] == ["en", "de"]
    assert card_errors((tmp_path / "mit" / "README.md").read_bytes()) == []


def test_hub_rules_reject_a_card_without_license_name() -> None:
    card = b"---\nlicense: other\nlanguage: [english]\n---\n"
    errors = card_errors(card)
    assert any("license_name" in e for e in errors)
    assert any("license_link" in e for e in errors)
    assert any("language" in e for e in errors)


def test_bad_license_name_or_language_is_refused_up_front(store: Path, tmp_path: Path) -> None:
    with pytest.raises(CurateError, match="--license-name"):
        export(store, tmp_path / "x", params=ExportParams(license_name="My License"))
    with pytest.raises(CurateError, match="--language"):
        export(store, tmp_path / "x", params=ExportParams(languages=("English",)))


def test_an_empty_split_is_a_warning_and_the_card_says_zero(store: Path, tmp_path: Path) -> None:
    params = ExportParams(splits={"train": 0.999, "test": 0.001})
    summary = export(store, tmp_path / "dist", params=params)
    assert any("stage1 has no test rows" in w for w in summary.warnings), summary.warnings
    card = (tmp_path / "dist" / "README.md").read_text()
    assert "| `stage1` | test | 0 (empty) |" in card
    result = CliRunner().invoke(cli, ["export", str(store), "-o", str(tmp_path / "cli"),
                                      "--splits", "train=0.999,test=0.001"])
    assert result.exit_code == 0, result.output
    assert "warning         empty split: stage1 has no test rows" in result.output


def test_an_empty_split_fails_under_strict(store: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(store), "-o", str(tmp_path / "dist"),
                                      "--splits", "train=0.999,test=0.001", "--strict"])
    assert result.exit_code == 2
    assert "empty split (--strict): stage1 has no test rows" in result.output
    assert not (tmp_path / "dist").exists()


def test_export_prints_the_load_line_of_each_config_written(store: Path,
                                                            tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(store), "-o", str(tmp_path / "dist"),
                                      "--config", "stage2", "--flavour", "plain"])
    assert result.exit_code == 0, result.output
    assert f"datasets.load_dataset({str(tmp_path / 'dist')!r}, 'stage2')" in result.output
    assert "'stage1'" not in result.output


def test_every_shard_of_a_config_has_one_schema(store: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny row groups and shards, so every config has several files across its splits, some
    # of them with columns that are null throughout.
    monkeypatch.setattr("curate.export.writer.ROW_GROUP_ROWS", 3)
    export(store, tmp_path / "dist", params=ExportParams(max_shard_bytes=1))
    data = tmp_path / "dist" / "data"
    for config in sorted(p.name for p in data.iterdir()):
        shards = sorted((data / config).glob("*.parquet"))
        assert len(shards) > 2, (config, shards)
        schemas = {pq.read_schema(shard).to_string(show_schema_metadata=True)
                   for shard in shards}
        assert len(schemas) == 1, config
        streamed = load_fresh(tmp_path / "dist", config, streaming=True)
        for split in streamed.values():
            assert sum(1 for _ in split) > 0


def test_card_shows_one_example_row_of_each_config(store: Path, tmp_path: Path) -> None:
    export(store, tmp_path / "dist")
    card = (tmp_path / "dist" / "README.md").read_text()
    header = read_card_header(tmp_path / "dist")
    for entry in header["configs"]:
        name = entry["config_name"]
        assert f"### `{name}` example" in card, name
    section = card.split("### `stage1` example", 1)[1].split("###", 1)[0]
    first = load_fresh(tmp_path / "dist", "stage1")["train"][0]
    assert f"instruction: \"{first['instruction'][:40]}" in section
    assert "image: \"<image PNG" in section


def test_query_cannot_read_or_write_files(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "leak.csv"
    for sql in (f"COPY steps TO '{target}'", f"SELECT * FROM read_csv('{REPO / 'README.md'}')",
                "SET enable_external_access = true", f"ATTACH '{tmp_path / 'x.db'}'"):
        result = CliRunner().invoke(cli, ["query", str(store), sql])
        assert result.exit_code == 2, (sql, result.output)
    assert not target.exists() and not (tmp_path / "x.db").exists()
    result = CliRunner().invoke(cli, ["query", str(store), "SELEC 1"])
    assert "`curate schema TABLE`" in result.output
    assert "--format csv" in result.output
    for command in ("schema", "query"):
        assert CliRunner().invoke(cli, [command, "--help"]).exit_code == 0


def test_query_and_info_list_every_table(store: Path) -> None:
    help_text = CliRunner().invoke(cli, ["query", "--help"]).output
    info = CliRunner().invoke(cli, ["info", str(store)]).output
    for table in DOCUMENTED_TABLES:
        assert table in help_text, table
        assert f"\n{table:<15} " in info, table
        result = CliRunner().invoke(cli, ["query", str(store), f"SELECT count(*) FROM {table}"])
        assert result.exit_code == 0, (table, result.output)


def test_strict_ingest_of_an_empty_folder_fails_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "empty"), "-o",
                                      str(tmp_path / "store"), "--strict"])
    assert result.exit_code == 1
    assert "nothing found" in result.output
    assert "already in the store" not in result.output
    relaxed = CliRunner().invoke(cli, ["ingest", str(tmp_path / "empty"), "-o",
                                       str(tmp_path / "store2")])
    assert relaxed.exit_code == 0 and "nothing found" in relaxed.output


def test_strict_build_of_an_empty_folder_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "empty"), "-o",
                                      str(tmp_path / "dist"), "--strict"])
    assert result.exit_code == 2
    assert "nothing to build (--strict)" in result.output
    shutil.rmtree(tmp_path / "empty")
