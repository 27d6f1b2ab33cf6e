"""Labour features: insured headcount and its trend (the latest month against the past, tax paid per insured
employee: ``features.trajectory``), social-insurance and wage arrears, labour disputes."""
from __future__ import annotations

import numpy as np

from creditgrade.features import trajectory
from creditgrade.features.snapshot import Snapshot


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("labor", "labor")
    insured = s.kinds("labor.social_insurance")
    headcount = s.latest(insured & s.window(3), s.value)
    out["labor_insured_headcount"] = np.nan_to_num(headcount, nan=0.0)  # none reported lately = none insured
    out["labor_headcount_yoy"] = s.change(insured, s.value, s.window(3), s.window(3, offset=12))
    out["labor_headcount_vs_3y"] = s.change(insured, s.value, s.window(3), s.window(36))
    si_arrears = s.kinds("labor.si_arrears")
    out["labor_si_arrears_12m"] = s.count(si_arrears & s.window(12))
    out["labor_si_arrears_open_amount"] = s.total(si_arrears & s.ongoing(), s.amount)
    wages = s.kinds("labor.wage_arrears") & s.window(36)
    out["labor_wage_arrears_36m"] = s.count(wages)
    out["labor_wage_arrears_workers_36m"] = s.total(wages, s.value)
    out["labor_disputes_36m"] = s.count(s.kinds("labor.dispute") & s.window(36))
    out.update(trajectory.labor(s))
    return out
