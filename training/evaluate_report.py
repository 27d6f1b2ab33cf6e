"""Markdown rendering of :func:`training.evaluate.evaluate` results (an MLflow artifact)."""


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(records: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in records]
    return "\n".join(lines)


def report_markdown(result: dict) -> str:
    """A readable Markdown report of an evaluation result dict."""
    hl = result["hosmer_lemeshow"]
    measures = ["n", "defaults", "default_rate", "mean_pd", "auc", "gini", "ks", "brier",
                "log_loss"]
    headline = [{"measure": k, "value": result[k]} for k in measures]
    parts = [
        "# Out-of-time evaluation",
        "## Discrimination and accuracy",
        _table(headline, ["measure", "value"]),
        "## Calibration",
        f"Hosmer-Lemeshow: statistic {_cell(hl['statistic'])}, {hl['dof']} degrees of freedom, "
        f"p-value {_cell(hl['p_value'])}.",
    ]
    if result["calibration_by_grade"] is not None:
        parts += ["### Binomial test per grade", _table(result["calibration_by_grade"], [
            "grade", "n", "defaults", "observed_rate", "mean_pd", "p_value", "calibrated"])]
    if result["default_rate_by_grade"] is not None:
        monotone = "monotone" if result["default_rate_monotone"] else "NOT monotone"
        parts += ["## Default rate by grade (best first)", f"Default rates are {monotone}.",
                  _table(result["default_rate_by_grade"], ["grade", "n", "defaults", "rate"])]
    parts += ["## Lift and gains (worst PD first)", _table(result["lift_gains"], [
        "bin", "n", "defaults", "rate", "mean_pd", "min_pd", "max_pd", "gains", "lift",
        "cumulative_lift"])]
    if result["psi_score"] is not None or result["psi_features"] is not None:
        parts.append("## Stability (PSI)")
    if result["psi_score"] is not None:
        parts.append(f"Score PSI: {_cell(result['psi_score'])} ({result['psi_score_status']}).")
    if result["psi_features"] is not None:
        parts.append(_table(result["psi_features"], ["feature", "kind", "psi", "status"]))
    return "\n\n".join(parts) + "\n"
