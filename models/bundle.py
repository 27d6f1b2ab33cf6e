"""A segment's fitted model ready to grade: features in, PD, score, model grade and final grade (policy
rules applied) out.

This is what training registers in MLflow and what serving loads: one object carrying the estimator,
the feature list it was trained on, and the scale and policy rules it was trained with (``policy``: a
copy of its segment's section of ``models/grades.toml`` taken when the object is made, i.e. at training
time), so a grade never depends on state outside it: editing the TOML regrades no registered version.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import mlflow.pyfunc
import numpy as np
import pandas as pd

from creditgrade.features.catalog import catalog
from creditgrade.features.errors import CreditgradeError
from creditgrade.models.grades import Scale, config


@dataclass
class GradeModel:
    """An estimator (``LGBMPD`` or ``Scorecard``) with its segment, features and provenance."""

    segment: str
    kind: str                      # "lightgbm" | "scorecard"
    estimator: object
    features: list[str]
    reference: dict = field(default_factory=dict)   # segment medians of the training features
    info: dict = field(default_factory=dict)        # data period, rows, metrics...
    policy: dict | None = None     # the scale and rules (models.grades.config); None: the TOML's, now

    def __post_init__(self):
        if self.policy is None:
            self.policy = config(self.segment)

    @cached_property
    def scale(self) -> Scale:
        if self.policy is None:  # unpickled from a version registered before models kept their policy
            raise CreditgradeError(f"{self.segment} {self.kind} model has no scale and rules of its own: it was "
                                   f"registered before versions carried them; retrain it")
        return Scale.from_config(self.policy)

    def pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(X[self.features])[:, 1]

    def grade(self, X: pd.DataFrame) -> pd.DataFrame:
        """PD, score, model grade, final grade, binding rule and its evidence for each row of ``X`` (which
        holds the policy inputs as well as the model's features: ``features.build``)."""
        pd_ = self.pd(X)
        points = None
        if self.kind == "scorecard" and self.scale.by == "score":
            points = self.estimator.points(X[self.features])  # the card's total is the score people read
        return self.scale.apply(pd_, X, score=points)


class GradePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a :class:`GradeModel`: returns PD, score and grade, not class labels."""

    def __init__(self, model: GradeModel):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Grades of ``model_input`` (categorical features as the catalogue's categories or as text)."""
        text = [s for s in catalog(self.model.segment) if s.categorical and s.name in model_input
                and not isinstance(model_input[s.name].dtype, pd.CategoricalDtype)]
        out = self.model.grade(model_input.assign(**{s.name: pd.Categorical(model_input[s.name], categories=s.categories)
                                                     for s in text}))
        out["override"] = [o.feature if o is not None else None for o in out["override"]]
        return out.reset_index(drop=True)
