"""The AWS emulator of the embedded stack: ``moto`` in server mode (S3 and DynamoDB on one port).

Services reach it exactly as they would reach LocalStack or AWS: through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devstack._proc import ManagedProcess, free_port

# moto imports a lot on start; ~3 s here, 60 s covers a cold, loaded machine.
_START_TIMEOUT_S = 60.0

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class AwsEmulator:
    def __init__(self, work_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "aws",
            [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            work_dir / "aws.log",
        )

    @property
    def env(self) -> dict[str, str]:
        return dict(AWS_TEST_ENV, AWS_ENDPOINT_URL=self.endpoint_url)

    def start(self) -> AwsEmulator:
        self.process.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = _START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.running:
                raise RuntimeError(f"moto server exited:\n{self.process.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):  # noqa: S310
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"moto server not ready:\n{self.process.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.stop(timeout=5)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=AWS_TEST_ENV["AWS_REGION"],
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        )
