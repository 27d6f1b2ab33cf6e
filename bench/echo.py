"""A BentoML service answering one constant grade through the same ``@bentoml.api`` machinery and the same
configuration as ``serving.service`` (middlewares, threads, logging), with no gate, store or model:
bench/serve.py's echo rows, the cost of BentoML's HTTP layer alone. The answer is the JSON file named by
``BENCH_ECHO_ANSWER`` (bench/serve.py writes one ``/grade`` answer there).

    bentoml serve bench.echo:Echo
"""
from __future__ import annotations

import os
from pathlib import Path

import bentoml

from creditgrade.serving.schemas import Grade, GradeRequest
from creditgrade.serving.service import CONFIG


@bentoml.service(name="echo", **CONFIG)
class Echo:
    def __init__(self):
        self.answer = Grade.model_validate_json(Path(os.environ["BENCH_ECHO_ANSWER"]).read_text())

    @bentoml.api
    def grade(self, req: GradeRequest, /) -> Grade:
        """The constant answer, whatever subject is asked."""
        return self.answer
