"""``--mode update``: fold new interactions into a saved hybrid model without retraining.

Reads a saved model folder (``--load``), a file of new interactions (``--interactions``,
columns ``user_id`` and ``item_id``) and, for item ids the model does not know, their
text (``--new-items``); writes the updated model, ``update.json`` and ``items_updated.csv``
(each touched item's interactions and blend weight before and after) to the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import Config, ConfigError
from ..io import write_csv, write_json
from ..models import load_model

log = logging.getLogger("hybridrec.experiments")


def run_update(cfg: Config, run_dir: Path, load: str | None = None, interactions: str | None = None,
               new_items: str | None = None, **_) -> str:
    """Load the model at ``load``, fold in ``interactions`` (and ``new_items``), save it."""
    from ..data.tabular import read_frame
    from ..eval.table import render_table
    from ..text.new_items import read_new_items

    if not load or not interactions:
        raise ConfigError("--mode update needs --load <saved model folder> and --interactions <file>")
    model = load_model(load, device=cfg.run.device)
    if not hasattr(model, "update"):
        raise ConfigError(f"the {model.name!r} model in {load} cannot fold in new interactions; "
                          "save a hybrid model (--mode hybrid) and update that")
    frame = read_frame(interactions)
    items = read_new_items(new_items) if new_items else None
    known = {i: n for i, n in zip(model.item_vocab.ids, model.parts.counts.tolist())}
    blend_before = dict(zip(model.item_vocab.ids, model.blend.tolist()))
    summary = model.update(frame, items=items)
    out = model.save(run_dir / "models" / model.name)
    touched = list(dict.fromkeys(frame["item_id"].astype(str).str.strip()))
    idx = model.item_vocab.index(touched)
    counts, blend = model.parts.counts.numpy(), model.blend.numpy()
    rows = [{"item_id": i, "interactions_before": int(known.get(i, 0)), "interactions_after": int(counts[j]),
             "blend_before": round(float(blend_before.get(i, 0.0)), 4), "blend_after": round(float(blend[j]), 4)}
            for i, j in zip(touched, np.atleast_1d(idx))]
    write_csv(run_dir / "items_updated.csv", rows)
    write_json(run_dir / "update.json", {**summary, "model": str(load), "interactions_file": str(interactions),
                                         "new_items_file": new_items, "saved_to": str(out)})
    log.info("update: %s", summary)
    shown = sorted(rows, key=lambda r: r["interactions_after"] - r["interactions_before"], reverse=True)[:15]
    header = ["item_id", "interactions_before", "interactions_after", "blend_before", "blend_after"]
    table = render_table(header, [[str(r[h]) for h in header] for r in shown], first_left=True,
                         title=f"items with the most new interactions (of {len(rows)}; all in items_updated.csv)")
    return (f"folded {summary['interactions']} interactions into {load}: {summary['new_users']} new users, "
            f"{summary['new_items']} new items, {summary['items_touched']} items touched; "
            f"updated model in {out}\n\n{table}")
