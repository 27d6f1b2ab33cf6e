"""A segment's fitted model ready to grade: features in, PD, score, model grade and final grade (policy
rules applied) out.

This is what training registers in MLflow and what serving loads: an estimator of any family
(:class:`~creditgrade.models.estimator.Estimator`), the feature list it was trained on, and what it grades
and explains with as they were at training time: its segment's scale and policy rules (``policy``, a copy
of ``models/grades.toml``'s section) and each feature's reason texts (``texts``, from the catalogue). A grade
never depends on state outside it: editing the TOML or the catalogue regrades no registered version.

A registered version is a directory of JSON documents (:meth:`GradeModel.documents`): ``estimator.json`` in
the family's own format, ``model.json`` (segment, family, features, reference values, provenance),
``policy.json`` and ``texts.json``; it is read back with :meth:`GradeModel.load`, which unpickles nothing.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from creditgrade.features.catalog import catalog
from creditgrade.features.errors import CreditgradeError
from creditgrade.models.estimator import Estimator, Walk
from creditgrade.models.families import from_json
from creditgrade.models.grades import Scale, config

FORMAT = "creditgrade.grade-model/1"
DOCUMENTS = ("estimator", "model", "policy", "texts")
"""The files of a version, each ``<name>.json``."""


@dataclass
class GradeModel:
    """An estimator with its segment, features, provenance, and the scale, rules and texts it grades with."""

    segment: str
    kind: str                      # the estimator's family (models.families): a label, logged and shown
    estimator: Estimator
    features: list[str]
    reference: dict = field(default_factory=dict)   # segment medians of the training features
    info: dict = field(default_factory=dict)        # data period, rows, metrics...
    policy: dict | None = None     # the scale and rules (models.grades.config); None: the TOML's, now
    texts: dict | None = None      # feature -> {"en", "zh"} reason texts; None: the catalogue's, now

    def __post_init__(self):
        if self.policy is None:
            self.policy = config(self.segment)
        if self.texts is None:  # the model's features and its rules' conditions
            named = {*self.features, *(r["feature"] for r in self.policy["rules"])}
            self.texts = {s.name: {"en": s.en, "zh": s.zh} for s in catalog(self.segment) if s.name in named}

    @cached_property
    def scale(self) -> Scale:
        return Scale.from_config(self.policy)

    @property
    def unit(self) -> str:
        """The unit of the explanation's contributions (``models.estimator.UNITS``)."""
        return self.estimator.unit

    def pd(self, X: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_pd(X[self.features])

    def grade(self, X: pd.DataFrame) -> pd.DataFrame:
        """PD, score, model grade, final grade, binding rule and its evidence for each row of ``X`` (which
        holds the policy inputs as well as the model's features: ``features.build``)."""
        rows = X[self.features]
        own = self.estimator.own_score(rows) if self.scale.by == "score" else None
        return self.scale.apply(self.estimator.predict_pd(rows), X, score=own)

    def grade_walk(self, X: pd.DataFrame, walk: Walk) -> pd.DataFrame:
        """:meth:`grade` from a :meth:`Estimator.walk` of ``X`` already made (its PD and own score)."""
        return self.scale.apply(walk.pd, X, score=walk.score if self.scale.by == "score" else None)

    def outcome(self, inputs, walk: Walk) -> dict[str, np.ndarray]:
        """:meth:`grade_walk` as arrays (``Scale.outcome``), the policy rules reading ``inputs`` (feature name
        -> values, e.g. one subject's features): no frame."""
        return self.scale.outcome(walk.pd, inputs, score=walk.score if self.scale.by == "score" else None)

    def outcome_one(self, inputs: Mapping[str, float], walk: Walk) -> dict:
        """:meth:`outcome` of a walk of one row on plain values (``Scale.outcome_one``; ``inputs`` the rules'
        features as floats)."""
        score = walk.score[0] if self.scale.by == "score" and walk.score is not None else None
        return self.scale.outcome_one(float(walk.pd[0]), inputs, score)

    def documents(self) -> dict[str, str]:
        """The version's JSON documents, name -> text (see the module docstring)."""
        head = {"format": FORMAT, "segment": self.segment, "kind": self.kind, "features": self.features,
                "reference": self.reference, "info": self.info}
        return {"estimator": self.estimator.to_json(), "model": json.dumps(head, sort_keys=True),
                "policy": json.dumps(self.policy, sort_keys=True, ensure_ascii=False),
                "texts": json.dumps(self.texts, sort_keys=True, ensure_ascii=False)}

    def save(self, directory: Path) -> dict[str, str]:
        """Write :meth:`documents` into ``directory``; return name -> path (MLflow's ``artifacts``)."""
        paths = {}
        for name, text in self.documents().items():
            paths[name] = str(Path(directory) / f"{name}.json")
            Path(paths[name]).write_text(text, encoding="utf-8")
        return paths

    @classmethod
    def load(cls, paths: dict[str, str]) -> GradeModel:
        """The model :meth:`save` wrote (name -> path of each document)."""
        missing = [n for n in DOCUMENTS if n not in paths]
        if missing:
            raise CreditgradeError(f"model version without {', '.join(missing)}: registered before versions "
                                   f"were self-contained; retrain it")
        doc = {n: json.loads(Path(paths[n]).read_text(encoding="utf-8")) for n in DOCUMENTS if n != "estimator"}
        head = doc["model"]
        if head.get("format") != FORMAT:
            raise CreditgradeError(f"model.json is not a {FORMAT} document")
        estimator = from_json(head["kind"], Path(paths["estimator"]).read_text(encoding="utf-8"))
        return cls(head["segment"], head["kind"], estimator, head["features"], reference=head["reference"],
                   info=head["info"], policy=doc["policy"], texts=doc["texts"])


class GradePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc face of a :class:`GradeModel`: returns PD, score and grade, not class labels. Logged
    as code (``models/mlflow_model.py``); it reads its model from the version's artifacts."""

    def __init__(self, model: GradeModel | None = None):
        self.model = model

    def load_context(self, context) -> None:
        self.model = GradeModel.load(context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Grades of ``model_input`` (categorical features as the catalogue's categories or as text)."""
        text = [s for s in catalog(self.model.segment) if s.categorical and s.name in model_input
                and not isinstance(model_input[s.name].dtype, pd.CategoricalDtype)]
        out = self.model.grade(model_input.assign(**{s.name: pd.Categorical(model_input[s.name], categories=s.categories)
                                                     for s in text}))
        out["override"] = [o.feature if o is not None else None for o in out["override"]]
        return out.reset_index(drop=True)
