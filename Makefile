# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export CREDITGRADE_HOME ?= $(HOME)/.creditgrade

.PHONY: demo test install sample clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/creditgrade init-key
	$(BIN)/creditgrade ingest data/sample/subjects.parquet data/sample/records.parquet data/sample/outcomes.parquet
	$(BIN)/creditgrade summary
	for segment in sme household practitioner; do \
	  $(BIN)/creditgrade train --segment $$segment --oracle data/sample/oracle/true_pd.parquet || exit 1; \
	done

sample: $(STAMP)
	$(BIN)/creditgrade generate --out data/sample --seed 20251231

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV)
