"""The code MLflow logs for a registered version ("models from code"): a :class:`GradePyfunc` that reads
the version's JSON artifacts when loaded, so loading unpickles nothing."""
from mlflow.models import set_model

from creditgrade.models.bundle import GradePyfunc

set_model(GradePyfunc())
