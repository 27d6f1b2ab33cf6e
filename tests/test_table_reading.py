"""Generic mode on files as analysts have them: GBK text, decimal commas, numbers written as text, missing
markers, dates, empty and constant columns (issue 18). Each column is read on its own values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgrade.features.errors import CreditgradeError
from creditgrade.training.table_columns import binary_target, choose_columns, config, feature_frame
from creditgrade.training.table_read import read_table


def loans(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": np.round(np.exp(rng.normal(10, 1, n)), 2), "x": rng.normal(size=n),
                         "grade": rng.choice(list("ABC"), n), "y": (rng.random(n) < 0.3).astype(int)})


def read(df: pd.DataFrame, path, target="y", **csv):
    df.to_csv(path, index=False, **csv)
    got = read_table(path)
    cols = choose_columns(got, target)
    return got, cols, feature_frame(got, cols)


def test_gbk_text_with_chinese_names_and_values_is_read_end_to_end(tmp_path):
    df = loans().rename(columns={"income": "收入", "grade": "等级", "y": "违约"})
    df["行业"] = np.resize(["制造业", "批发零售", "建筑业"], len(df))
    got, cols, X = read(df, tmp_path / "gbk.csv", target="违约", encoding="gbk", sep=";")  # sniffed in GBK
    assert list(got.columns) == list(df.columns) and cols.features == ["收入", "x", "等级", "行业"]
    assert set(X["行业"].cat.categories) == {"制造业", "批发零售", "建筑业"} and X["收入"].tolist() == df["收入"].tolist()
    assert binary_target(got, "违约").tolist() == df["违约"].tolist() and got.attrs["encoding"] == "gb18030"
    got, _, _ = read(df, tmp_path / "bom.csv", target="违约", encoding="utf-8-sig")
    assert list(got.columns) == list(df.columns) and got.attrs["encoding"] == "utf-8-sig"


def test_text_in_no_encoding_tried_is_a_clear_error_naming_them(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes(b"a,b\n\x81,1\n")  # no character in cp1252 either
    with pytest.raises(CreditgradeError, match=r"odd.csv is not text in any of the encodings tried \(utf-8-sig, "
                                               r"gb18030, cp1252\).*请另存为 UTF-8"):
        read_table(path)


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    df = loans()
    got, cols, X = read(df, tmp_path / "euro.csv", sep=";", decimal=",")
    assert got.attrs["decimal"] == "," and cols.features == ["income", "x", "grade"]
    assert np.allclose(X["income"], df["income"]) and np.allclose(X["x"], df["x"])
    assert "decimal comma / 小数逗号" in cols.read["x"]
    df.to_csv(tmp_path / "dots.csv", index=False, sep=";")
    got = read_table(tmp_path / "dots.csv")
    assert got.attrs["decimal"] == "." and got["x"].dtype == float  # a ;-file of decimal points stays one


def test_percent_thousands_and_currency_are_read_as_numbers_with_a_note(tmp_path):
    df = loans().assign(rate=lambda d: [f" {v:.1f}%" for v in d["x"] + 12],
                        amt=lambda d: [f"{v:,.0f}" for v in d["income"] * 10],
                        fee=lambda d: [("$", "¥", "￥")[i % 3] + f"{v:,.2f}" for i, v in enumerate(d["income"])],
                        term=lambda d: np.resize([" 36 months", " 60 months"], len(d)))
    _, cols, X = read(df, tmp_path / "lc.csv")
    assert cols.features == ["income", "x", "grade", "rate", "amt", "fee", "term"] and not cols.excluded
    assert np.allclose(X["rate"], np.round(df["x"] + 12, 1)) and np.allclose(X["fee"], df["income"])
    assert np.allclose(X["amt"], np.round(df["income"] * 10))
    assert "'%'" in cols.read["rate"] and "','" in cols.read["amt"] and "'¥'" in cols.read["fee"]
    assert "read as plain ones" in cols.read["fee"]  # the full-width '￥' is the yen sign
    assert X["term"].dtype == "category" and "term" not in cols.read  # words stay categories


def test_chinese_units_full_width_digits_and_a_typographic_minus_are_numbers(tmp_path):
    df = loans(60).assign(amount=lambda d: np.resize(["12万", "3.5万元", "8000", "１２０", "1.2亿"], len(d)),
                          change=lambda d: np.resize(["−5", "3", "－2.5", "4％"], len(d)),
                          city=lambda d: np.resize(["万州", "上海"], len(d)))
    _, cols, X = read(df, tmp_path / "cn.csv", encoding="gb18030")
    assert X["amount"].iloc[:5].tolist() == [120_000, 35_000, 8_000, 120, 120_000_000]
    assert X["change"].iloc[:4].tolist() == [-5, 3, -2.5, 4]
    assert "单位已换算 '万' '亿'" in cols.read["amount"] and "全角或排版字符按半角读取" in cols.read["change"]
    assert X["city"].dtype == "category" and "city" not in cols.read  # a place named with 万 stays a word


def test_missing_markers_in_a_numeric_column_are_missing_never_in_the_target_or_words(tmp_path):
    assert {"?", "NA", "N/A", "n/a", "null", "NULL", "None", "-", "--", "", "#N/A", "nan", "."} <= set(
        config()["reading"]["missing"])
    df = loans().astype({"income": object})
    df.loc[::10, "income"], df.loc[1::10, "income"], df.loc[2::10, "income"] = "?", " - ", "#N/A"
    df["y"] = np.where(df["y"] == 1, "+", "-")  # UCI crx: '+' / '-' classes
    df["kind"] = np.resize(["-", "a", "b"], len(df))  # '-' here is a category
    got, cols, X = read(df, tmp_path / "crx.csv")
    assert X["income"].isna().sum() == 36 and X["income"].dtype == float
    assert "'?' 12" in cols.read["income"] and "'-' 12" in cols.read["income"]
    assert set(X["kind"].cat.categories) == {"-", "a", "b"}
    assert binary_target(got, "y", bad="+").sum() == (df["y"] == "+").sum()


def test_dates_empty_and_constant_columns_are_left_out_with_their_reasons(tmp_path):
    df = loans().assign(opened=lambda d: np.resize(["2015-01-01", "2015-01-01", "2016-03-31"], len(d)),
                        us=lambda d: pd.date_range("2015-01-01", periods=len(d)).strftime("%m/%d/%Y"),
                        empty=np.nan, marks="?", one=1, flag=lambda d: np.where(d.index % 2, "Y", None))
    _, cols, X = read(df, tmp_path / "d.csv")
    why = cols.excluded
    assert "a date (%Y-%m-%d): not a feature; derive ages from it yourself / 日期" in why["opened"]  # values repeat
    assert "a date (%m/%d/%Y)" in why["us"]
    assert why["empty"] == why["marks"] == "no values at all / 没有任何取值"
    assert why["one"] == "the same value in every row / 每行取值相同"
    assert cols.features == ["income", "x", "grade", "flag"]  # one value or missing: that says something


def test_cross_validation_reports_what_was_read_as_numbers(tmp_path):
    from creditgrade.training.table import cross_validate

    df = loans(120).assign(rate=lambda d: [f"{v:.2f}%" for v in d["x"] + 12])
    df.to_csv(tmp_path / "t.csv", index=False)
    result = cross_validate(tmp_path / "t.csv", "y", folds=2, budget=0.0, families=("scorecard",))
    assert result.read == {"rate": "removed / 去掉 '%'"} and "rate" in result.features


def test_lists_records_and_bytes_in_parquet_are_left_out_with_their_reasons(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 40
    pq.write_table(pa.table({"x": np.arange(n) * 0.5, "lst": [[1, 2]] * n, "rec": [{"a": i % 3} for i in range(n)],
                             "raw": [bytes([250 + i % 4, 255]) for i in range(n)], "y": np.arange(n) % 2}),
                   tmp_path / "nested.parquet")
    got = read_table(tmp_path / "nested.parquet")
    cols = choose_columns(got, "y")
    assert cols.features == ["x"] and list(feature_frame(got, cols).columns) == ["x"]
    assert cols.excluded["lst"] == cols.excluded["rec"] == config()["reasons"]["nested"]
    assert cols.excluded["raw"] == "binary values (bytes): not a feature / 二进制取值（字节）：不作为特征"


def test_text_numbers_stay_text_when_a_float_would_lose_them(tmp_path):
    df = loans(60).assign(big=lambda d: [str(2**70 + i) for i in range(len(d))],  # distinct, one float
                          card=lambda d: np.resize(["98765432109876543210", "12345678901234567890"], len(d)),
                          code=lambda d: np.resize(["$7", "07", "7"], len(d)),  # one number, three texts
                          long=lambda d: [repr(v) for v in d["x"] / 3])  # 16-17 digits written back the same
    _, cols, X = read(df, tmp_path / "big.csv")
    assert cols.excluded["big"] == config()["reasons"]["identifier"].format(why="text")
    assert set(X["card"].cat.categories) == {"98765432109876543210", "12345678901234567890"}  # distinct floats
    assert set(X["code"].cat.categories) == {"$7", "07", "7"} and "code" not in cols.read
    assert X["long"].tolist() == (df["x"] / 3).tolist()


def test_accounting_parentheses_are_negative_numbers(tmp_path):
    df = loans(60).assign(bal=lambda d: np.resize(["(1,200)", "3,400.50", "($75.00)", "(-0.5)", "12"], len(d)))
    _, cols, X = read(df, tmp_path / "paren.csv")
    assert X["bal"].tolist()[:5] == [-1200, 3400.5, -75, -0.5, 12]  # "(-0.5)": both marks say negative
    assert cols.read["bal"] == "(x) read as -x / 括号 (x) 读作 -x; removed / 去掉 '$' ','"


def test_a_target_or_column_named_in_another_case_is_an_error_saying_which_was_meant():
    df = loans(20).rename(columns={"y": "Y"})
    with pytest.raises(CreditgradeError, match=r"target column 'y' \(did you mean 'Y'\? / 是否指 'Y'？\) not in"):
        binary_target(df, "y")
    with pytest.raises(CreditgradeError, match=r"--exclude: column\(s\) incme \(did you mean 'income'\?"):
        choose_columns(df, "Y", exclude=["incme"])
    with pytest.raises(CreditgradeError, match=r"target column 'zzz' not in the table"):
        binary_target(df, "zzz")


def test_western_text_in_cp1252_is_not_read_as_chinese(tmp_path):
    df = loans(60).assign(city=lambda d: np.resize(["Zürich", "Málaga", "Kraków", "café 1"], len(d)))
    got, cols, _ = read(df, tmp_path / "cp1252.csv", encoding="cp1252")
    assert got["city"].tolist() == df["city"].tolist() and "city" in cols.features
    df["city"] = np.resize(["Zürich", "Málaga", "Kraków"], len(df))  # decodes as GB18030 without an error
    got, _, _ = read(df, tmp_path / "cp1252b.csv", encoding="cp1252")
    assert got["city"].tolist() == df["city"].tolist() and got.attrs["encoding"] == "cp1252"
    df["city"] = np.resize(["朱镕基", "北京", "上海", "深圳"], len(df))  # 镕 is GBK, not GB2312
    got, _, _ = read(df, tmp_path / "gbk.csv", encoding="gbk")
    assert got["city"].tolist() == df["city"].tolist()


def test_a_target_with_more_than_two_values_shows_them_but_never_long_numbers():
    df = pd.DataFrame({"x": range(6), "y": ["0", "1", "0", "1", "\x00", "1"]})  # a NUL byte in one row
    with pytest.raises(CreditgradeError, match=r"not binary: 3 distinct values \('1' x3, '0' x2, '\\x00' x1\)"):
        binary_target(df, "y")
    ids = pd.DataFrame({"x": range(3), "y": ["110101199003077777", "110101199003078888", "0"]})
    with pytest.raises(CreditgradeError) as err:
        binary_target(ids, "y")
    assert "3 distinct values (<hidden: long number" in str(err.value) and "1101" not in str(err.value)
    header = pd.DataFrame({"x": range(5), "y": ["default payment next month (1 = yes, 0 = no)", "0", "1", "0", "1"]})
    with pytest.raises(CreditgradeError, match=r"'default payment next month \(1 ...' x1\); the first row's value "
                                               r"\('default payment next month \(1 ...' x1\) occurs nowhere else: a "
                                               r"second header line\? Delete it"):
        binary_target(header, "y")


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".zip"])
def test_compressed_text_is_read_as_the_text_inside(tmp_path, suffix):
    df = loans()
    path = tmp_path / f"loans{suffix}"
    df.to_csv(path, index=False, sep=";", encoding="gbk")  # pandas compresses by the suffix (a zip of one file)
    got = read_table(path)
    assert list(got.columns) == list(df.columns) and got["income"].tolist() == df["income"].tolist()
    assert got.attrs["encoding"] == "utf-8-sig"  # ASCII text: the first encoding tried reads it


def test_a_zip_of_several_files_or_a_broken_archive_is_a_clear_error(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "x,y\n1,0\n")
        archive.writestr("b.csv", "x,y\n1,0\n")
    with pytest.raises(CreditgradeError, match=r"two.zip holds 2 files"):
        read_table(tmp_path / "two.zip")
    (tmp_path / "cut.csv.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    with pytest.raises(CreditgradeError, match=r"cut.csv.gz cannot be read as text"):
        read_table(tmp_path / "cut.csv.gz")
    loans().to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.parquet.gz").write_bytes((tmp_path / "t.parquet").read_bytes())
    with pytest.raises(CreditgradeError, match=r"only text and ARFF tables are read compressed"):
        read_table(tmp_path / "t.parquet.gz")


def test_a_header_naming_a_column_twice_is_refused_not_renamed(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("x,x,,y\n1,2,3,0\n4,5,6,1\n")
    with pytest.raises(CreditgradeError, match=r"column name\(s\) x appear more than once"):
        read_table(path)
    path.write_text("x,z,,y\n1,2,3,0\n4,5,6,1\n")
    assert list(read_table(path).columns) == ["x", "z", "Unnamed: 2", "y"]  # an empty name keeps pandas' name


def test_a_workbook_of_several_sheets_reads_its_largest_and_says_which(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["read me first"]}).to_excel(book, sheet_name="About", index=False)
        loans().to_excel(book, sheet_name="Data", index=False)
    got = read_table(path)
    assert list(got.columns) == list(loans().columns) and len(got) == 120
    assert got.attrs["sheet"].startswith("Data (the largest of About, Data")
