"""The grade scales as people read them: each grade's meaning in Chinese and English, its PD or score band
and, for households, the preferential terms it earns; read from ``models/grades.toml`` and
``models/villages.toml`` as they are now. Public (``/scales`` needs no key): it says what a grade means,
nothing about anyone."""
from __future__ import annotations

from creditgrade.features.schemas import SEGMENTS
from creditgrade.models.grades import Scale, config
from creditgrade.serving.schemas import GradeMeaning, ScaleView
from creditgrade.serving.villages import SEGMENT as RURAL
from creditgrade.serving.villages import household_terms


def scale_view(segment: str) -> ScaleView:
    conf = config(segment)
    scale = Scale.from_config(conf)
    meanings = conf["meanings"]
    bands = {b["grade"]: b for b in scale.bands}
    grades, upper = [], {"pd": 0.0, "score": scale.max_score}
    for grade in scale.order:
        band = bands.get(grade, {})
        terms = household_terms(grade) if segment == RURAL else {"eligible": False}
        grades.append(GradeMeaning(
            grade=grade, en=meanings[grade]["en"], zh=meanings[grade]["zh"],
            pd_from=upper["pd"] if "pd_below" in band else None, pd_below=band.get("pd_below"),
            score_from=band.get("score_from"), score_to=upper["score"] if "score_from" in band else None,
            in_default=grade == scale.default_grade,
            credit_line_cny=terms["credit_line_cny"] if terms["eligible"] else None,
            rate_discount_bp=terms["rate_discount_bp"] if terms["eligible"] else None))
        upper = {"pd": band.get("pd_below", upper["pd"]), "score": band.get("score_from", upper["score"])}
    return ScaleView(segment=segment, by=scale.by, score_min=scale.min_score, score_max=scale.max_score,
                     grades=grades)


def scale_views() -> list[ScaleView]:
    return [scale_view(segment) for segment in SEGMENTS]
