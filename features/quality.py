"""Quality features: spot checks, recalls, complaints, professional sanctions, adverse records and complaints
weighted by recency (``features.trajectory``); and the policy inputs of
``models/grades.toml`` (``model = false`` in the catalogue): the serious sanctions in force (a practitioner's
default) with the earliest one's record and start, and the latest serious sanction still on record."""
from __future__ import annotations

import numpy as np

from creditgrade.features import trajectory
from creditgrade.features.snapshot import Snapshot


def build(s: Snapshot) -> dict[str, np.ndarray]:
    out = s.source_summary("quality", "quality")
    checks = s.kinds("quality.spot_check") & s.window(36)
    out["quality_spot_checks_36m"] = s.count(checks)
    out["quality_spot_checks_failed_36m"] = s.count(checks & s.category_is("fail"))
    out["quality_recalls_36m"] = s.count(s.kinds("quality.recall") & s.window(36))
    out["quality_complaints_12m"] = s.count(s.kinds("quality.complaint") & s.window(12))
    sanctions = s.kinds("quality.sanction")
    out["quality_sanctions_36m"] = s.count(sanctions & s.window(36))
    serious = sanctions & s.severity_is("serious")
    out["quality_sanctions_serious"] = s.count(serious)
    out["quality_sanction_serious_record"] = s.at(s.pick(serious), s.record_id)
    in_force = serious & s.ongoing()
    first = s.pick(in_force, -s.start_day)
    out["quality_sanctions_in_force"] = s.count(in_force)
    out["quality_sanction_in_force_record"] = s.at(first, s.record_id)
    out["quality_sanction_in_force_since"] = s.at(first, s.start_day)
    out.update(trajectory.quality(s))
    return out
