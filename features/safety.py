"""Work-safety features: inspections, violations by severity, accidents and casualties (the violators
list is a national credit list: ``features.lists``)."""
from __future__ import annotations

import numpy as np

from creditgrade.features.snapshot import Snapshot


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("safety", "safety")
    inspections = s.kinds("safety.inspection") & s.window(36)
    out["safety_inspections_36m"] = s.count(inspections)
    out["safety_inspections_failed_36m"] = s.count(inspections & s.category_is("fail"))
    violations = s.kinds("safety.violation")
    out["safety_violations_12m"] = s.count(violations & s.window(12))
    out["safety_violations_serious_36m"] = s.count(violations & s.window(36) & s.severity_is("serious"))
    accidents = s.kinds("safety.accident") & s.window(36)
    out["safety_accidents_36m"] = s.count(accidents)
    out["safety_casualties_36m"] = s.total(accidents, s.value)
    return out
