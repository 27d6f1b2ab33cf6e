"""Quality features: spot checks, recalls, complaints, the quality violators list, professional sanctions."""
from __future__ import annotations

import numpy as np

from features.snapshot import Snapshot


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("quality", "quality")
    checks = s.kinds("quality.spot_check") & s.window(36)
    out["quality_spot_checks_36m"] = s.count(checks)
    out["quality_spot_checks_failed_36m"] = s.count(checks & s.category_is("fail"))
    out["quality_recalls_36m"] = s.count(s.kinds("quality.recall") & s.window(36))
    out["quality_complaints_12m"] = s.count(s.kinds("quality.complaint") & s.window(12))
    out["quality_blacklisted"] = (s.count(s.kinds("quality.blacklist") & s.ongoing()) > 0).astype(float)
    sanctions = s.kinds("quality.sanction")
    out["quality_sanctions_36m"] = s.count(sanctions & s.window(36))
    out["quality_sanctions_serious"] = s.count(sanctions & s.severity_is("serious"))
    return out
