# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
LAB     := $(VENV)/.lab-installed
export CREDITGRADE_HOME ?= $(HOME)/.creditgrade
export MLFLOW_DISABLE_TELEMETRY ?= true
export BENTOML_DO_NOT_TRACK ?= true
export DO_NOT_TRACK ?= true

.PHONY: demo test test-fast install sample clean lab mlflow-ui wheel bento image

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(LAB): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,notebook]'
	touch $(LAB)

# JupyterLab on notebooks/ (the store and MLflow registry of CREDITGRADE_HOME), http://127.0.0.1:8888
lab: $(LAB)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --port=8888

# The MLflow UI on the registry `train` writes to, http://127.0.0.1:5000
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --workers 1 \
	  --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CREDITGRADE_HOME)/mlflow.db}"

demo: $(STAMP)
	$(BIN)/creditgrade init-key
	$(BIN)/creditgrade ingest data/sample/subjects.parquet data/sample/records.parquet data/sample/outcomes.parquet
	$(BIN)/creditgrade summary
	for segment in sme household practitioner; do \
	  $(BIN)/creditgrade train --segment $$segment --oracle data/sample/oracle/true_pd.parquet || exit 1; \
	done
	@KEY=$$($(BIN)/creditgrade keys create --role bank --name demo-bank-$$(date +%s)); \
	 ID=$$($(BIN)/python -c "import pandas as pd; s=pd.read_parquet('data/sample/subjects.parquet'); print(s[s.segment=='sme'].subject_id.iloc[0])"); \
	 echo; echo "Serving on http://127.0.0.1:3000 — open it in a browser and sign in with the bank key"; \
	 echo "  $$KEY"; echo "then look up the SME $$ID. API documentation: http://127.0.0.1:3000/docs. Or, in another terminal:"; \
	 echo "  curl -s -X POST http://127.0.0.1:3000/grade -H 'X-API-Key: $$KEY' -H 'Content-Type: application/json' -d '{\"subject_id\":\"'$$ID'\",\"segment\":\"sme\",\"as_of\":\"2025-12-31\",\"purpose\":\"loan application\"}'"; echo; \
	 exec $(BIN)/creditgrade serve --host 127.0.0.1 --port 3000

sample: $(STAMP)
	$(BIN)/creditgrade generate --out data/sample --smes 2000 --households 1500 --practitioners 800 --seed 20250101

# two pytest-xdist workers, a test file each at a time (the machine's two cores; TESTS_WORKERS=0 runs serially)
TESTS_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TESTS_WORKERS)),,-n $(TESTS_WORKERS) --dist loadfile)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

# the same without the tests marked slow (notebooks, real server, browser, fuzz, wheel build)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

# The wheel installs one top-level package, `creditgrade` (its stages are creditgrade.features, .models, ...).
wheel: $(STAMP)
	rm -f dist/creditgrade-*.whl
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

# A bento (BentoML's deployable unit) from bentofile.yaml, in $$BENTOML_HOME (default ~/bentoml)
bento: wheel
	$(BIN)/bentoml build

# Its container image (needs Docker or another OCI builder)
image: bento
	$(BIN)/bentoml containerize creditgrade:latest

clean:
	rm -rf $(VENV)
