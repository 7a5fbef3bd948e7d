"""The data card (README.md with the Hub's YAML header), its plots and Croissant metadata."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from curate import __version__
from curate.export.columns import column_docs
from curate.export.croissant import write_croissant
from curate.export.params import ExportParams
from curate.export.plots import PlotData, PlotWorker
from curate.export.provenance import BuildInfo as BuildInfo  # the old import path
from curate.export.stats import ExportStats
from curate.extras import missing_message
from curate.resources import resource_path
from curate.store.schema import SCHEMA_VERSION

logger = logging.getLogger(__name__)

TRAINERS = {
    "plain": ("any (`datasets`)", "toolkit's own columns; images decode to PIL"),
    "trl": ("TRL GRPO / SFT (vision-language)",
            "conversational `prompt`/`completion` with image parts, `images`, `solution`"),
    "verl": ("verl, EasyR1", "`prompt` with `<image>` tags, `reward_model.ground_truth`, "
             "`extra_info`; EasyR1: point it at the parquet files with "
             "`prompt_key=problem answer_key=answer image_key=images` (a stage2 `answer` is "
             "the step envelope `{ground_truth, step}` naming its episode and step, which the "
             "Stage-2 rewards that execute need)"),
    "easyr1": ("EasyR1 (TraceR1 recipe)",
               "`problem` with `<image>` tags, `answer` in TraceR1's step format (states, "
               "action types, step instructions, done status), `images`; point EasyR1 at the "
               "parquet files; reward `curate/rewards/easyr1.py:compute_score`"),
}


def size_category(rows: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < bound:
            return name
    return "10M<n<100M"


def yaml_header(files: Mapping[tuple[str, str, str], list[Path]], params: ExportParams,
                stats: ExportStats, license_name: str) -> str:
    from curate.export.features import config_name

    configs: dict[str, list[dict[str, str]]] = {}
    for config, flavour, split in files:
        name = config_name(config, flavour)
        configs.setdefault(name, []).append(
            {"split": split, "path": f"data/{name}/{split}-*.parquet"})
    entries = []
    for name in sorted(configs, key=lambda n: (n.split("_")[0], n != n.split("_")[0], n)):
        entry: dict[str, Any] = {"config_name": name, "data_files": configs[name]}
        if name == ("stage1" if "stage1" in configs else sorted(configs)[0]):
            entry["default"] = True
        entries.append(entry)
    total = max((sum(c.values()) for c in stats.rows_by_split.values()), default=0)
    header = {
        "configs": entries,
        "license": license_name,
        **({"license_name": params.license_name, "license_link": params.license_link}
           if license_name == "other" else {}),
        "language": list(params.languages),
        "pretty_name": params.pretty_name,
        "task_categories": ["image-text-to-text", "reinforcement-learning"],
        "tags": ["gui-agents", "computer-use", "trajectories", "forecasting", "curate",
                 *sorted({f"source:{s}" for s in stats.sources})],
        "size_categories": [size_category(total)],
        "curate": {"schema_version": SCHEMA_VERSION, "toolkit_version": __version__,
                   "export": params.as_dict()},
    }
    return str(yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=100))


def write_card(root: Path, files: Mapping[tuple[str, str, str], list[Path]],
               stats: ExportStats, params: ExportParams, build: BuildInfo,
               redactions: Mapping[str, int], licenses: Mapping[str, str] | None = None,
               plots: PlotWorker | None = None) -> None:
    """Write README.md, plots/ and croissant.json into the export folder. The plots are drawn
    by ``plots`` (None: matplotlib is not installed)."""
    import jinja2

    from curate.export.examples import example_rows
    from curate.export.features import config_name
    from curate.rewards.presets import get_preset

    has_plots = plots is not None
    if plots is not None:
        has_consistency = plots.render(root / "plots", PlotData.of(stats))
    else:  # the card stays complete without its pictures; say once how to get them
        has_consistency = False
        logger.warning("%s; the data card is written without them",
                       missing_message("matplotlib", "the data card's statistics plots"))
    licenses = licenses or {}
    # Ties broken by name: the order of a set of tuples changes with PYTHONHASHSEED.
    names = sorted({(c, f) for c, f, _ in files},
                   key=lambda cf: (cf[0], cf[1] != "plain", cf[1]))
    source_rows = [{"name": s, "count": n,
                    "license": licenses.get(s, "as published by the source (not recorded)")}
                   for s, n in stats.sources.most_common()]
    context = {
        "yaml_header": yaml_header(files, params, stats, params.license),
        "pretty_name": params.pretty_name,
        "repo_hint": "ORG/NAME",
        "build": build,
        "params": params,
        "stats": stats,
        "click_tolerance": f"{get_preset(params.preset).click_threshold:g}",
        "flavour_rows": [{"name": config_name(c, f), "trainer": TRAINERS[f][0],
                          "notes": TRAINERS[f][1]} for c, f in names],
        # Every split asked for, empty ones too: the card states the real sizes.
        "size_rows": [{"config": c, "split": s, "rows": stats.rows_by_split[c][s]}
                      for c in sorted({c for c, _, _ in files}) for s in params.splits],
        "episodes_by_split": sorted(stats.episodes_by_split.items()),
        "source_rows": source_rows,
        "example_rows": example_rows(files, [config_name(c, f) for c, f in names]),
        "column_tables": [{"name": config_name(c, f), "columns": column_docs(c, f)}
                          for c, f in names],
        "has_plots": has_plots,
        "has_consistency": has_consistency,
        "redactions": sorted(redactions.items()),
        "skipped": sorted(stats.skipped_flat().items()),
        "executability": stats.executability_rows(),
    }
    template_text = resource_path("data_cards", "dataset_card.md.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    card = environment.from_string(template_text).render(**context)
    (root / "README.md").write_text(card, encoding="utf-8")
    (root / "LICENSE.md").write_text(license_text(params, source_rows),
                                     encoding="utf-8")
    write_croissant(root, files, params, build)


def license_text(params: ExportParams, source_rows: list[dict[str, Any]]) -> str:
    """LICENSE.md: the dataset's license and, since rows come from sources with their own
    terms, each source's (what the card's license_link points at by default)."""
    lines = [f"# License of {params.pretty_name}", "",
             f"Declared license: `{params.license}`"
             + (f" (`{params.license_name}`)" if params.license == "other" else "") + ".", "",
             "The rows are derived from these sources; each keeps its own terms:", ""]
    lines += [f"- {row['name']} ({row['count']} episodes): {row['license']}"
              for row in source_rows]
    return "\n".join(lines) + "\n"


def read_card_header(root: Path) -> dict[str, Any]:
    """The YAML header of an export's README.md (raises ValueError when absent)."""
    text = (root / "README.md").read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError("README.md has no YAML header (it must start with ---)")
    end = text.find("\n---", 4)
    if end < 0:
        raise ValueError("README.md's YAML header is not closed with ---")
    loaded = yaml.safe_load(text[4:end])
    if not isinstance(loaded, dict):
        raise ValueError("README.md's YAML header is not a mapping")
    return loaded


def card_json(root: Path) -> str:
    return json.dumps(read_card_header(root), sort_keys=True)
