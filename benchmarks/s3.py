"""A real S3 API on 127.0.0.1 for the bench and the tests: moto's server, with the endpoint and
credentials in the environment, as users set them (Dask workers and subprocesses inherit them)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import s3fs
from moto.server import ThreadedMotoServer

_SETTINGS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def local_s3() -> Iterator[s3fs.S3FileSystem]:
    """A moto server of our own, and an S3 filesystem on it; the environment restored after."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's log of every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {**_SETTINGS, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield s3fs.S3FileSystem()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@contextlib.contextmanager
def requests_to_the_server() -> Iterator[list[str]]:
    """The requests moto's server answers meanwhile, as its log lines ("GET /bucket/key ...")."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    log = logging.getLogger("werkzeug")
    level, handlers, propagate = log.level, log.handlers, log.propagate
    log.setLevel(logging.INFO)
    log.handlers, log.propagate = [handler], False  # counted, not printed
    try:
        yield seen
    finally:
        log.setLevel(level)
        log.handlers, log.propagate = handlers, propagate
