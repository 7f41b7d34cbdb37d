"""Schemathesis against the served OpenAPI: generated requests (examples, coverage, fuzzing
and stateful phases), zero 5xx and zero responses that break the documented schema, status
codes or content types. On top of what the schema describes, tests/schemathesis_hooks.py turns
some requests into deeply nested bodies and edge values (first and last calendar days and
instants, integers beyond 64 bits). Bounded examples; a real server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow
CHECKS = ",".join(
    (
        "not_a_server_error",
        "response_schema_conformance",
        "content_type_conformance",
        "status_code_conformance",
    )
)


# Longer than the suite's default: every operation is fuzzed (more with each new route), and
# the subprocess has its own 300 s bound.
@pytest.mark.timeout(330)
def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    hook_log = tmp_path / "hooks.log"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "HOLDSVC_ST_HOOK_LOG": str(hook_log),
    }
    with ServerProcess(redis_url, workers=1) as server:
        run = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{server.url}/schema/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--header",
                f"Authorization: Bearer {server.admin_token}",
                # A live change stream never ends; its JSON page is covered by tests/test_feed.py.
                "--exclude-path-regex",
                "/changes$",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        log = server.output()
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]
    assert "Traceback" not in log
    # The hooks really changed requests, in each way.
    changed = hook_log.read_text().split()
    for kind in ("nested", "calendar", "numbers"):
        assert changed.count(kind) >= 20, (kind, changed[:5])
