"""``view``: one self-contained HTML page to look at a store's episodes.

No server and nothing external: screenshots are embedded as data URIs (loaded lazily), the
action is drawn over each screenshot as inline SVG (click point, drag path, scroll arrow,
target box) with typed text or keys as a caption, and beside it the step's labels, the
human review when there is one, and the forecast windows that start at the step next to
their loop-free reference. Each episode lists its rejects.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.actions import Action
from curate.errors import CurateError
from curate.review.images import read_frames
from curate.review.overrides import apply_reviews_to_labels, chosen_reviews, read_reviews
from curate.store.core import Store, open_store, write_atomic

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
CLICKS = frozenset({"click", "double_click", "right_click", "middle_click", "long_press",
                    "move"})
PATHS = frozenset({"drag", "swipe"})
OPEN_EPISODES = 5  # more than this and episodes start folded, so the page opens quickly


@dataclass
class ViewData:
    """Everything the page shows, read once from the store."""

    episodes: list[dict[str, Any]]
    steps: dict[str, list[dict[str, Any]]]
    labels: dict[tuple[str, int], dict[str, Any]]
    segments: dict[tuple[str, int], list[dict[str, Any]]]
    rejects: dict[str, list[dict[str, Any]]]
    loose_rejects: list[dict[str, Any]]
    reviews: dict[tuple[str, int], dict[str, Any]]
    frames: dict[str, tuple[str, int, int, bytes]]


def render_view(store_path: str | Path, *, episode_ids: list[str] | None = None,
                out_path: str | Path) -> Path:
    """Write the HTML page for the chosen episodes (all by default); return its path."""
    store = open_store(store_path)
    data = _load(store, episode_ids)
    page = _page(store, data)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, page.encode("utf-8"))
    return out


# ---------------------------------------------------------------- reading


def _load(store: Store, episode_ids: list[str] | None) -> ViewData:
    episodes = sorted(store.read("episodes").to_pylist(), key=lambda e: e["source_path"])
    if episode_ids:
        known = {e["episode_id"] for e in episodes}
        missing = [e for e in episode_ids if e not in known]
        if missing:
            raise CurateError(f"episode {missing[0]} is not in {store.path}; list them with "
                              f"`curate query {store.path} \"SELECT episode_id FROM episodes\"`")
        episodes = [e for e in episodes if e["episode_id"] in set(episode_ids)]
    wanted = {e["episode_id"] for e in episodes}
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.read("steps").to_pylist():
        if row["episode_id"] in wanted:
            steps[row["episode_id"]].append(row)
    for rows in steps.values():
        rows.sort(key=lambda r: r["step_index"])
    reviews = read_reviews(store)
    labels = {(r["episode_id"], r["step_index"]): r
              for r in apply_reviews_to_labels(store.read("labels"), reviews).to_pylist()
              if r["episode_id"] in wanted}
    segments: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in store.read("segments").to_pylist():
        if row["episode_id"] in wanted:
            segments[(row["episode_id"], row["step_index"])].append(row)
    rejects, loose = _rejects(store, episodes, wanted, all_episodes=not episode_ids)
    step_reviews = {(r["episode_id"], r["step_index"]): r
                    for r in chosen_reviews(reviews, "step")}
    frame_ids = {s["frame_id"] for rows in steps.values() for s in rows if s["frame_id"]}
    frames = {k: (f.format, f.width, f.height, bytes(f.data))  # bytes already: no copy
              for k, f in read_frames(store, frame_ids).items()}
    return ViewData(episodes, dict(steps), labels, dict(segments), rejects, loose, step_reviews,
                    frames)


def _rejects(store: Store, episodes: list[dict[str, Any]], wanted: set[str], *,
             all_episodes: bool) -> tuple[dict[str, list[dict[str, Any]]],
                                          list[dict[str, Any]]]:
    by_path = {e["source_path"]: e["episode_id"] for e in episodes}
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    loose: list[dict[str, Any]] = []
    for row in store.read("rejects").to_pylist():
        owner = row["episode_id"] if row["episode_id"] in wanted else by_path.get(
            row["source_path"])
        if owner is not None:
            grouped[owner].append(row)
        elif all_episodes:
            loose.append(row)
    return dict(grouped), loose


# ---------------------------------------------------------------- drawing


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _point(action: Action, width: int, height: int, second: bool = False) -> tuple[float, float]:
    x, y = (action.x2, action.y2) if second else (action.x, action.y)
    assert x is not None and y is not None
    return _clamp(x) * width, _clamp(y) * height


def _overlay(action: Action, width: int, height: int, css: str) -> str:
    """SVG shapes for one action on a width x height frame (empty when it has no point)."""
    radius = max(width, height) / 60
    shapes: list[str] = []
    box = action.target
    if box is not None and None not in (box.x0, box.y0, box.x1, box.y1):
        assert box.x0 is not None and box.y0 is not None
        assert box.x1 is not None and box.y1 is not None
        # Sources can record inverted boxes (DroidBot's views clipped off-screen): draw the
        # box between its corners whichever way round they come.
        left, right = sorted((box.x0, box.x1))
        top, bottom = sorted((box.y0, box.y1))
        shapes.append(f'<rect class="target" x="{left * width:.1f}" y="{top * height:.1f}"'
                      f' width="{(right - left) * width:.1f}"'
                      f' height="{(bottom - top) * height:.1f}"/>')
    if action.x is None or action.y is None:
        return "".join(shapes)
    x, y = _point(action, width, height)
    outside = not (0 <= action.x <= 1 and 0 <= action.y <= 1)
    kind = f"marker {css} {action.type}" + (" outside" if outside else "")
    if action.type in PATHS and action.x2 is not None and action.y2 is not None:
        x2, y2 = _point(action, width, height, second=True)
        shapes.append(f'<g class="{kind}" data-kind="{action.type}">'
                      f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"'
                      f' marker-end="url(#arrow)"/>'
                      f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}"/></g>')
    elif action.type == "scroll":
        dy = {"up": -3, "down": 3}.get(action.direction or "", 0) * radius
        dx = {"left": -3, "right": 3}.get(action.direction or "", 0) * radius
        shapes.append(f'<g class="{kind}" data-kind="scroll">'
                      f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius / 2:.1f}"/>'
                      f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + dx:.1f}" y2="{y + dy:.1f}"'
                      f' marker-end="url(#arrow)"/></g>')
    else:
        rings = 2 if action.type == "double_click" else 1
        circles = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius * (1 + i / 2):.1f}"/>'
                          for i in range(rings))
        shapes.append(f'<g class="{kind}" data-kind="{action.type}">{circles}'
                      f'<line x1="{x - radius * 2:.1f}" y1="{y:.1f}" x2="{x + radius * 2:.1f}"'
                      f' y2="{y:.1f}"/><line x1="{x:.1f}" y1="{y - radius * 2:.1f}"'
                      f' x2="{x:.1f}" y2="{y + radius * 2:.1f}"/></g>')
    return "".join(shapes)


def _caption(action: Action) -> str:
    """Typed text, keys, a URL or an app drawn as a caption over the screenshot."""
    if action.type == "type" and action.text is not None:
        return f"⌨ “{action.text}”"
    if action.type == "key" and action.keys:
        return "⌨ " + " + ".join(action.keys)
    if action.type == "scroll":
        return f"scroll {action.direction or ''} {'' if action.amount is None else action.amount}"
    if action.type == "navigate":
        return f"→ {action.url}"
    if action.type == "open_app":
        return f"open {action.app}"
    return ""


def _screenshot(step: dict[str, Any], data: ViewData, review: dict[str, Any] | None) -> str:
    action = Action.from_row(step["action"])
    frame = data.frames.get(step["frame_id"] or "")
    if frame is None:
        reason = step["frame_missing"] or "frame not in store"
        return f'<div class="noshot">no screenshot ({_e(reason)})</div>'
    fmt, width, height, raw = frame
    uri = f"data:{_MIME.get(fmt, 'image/png')};base64,{base64.b64encode(raw).decode('ascii')}"
    shapes = _overlay(action, width, height, "recorded")
    if review is not None and review["corrected_action"] is not None:
        shapes += _overlay(Action.from_row(review["corrected_action"]), width, height,
                           "corrected")
    caption = _caption(action)
    return (f'<div class="shot"><img loading="lazy" src="{uri}" width="{width}"'
            f' height="{height}" alt="s_t of step {step["step_index"]}">'
            f'<svg class="overlay" viewBox="0 0 {width} {height}"'
            f' preserveAspectRatio="none">{shapes}</svg>'
            + (f'<div class="caption">{_e(caption)}</div>' if caption else "") + "</div>")


def _badges(label: dict[str, Any] | None) -> str:
    if label is None:
        return '<span class="badge none">not labelled</span>'
    badges = [name for name in ("noop", "loop", "recovery", "terminal") if label.get(name)]
    if label.get("on_path") is False:
        badges.append("off_path")
    elif label.get("on_path"):
        badges.append("on_path")
    spans = "".join(f'<span class="badge {b}">{b}</span>' for b in badges)
    return spans + f'<span class="badge source">{_e(label.get("label_source"))}</span>'


def _windows(step: dict[str, Any], data: ViewData, episode_steps: list[dict[str, Any]]) -> str:
    """The forecast windows starting at this step, next to the loop-free reference."""
    rows = data.segments.get((step["episode_id"], step["step_index"]), [])
    if not rows:
        return ""
    later = [s for s in episode_steps if s["step_index"] >= step["step_index"]]
    on_path = [s["action_text"] for s in later
               if (data.labels.get((s["episode_id"], s["step_index"])) or {})
               .get("on_path", True) is not False]
    parts = []
    for segment in sorted(rows, key=lambda r: r["horizon"]):
        horizon = segment["horizon"]
        reference = (on_path[:horizon] + ["done()"] * horizon)[:horizon]
        lines = "".join(
            f"<tr class=\"{'' if real else 'pad'}\"><td>{_e(target)}</td>"
            f"<td>{_e(ref)}</td></tr>"
            for target, ref, real in zip(segment["target_action_texts"], reference,
                                         segment["mask"], strict=True))
        parts.append(f'<table class="window"><caption>K={horizon} window · consistency '
                     f'{segment["consistency"]:.2f} ({_e(segment["label_source"])})</caption>'
                     f"<tr><th>forecast target</th><th>loop-free reference</th></tr>"
                     f"{lines}</table>")
    return "".join(parts)


def _review_note(review: dict[str, Any] | None) -> str:
    if review is None:
        return ""
    fix = (f" → <code>{_e(review['corrected_action_text'])}</code>"
           if review["corrected_action_text"] else "")
    return (f'<div class="review">reviewed by {_e(review["reviewer"])}: '
            f'<b>{_e(review["verdict"])}</b>{fix}</div>')


def _step_card(step: dict[str, Any], data: ViewData, episode_steps: list[dict[str, Any]]) -> str:
    key = (step["episode_id"], step["step_index"])
    review = data.reviews.get(key)
    extra = "".join(f'<div class="{name}">{_e(step[name])}</div>'
                    for name in ("thought", "observation") if step.get(name))
    warnings = "".join(f'<div class="warning">⚠ {_e(w)}</div>' for w in step["warnings"] or [])
    return (f'<article class="step" id="{_e(step["episode_id"])}-{step["step_index"]}">'
            f"{_screenshot(step, data, review)}"
            f'<div class="info"><h3>step {step["step_index"]}</h3>'
            f'<code class="action">{_e(step["action_text"])}</code>'
            f'<div class="badges">{_badges(data.labels.get(key))}</div>'
            f"{_review_note(review)}{extra}{warnings}"
            f"{_windows(step, data, episode_steps)}</div></article>")


def _reject_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    items = "".join(f"<li><b>{_e(r['level'])}</b> {_e(r['file'])} {_e(r['position'])}: "
                    f"{_e(r['reason'])} <i>{_e(r['hint'])}</i></li>" for r in rows)
    return f'<div class="rejects"><h3>rejects ({len(rows)})</h3><ul>{items}</ul></div>'


def _episode(episode: dict[str, Any], data: ViewData, opened: bool) -> str:
    steps = data.steps.get(episode["episode_id"], [])
    cards = "".join(_step_card(s, data, steps) for s in steps)
    meta = (f"{_e(episode['source_format'])} · {_e(episode['platform'])} · {len(steps)} steps · "
            f"outcome {_e(episode['outcome'])} · {_e(episode['source_path'])}")
    title = _e(episode["instruction"] or "(no instruction)")
    return (f'<details class="episode" id="{_e(episode["episode_id"])}"'
            f'{" open" if opened else ""}><summary><h2>{title}'
            f'</h2><div class="meta">{meta}</div></summary>'
            f"{_reject_list(data.rejects.get(episode['episode_id'], []))}{cards}</details>")


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;
color:#222;background:#fafafa}
h1{font-size:20px}summary{cursor:pointer}summary h2{display:inline;font-size:16px}
.meta{color:#666;font-size:12px;margin:2px 0 8px}
.episode{background:#fff;border:1px solid #ddd;border-radius:6px;margin:12px 0;padding:8px 12px}
.step{display:flex;gap:16px;border-top:1px solid #eee;padding:10px 0}
.shot{position:relative;flex:0 0 auto;width:min(560px,55vw);line-height:0}
.shot img{width:100%;height:auto;border:1px solid #ccc}
.overlay{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;
overflow:visible}
.marker{fill:none;stroke-width:3;vector-effect:non-scaling-stroke}
.marker.recorded{stroke:#e53935}.marker.corrected{stroke:#00a152}
.marker.outside{stroke-dasharray:4 3}
.marker line{vector-effect:non-scaling-stroke}
.target{fill:rgba(67,160,71,.12);stroke:#43a047;stroke-dasharray:6 4;
vector-effect:non-scaling-stroke}
.caption{position:absolute;left:6px;bottom:6px;background:rgba(0,0,0,.72);color:#fff;
padding:3px 8px;border-radius:4px;line-height:1.3;font-size:13px;max-width:90%}
.noshot{flex:0 0 auto;width:min(560px,55vw);height:80px;display:flex;align-items:center;
justify-content:center;background:#eee;color:#777;border:1px dashed #bbb}
.info{flex:1;min-width:0}.info h3{margin:0 0 4px;font-size:14px}
.action{display:block;white-space:pre-wrap;word-break:break-all;background:#f3f3f3;padding:4px}
.badge{display:inline-block;font-size:11px;padding:1px 6px;margin:4px 4px 0 0;border-radius:9px;
background:#e0e0e0}.badge.noop,.badge.loop,.badge.off_path{background:#ffcdd2}
.badge.on_path{background:#c8e6c9}.badge.terminal{background:#bbdefb}
.badge.recovery{background:#fff9c4}.badge.source{background:#eceff1;color:#555}
.review{margin-top:6px;color:#00695c}.thought,.observation{margin-top:6px;color:#555;
font-size:12px;white-space:pre-wrap}.warning{color:#b26a00;font-size:12px}
.window{border-collapse:collapse;margin-top:8px;font-size:12px;width:100%}
.window caption{text-align:left;color:#555}.window td,.window th{border:1px solid #ddd;
padding:2px 4px;text-align:left;word-break:break-all}.window tr.pad td:first-child{color:#999}
.rejects{background:#fff3e0;border-radius:4px;padding:4px 10px;margin:6px 0;font-size:12px}
.rejects h3{font-size:13px;margin:4px 0}
"""

_DEFS = ('<svg width="0" height="0" style="position:absolute"><defs><marker id="arrow" '
         'viewBox="0 0 10 10" refX="8" refY="5" markerWidth="6" markerHeight="6" '
         'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#e53935"/>'
         "</marker></defs></svg>")


def _page(store: Store, data: ViewData) -> str:
    opened = len(data.episodes) <= OPEN_EPISODES
    body = "".join(_episode(e, data, opened) for e in data.episodes)
    steps = sum(len(v) for v in data.steps.values())
    loose = _reject_list(data.loose_rejects)
    loose_block = (f'<section class="episode"><h2>Rejects not tied to an episode</h2>{loose}'
                   "</section>") if loose else ""
    title = f"curate view · {store.path.name}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{_DEFS}"
            f"<h1>{_e(title)}</h1><p class=\"meta\">{len(data.episodes)} episodes · {steps} "
            f"steps · red: recorded action, green: reviewer's correction, dashed box: "
            f"target element</p>{body}{loose_block}</body></html>\n")
