"""What would lift a subject by one grade: the fewest, smallest changes to actionable features.

Candidate values come from the model itself: a tree model's prediction and a scorecard's points only
change where a value crosses a split threshold or a bin edge, and a policy rule (a default or a cap) only
lifts where its condition stops holding. For each actionable feature with a declared direction (catalogue
``actionable = true``, direction up/down; never categorical or profile facts such as age, sector or
region) the candidates are the values just across each such boundary on the better side, rounded to
the feature's unit (whole numbers for counts, days, months...; three significant digits otherwise).
A beam search adds one feature per level (fewest features first); among the sets that reach the target
grade it keeps the one crossing the fewest boundaries, then shrinks each move while the target holds.
Every answer is re-scored by the real model (:meth:`GradeModel.grade`), policy rules included.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from creditgrade.features.catalog import spec
from creditgrade.models.bundle import GradeModel

WHOLE_UNITS = {"count", "days", "months", "persons", "flag", "level", "years"}
NON_NEGATIVE = WHOLE_UNITS | {"CNY", "mu", "ratio"}
MAX_CANDIDATES = 8
ZERO = 1e-9  # a boundary nearer 0 than this splits zero from the rest (LightGBM's zero threshold is 1e-35)
BEAM = 5


def _boundaries(model: GradeModel, x: pd.DataFrame) -> dict[str, list[tuple[float, bool]]]:
    """Per feature: (value, strict) where the model's output for the subject ``x`` (``Estimator.boundaries_of``)
    or a policy rule may change; below means ``x < value`` when strict, ``x <= value`` otherwise."""
    out = {f: list(bounds) for f, bounds in model.estimator.boundaries_of(x[model.features]).items()}
    for rule in model.scale.rules:
        if rule.when in (">=", ">"):
            out.setdefault(rule.feature, []).append((float(rule.value), rule.when == ">="))
    return out


def _nice(b: float, strict: bool, below: bool, whole: bool) -> float:
    """The value nearest ``b`` on the wanted side of the boundary, rounded to the unit."""
    if whole:
        if below:
            return float(math.ceil(b) - 1 if strict else math.floor(b))
        return float(math.ceil(b) if strict else math.floor(b) + 1)
    b = 0.0 if abs(b) < ZERO else b
    digits = 2 - (math.floor(math.log10(abs(b))) if b else -1)
    step = 10.0 ** -digits
    v = round((math.floor(b / step) if below else math.ceil(b / step)) * step, digits)
    if below and (v > b or (strict and v == b)):
        v = round(v - step, digits)
    if not below and (v < b or (not strict and v == b)):
        v = round(v + step, digits)
    return v


def _candidates(model: GradeModel, x: pd.DataFrame) -> dict[str, list[float]]:
    """Values to try per actionable feature, nearest to the current value first."""
    out = {}
    for f, bounds in _boundaries(model, x).items():
        if f not in x:
            continue
        s = spec(f)
        if not s.actionable or s.categorical or s.direction not in ("up", "down"):
            continue
        v = float(pd.to_numeric(x[f]).iloc[0])
        if math.isnan(v):
            continue
        below = s.direction == "up"          # a higher value raises risk: move down
        vals = set()
        for b, strict in bounds:
            is_below = v < b if strict else v <= b
            if is_below != below:
                c = _nice(b, strict, below, s.unit in WHOLE_UNITS)
                if (c < v if below else c > v) and not (s.unit in NON_NEGATIVE and c < 0):
                    vals.add(c)
        vals = sorted(vals, reverse=below)
        if len(vals) > MAX_CANDIDATES:
            vals = [vals[i] for i in np.unique(np.linspace(0, len(vals) - 1, MAX_CANDIDATES).round().astype(int))]
        if vals:
            out[f] = vals
    return out


def _score(model: GradeModel, x: pd.DataFrame, states: list[dict], cands: dict) -> pd.DataFrame:
    """Grade ``x`` with each state's changes (feature -> candidate index) applied."""
    batch = x.loc[x.index.repeat(len(states))].reset_index(drop=True)
    changed: dict[str, np.ndarray] = {}
    for r, state in enumerate(states):
        for f, i in state.items():
            if f not in changed:
                changed[f] = batch[f].to_numpy(dtype=float, copy=True)
            changed[f][r] = cands[f][i]
    for f, col in changed.items():
        batch[f] = col
    return model.grade(batch)


def _reaches(grades, rank: dict, target: str) -> np.ndarray:
    return np.array([rank[g] <= rank[target] for g in grades])


def what_would_change(model: GradeModel, x: pd.DataFrame, max_changes: int = 3) -> dict:
    """The smallest changes to actionable features that lift ``x`` (one row) by one grade.

    Returns ``{"grade", "pd", "target_grade", "best", "reachable", "changes": [{"feature", "en", "zh",
    "from", "to"}], "new_grade", "new_pd"}``; ``best`` is True (and ``target_grade`` None) when the
    subject already has the best grade; ``changes`` is empty when no set of up to ``max_changes``
    changes reaches the target.
    """
    if len(x) != 1:
        raise ValueError(f"what_would_change takes one subject, got {len(x)} rows")
    now = model.grade(x).iloc[0]
    order = model.scale.order
    rank = {g: i for i, g in enumerate(order)}
    answer = {"grade": now["grade"], "pd": float(now["pd"]), "target_grade": None, "best": rank[now["grade"]] == 0,
              "reachable": False, "changes": [], "new_grade": now["grade"], "new_pd": float(now["pd"])}
    if answer["best"]:
        return answer
    target = answer["target_grade"] = order[rank[now["grade"]] - 1]
    cands = _candidates(model, x)
    beam: list[dict] = [{}]
    for _ in range(max_changes):
        states = [{**s, f: i} for s in beam for f in cands if f not in s for i in range(len(cands[f]))]
        if not states:
            break
        graded = _score(model, x, states, cands)
        hit = np.flatnonzero(_reaches(graded["grade"], rank, target))
        pd_ = graded["pd"].to_numpy()
        if len(hit):
            best = min(hit, key=lambda r: (sum(states[r].values()), pd_[r]))
            state = _shrink(model, x, states[best], cands, rank, target)
            return _finish(model, x, answer, state, cands, rank)
        beam, seen = [], set()
        for r in np.argsort(pd_, kind="stable"):
            key = frozenset(states[r])
            if key not in seen:
                seen.add(key)
                beam.append(states[r])
            if len(beam) == BEAM:
                break
    return answer


def _shrink(model, x, state: dict, cands: dict, rank: dict, target: str) -> dict:
    """Move each changed feature back towards its current value while the target grade holds."""
    state = dict(state)
    for f in list(state):
        tries = [{**state, f: i} for i in range(state[f])]
        if tries:
            ok = np.flatnonzero(_reaches(_score(model, x, tries, cands)["grade"], rank, target))
            if len(ok):
                state = tries[ok[0]]
    return state


def _finish(model, x, answer: dict, state: dict, cands: dict, rank: dict) -> dict:
    """Apply the changes, re-score, and describe them (reachable only if the re-scored grade says so)."""
    rescored = _score(model, x, [state], cands).iloc[0]
    changes = []
    for f, i in state.items():
        changes.append({"feature": f, **model.texts[f], "from": float(x[f].iloc[0]), "to": cands[f][i]})
    reachable = bool(rank[rescored["grade"]] <= rank[answer["target_grade"]])
    return {**answer, "reachable": reachable, "changes": changes if reachable else [], "new_grade": rescored["grade"],
            "new_pd": float(rescored["pd"])}
