"""A segment's fitted model ready to grade: features in, PD, score and grade (with overrides) out.

This is what training registers in MLflow and what serving loads: one object carrying the estimator,
the feature list it was trained on, its scale and what it was trained on, so a grade never depends on
state outside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.grades import Scale, scales


@dataclass
class GradeModel:
    """An estimator (``LGBMPD`` or ``Scorecard``) with its segment, features and provenance."""

    segment: str
    kind: str                      # "lightgbm" | "scorecard"
    estimator: object
    features: list[str]
    reference: dict = field(default_factory=dict)   # segment medians of the training features
    info: dict = field(default_factory=dict)        # data period, rows, metrics...

    @property
    def scale(self) -> Scale:
        return scales()[self.segment]

    def pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(X[self.features])[:, 1]

    def grade(self, X: pd.DataFrame) -> pd.DataFrame:
        """PD, score, model grade, final grade and binding override for each row of ``X``."""
        pd_ = self.pd(X)
        points = None
        if self.kind == "scorecard" and self.scale.by == "score":
            points = self.estimator.points(X[self.features])  # the card's total is the score people read
        out = self.scale.apply(pd_, X, score=points)
        return out


class GradePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a :class:`GradeModel`: returns PD, score and grade, not class labels."""

    def __init__(self, model: GradeModel):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        out = self.model.grade(model_input)
        out["override"] = [o.feature if o is not None else None for o in out["override"]]
        return out.reset_index(drop=True)
