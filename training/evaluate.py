"""Out-of-time evaluation: discrimination, calibration, grade behaviour and stability.

Used to choose champions and shown to regulators (DESIGN.md "Models and grades"). Every function is
pure over numpy arrays / pandas objects. ``y`` is 1 for a default, 0 otherwise; ``pd`` is the
predicted probability of default; a ``score`` ranks subjects with higher meaning riskier (pass
``-points`` for a scorecard). :func:`evaluate` bundles everything into a JSON-serialisable dict and
``report_markdown`` (from :mod:`training.evaluate_report`, re-exported here) renders that dict.
"""

from typing import NamedTuple

import numpy as np
import pandas
from pandas.api import types as ptypes
from scipy import stats
from sklearn import metrics

from creditgrade.features import ids
from creditgrade.training.evaluate_report import report_markdown  # noqa: F401  (re-exported)

PSI_EPSILON = 1e-4
PSI_WATCH, PSI_SHIFT = 0.10, 0.25


def _labels(y) -> np.ndarray:
    """Validate and return the default flags as a float array."""
    y = np.asarray(y, dtype=float).ravel()
    if y.size == 0:
        raise ValueError("no subjects to evaluate")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must hold only 0 (no default) and 1 (default), without NaN")
    return y


def _arrays(y, score, *, probability=False, both_classes=False):
    """Validate and return ``(y, score)`` as float arrays."""
    y = _labels(y)
    score = np.asarray(score, dtype=float).ravel()
    if y.size != score.size:
        raise ValueError(f"y has {y.size} values but the predictions have {score.size}")
    if np.isnan(score).any():
        raise ValueError(f"predictions contain {int(np.isnan(score).sum())} NaN values")
    if probability and ((score < 0) | (score > 1)).any():
        raise ValueError("PDs must lie in [0, 1]")
    if both_classes and y.min() == y.max():
        raise ValueError("AUC needs both defaulted and non-defaulted subjects")
    return y, score


def auc(y, score) -> float:
    """Area under the ROC curve (sklearn)."""
    return float(metrics.roc_auc_score(*_arrays(y, score, both_classes=True)))


def gini(y, score) -> float:
    """Gini coefficient, 2 AUC - 1."""
    return 2 * auc(y, score) - 1


def ks(y, score) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the bad and good score CDFs."""
    fpr, tpr, _ = metrics.roc_curve(*_arrays(y, score, both_classes=True))
    return float(np.max(tpr - fpr))


def brier(y, pd) -> float:
    """Brier score, the mean squared error of the PDs."""
    return float(metrics.brier_score_loss(*_arrays(y, pd, probability=True)))


def log_loss(y, pd) -> float:
    """Log loss (cross-entropy) of the PDs."""
    return float(metrics.log_loss(*_arrays(y, pd, probability=True), labels=[0, 1]))


def _is_numeric(values: pandas.Series) -> bool:
    return ptypes.is_numeric_dtype(values) and not ptypes.is_bool_dtype(values)


def _numeric_bins(expected: np.ndarray, actual: np.ndarray, bins: int):
    """Bin codes for both samples: right-closed quantile bins of ``expected``, then a NaN bin."""
    known = expected[~np.isnan(expected)]
    if known.size and known.min() == known.max():  # constant: below, at and above the value
        codes = [np.sign(x - known[0]) + 1 for x in (expected, actual)]
        n_bins = 3
    else:
        quantiles = np.linspace(0, 1, bins + 1)[1:-1]
        cuts = np.unique(np.quantile(known, quantiles)) if known.size else np.empty(0)
        codes = [np.searchsorted(cuts, x, side="left") for x in (expected, actual)]
        n_bins = len(cuts) + 1
    for code, x in zip(codes, (expected, actual)):
        code[np.isnan(x)] = n_bins
    return [np.bincount(c.astype(int), minlength=n_bins + 1) for c in codes]


def _category_counts(expected: pandas.Series, actual: pandas.Series):
    """Counts per category (NaN as its own category) for both samples, aligned."""
    counts = pandas.DataFrame({
        name: s.astype(object).fillna("<NaN>").value_counts() for name, s in
        (("expected", expected), ("actual", actual))
    }).fillna(0)
    return counts["expected"].to_numpy(), counts["actual"].to_numpy()


def psi(expected, actual, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``.

    Numeric values fall in quantile bins of ``expected`` (tied quantiles merge; a constant
    ``expected`` gives the bins below, at and above its value); other values are binned per
    category. NaN is a bin of its own. Empty bins count as a share of ``PSI_EPSILON``.
    """
    expected, actual = pandas.Series(expected), pandas.Series(actual)
    if expected.empty or actual.empty:
        raise ValueError("PSI needs values in both samples")
    if _is_numeric(expected):
        e, a = _numeric_bins(expected.to_numpy(float, na_value=np.nan),
                            actual.to_numpy(float, na_value=np.nan), bins)
    else:
        e, a = _category_counts(expected, actual)
    e = np.maximum(e / e.sum(), PSI_EPSILON)
    a = np.maximum(a / a.sum(), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_status(value: float) -> str:
    """The usual reading of a PSI: stable below 0.10, shift from 0.25, watch in between."""
    return "stable" if value < PSI_WATCH else "watch" if value < PSI_SHIFT else "shift"


def psi_table(expected: pandas.DataFrame, actual: pandas.DataFrame,
              bins: int = 10) -> pandas.DataFrame:
    """PSI per column of ``expected`` (all must be in ``actual``): feature, kind, psi, status."""
    missing = [c for c in expected.columns if c not in actual.columns]
    if missing:
        raise ValueError(f"columns missing from the actual sample: {missing}")
    rows = []
    for col in expected.columns:
        value = psi(expected[col], actual[col], bins)
        kind = "numeric" if _is_numeric(expected[col]) else "categorical"
        rows.append({"feature": col, "kind": kind, "psi": value, "status": psi_status(value)})
    return pandas.DataFrame(rows, columns=["feature", "kind", "psi", "status"])


def _risk_groups(pd: np.ndarray, groups: int) -> list[np.ndarray]:
    """Indices of ``groups`` near-equal groups by PD, worst first (ties split in input order)."""
    order = np.argsort(-pd, kind="stable")
    return [g for g in np.array_split(order, groups) if g.size]


class HosmerLemeshow(NamedTuple):
    statistic: float
    dof: int
    p_value: float


def hosmer_lemeshow(y, pd, groups: int = 10, fitted: bool = False) -> HosmerLemeshow:
    """Hosmer-Lemeshow test over ``groups`` equal-size groups by PD.

    On out-of-time data the model was not fitted to the sample, so the chi-square has as many
    degrees of freedom as groups; ``fitted=True`` gives the in-sample groups - 2.
    """
    y, pd = _arrays(y, pd, probability=True)
    parts = _risk_groups(pd, groups)
    observed = np.array([y[g].sum() for g in parts])
    expected = np.array([pd[g].sum() for g in parts])
    size = np.array([g.size for g in parts])
    variance = np.maximum(expected * (1 - expected / size), 1e-12)
    statistic = float(np.sum((observed - expected) ** 2 / variance))
    dof = len(parts) - 2 if fitted else len(parts)
    if dof < 1:
        raise ValueError(f"too few groups for Hosmer-Lemeshow: {len(parts)}")
    return HosmerLemeshow(statistic, dof, float(stats.chi2.sf(statistic, dof)))


def _grade_frame(y, grade, pd=None) -> pandas.DataFrame:
    """Columns grade, y (and pd when given), validated."""
    if pd is None:
        columns = {"y": _labels(y)}
    else:
        columns = dict(zip(("y", "pd"), _arrays(y, pd, probability=True)))
    grade = pandas.Series(np.asarray(grade, dtype=object).ravel())
    if grade.size != columns["y"].size:
        raise ValueError(f"y has {columns['y'].size} values but grade has {grade.size}")
    if grade.isna().any():
        raise ValueError("grade has missing values; give unrated subjects a grade label such as NR")
    return pandas.DataFrame({"grade": grade, **columns})


def _grade_order(grades: pandas.Series, order) -> list:
    if order is None:
        return sorted(grades.unique())
    unknown = sorted(set(grades) - set(order))
    if unknown:
        raise ValueError(f"grades not in the given order: {unknown}")
    return list(order)


def default_rate_by_grade(y, grade, order=None) -> pandas.DataFrame:
    """Subjects, defaults and default rate per grade in ``order`` (best first; else sorted labels).

    Grades in ``order`` that nobody holds appear with n = 0 and a NaN rate.
    """
    frame = _grade_frame(y, grade)
    table = frame.groupby("grade")["y"].agg(n="size", defaults="sum")
    table = table.reindex(_grade_order(frame["grade"], order), fill_value=0)
    table["defaults"] = table["defaults"].astype(int)
    table["rate"] = table["defaults"] / table["n"].where(table["n"] > 0)
    return table.rename_axis("grade").reset_index()


def is_monotone(table: pandas.DataFrame, min_n: int = 30) -> bool:
    """Whether default rates never fall from best to worst (grades under ``min_n`` skipped)."""
    rates = table.loc[table["n"] >= min_n, "rate"].to_numpy()
    return bool(np.all(np.diff(rates) >= 0))


def binomial_test_by_grade(y, pd, grade, order=None, alpha: float = 0.05) -> pandas.DataFrame:
    """Per held grade: n, defaults, observed rate, mean PD, two-sided binomial p-value, calibrated.

    ``calibrated`` is True when the test does not reject the mean PD at level ``alpha``.
    """
    frame = _grade_frame(y, grade, pd)
    table = frame.groupby("grade").agg(n=("y", "size"), defaults=("y", "sum"),
                                       mean_pd=("pd", "mean"))
    held = [g for g in _grade_order(frame["grade"], order) if g in table.index]
    table = table.loc[held]
    table["defaults"] = table["defaults"].astype(int)
    table["observed_rate"] = table["defaults"] / table["n"]
    table["p_value"] = [stats.binomtest(int(k), int(n), p).pvalue
                        for k, n, p in zip(table["defaults"], table["n"], table["mean_pd"])]
    table["calibrated"] = table["p_value"] >= alpha
    columns = ["n", "defaults", "observed_rate", "mean_pd", "p_value", "calibrated"]
    return table[columns].rename_axis("grade").reset_index()


def lift_gains_table(y, pd, bins: int = 10) -> pandas.DataFrame:
    """Equal-size bins by PD, worst first: n, defaults, rate, mean PD, gains (cumulative share of
    defaults captured) and lift (bin rate / overall rate) with its cumulative version."""
    y, pd = _arrays(y, pd, probability=True, both_classes=True)
    parts = _risk_groups(pd, bins)
    table = pandas.DataFrame({
        "bin": np.arange(1, len(parts) + 1),
        "n": [g.size for g in parts],
        "defaults": [int(y[g].sum()) for g in parts],
        "min_pd": [float(pd[g].min()) for g in parts],
        "max_pd": [float(pd[g].max()) for g in parts],
        "mean_pd": [float(pd[g].mean()) for g in parts],
    })
    overall = y.mean()
    table["rate"] = table["defaults"] / table["n"]
    table["gains"] = table["defaults"].cumsum() / y.sum()
    table["lift"] = table["rate"] / overall
    table["cumulative_lift"] = table["defaults"].cumsum() / table["n"].cumsum() / overall
    return table


def _native(value):
    """A JSON-safe Python value: numpy scalars unwrapped, NaN and infinities as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _records(table: pandas.DataFrame) -> list[dict]:
    return [{str(k): _native(v) for k, v in row.items()} for row in table.to_dict("records")]


def evaluate(y, pd, grade=None, grade_order=None, features_train=None, features_test=None,
             score_train=None, score_test=None, *, bins: int = 10, min_n: int = 30,
             alpha: float = 0.05) -> dict:
    """All out-of-time measures as a JSON-serialisable dict.

    Grade tables need ``grade`` (and use ``grade_order``, best first); ``psi_features`` needs both
    feature frames and ``psi_score`` both score samples. Keys that cannot be computed are None.
    """
    y, pd = _arrays(y, pd, probability=True, both_classes=True)
    hl = hosmer_lemeshow(y, pd, groups=bins)
    result = {
        "n": int(y.size),
        "defaults": int(y.sum()),
        "default_rate": float(y.mean()),
        "mean_pd": float(pd.mean()),
        "auc": auc(y, pd),
        "gini": gini(y, pd),
        "ks": ks(y, pd),
        "brier": brier(y, pd),
        "log_loss": log_loss(y, pd),
        "hosmer_lemeshow": {k: _native(v) for k, v in hl._asdict().items()},
        "lift_gains": _records(lift_gains_table(y, pd, bins)),
        "calibration_by_grade": None,
        "default_rate_by_grade": None,
        "default_rate_monotone": None,
        "psi_score": None,
        "psi_score_status": None,
        "psi_features": None,
    }
    if grade is not None:
        rates = default_rate_by_grade(y, grade, grade_order)
        calibration = binomial_test_by_grade(y, pd, grade, grade_order, alpha)
        result["calibration_by_grade"] = _records(calibration)
        result["default_rate_by_grade"] = _records(rates)
        result["default_rate_monotone"] = is_monotone(rates, min_n)
    if score_train is not None and score_test is not None:
        result["psi_score"] = psi(score_train, score_test, bins)
        result["psi_score_status"] = psi_status(result["psi_score"])
    if features_train is not None and features_test is not None:
        result["psi_features"] = _records(psi_table(features_train, features_test, bins))
    return result


def read_oracle(path, segment: str) -> pandas.DataFrame:
    """The generator's true PD of a segment's outcome rows (``subject_key, as_of, true_pd``), keyed as stored."""
    oracle = pandas.read_parquet(path)
    oracle = oracle[oracle["segment"] == segment]
    return oracle.assign(subject_key=[ids.subject_key(segment, s) for s in oracle["subject_id"]],
                         as_of=pandas.to_datetime(oracle["as_of"]))[["subject_key", "as_of", "true_pd"]]
