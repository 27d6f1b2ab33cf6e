"""The grade scales' meanings (issue 14, item 9): every grade of every scale explained in Chinese and English
from models/grades.toml, with its band and (households) its terms from models/villages.toml; served by
``/scales`` without a key and shown in docs/DESIGN.md."""
from __future__ import annotations

from pathlib import Path

from creditgrade.models.credit_villages import config as village_config
from creditgrade.models.grades import scales
from creditgrade.serving.scales import scale_views

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"


def test_every_grade_has_a_bilingual_meaning_its_band_and_terms():
    views = {v.segment: v for v in scale_views()}
    assert set(views) == {"sme", "household", "practitioner"}
    for segment, scale in scales().items():
        view = views[segment]
        assert [g.grade for g in view.grades] == scale.order
        assert all(g.en and g.zh and g.en != g.zh for g in view.grades)
        assert [g.in_default for g in view.grades].count(True) == 1 and view.grades[-1].in_default
    sme = {g.grade: g for g in views["sme"].grades}
    assert (sme["AAA"].pd_from, sme["AAA"].pd_below, sme["AA"].pd_from) == (0.0, 0.001, 0.001)
    assert "违约风险极低" in sme["AAA"].zh and sme["D"].pd_below is None
    household = {g.grade: g for g in views["household"].grades}
    terms = village_config()["terms"]
    assert household["AAA"].credit_line_cny == terms["AAA"]["credit_line_cny"]
    assert household["AAA"].rate_discount_bp == terms["AAA"]["rate_discount_bp"]
    assert household["NR"].credit_line_cny is None and (household["NR"].score_from, household["NR"].score_to) == (0, 60)
    assert (household["AAA"].score_from, household["AAA"].score_to) == (80, 100)


def test_scales_served_without_a_key(api):  # noqa: F811
    r = api.call("/scales", {})
    assert r.status_code == 200
    served = r.json()
    assert served == [v.model_dump(mode="json") for v in scale_views()]
    spec = api.call("/docs.json", method="GET").json()
    assert "/scales" in spec["paths"] and "security" not in spec["paths"]["/scales"]["post"]


def test_design_shows_every_meaning():
    text = DESIGN.read_text(encoding="utf-8")
    for view in scale_views():
        for g in view.grades:
            assert g.zh in text and g.en in text, (view.segment, g.grade)
