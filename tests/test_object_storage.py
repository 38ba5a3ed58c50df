"""Stores, images and annotations on S3: a real S3 API (moto's server on 127.0.0.1, started
here), reached through the same clients users run (s3fs, zarr's fsspec store)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import numpy as np
import pytest
import s3fs

from benchmarks.s3 import local_s3, requests_to_the_server
from benchmarks.synthetic import write_receipts
from ocr_targets import open_store
from ocr_targets.location import Location
from ocr_targets.store import StoreError, StoreSettings
from ocr_targets.store.writing import StoreLock
from precompute import job as batch
from precompute.cli import main
from tests import stopping
from tests.helpers import assert_same_arrays
from tests.s3_proxy import proxy


@pytest.fixture(scope="module")
def s3():
    """An S3 endpoint of our own; credentials and endpoint in the environment, as users set them
    (the Dask workers and subprocesses the tests start inherit them)."""
    with local_s3() as fs:
        yield fs


@pytest.fixture
def bucket(s3, request):
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    s3.mkdir(name)
    yield name
    s3.rm(name, recursive=True)


def upload(s3, images, annotations, bucket: str) -> tuple[str, str]:
    s3.put(str(images), f"{bucket}/data/images", recursive=True)
    s3.put_file(str(annotations), f"{bucket}/data/annotations.json")
    s3.invalidate_cache()
    return f"s3://{bucket}/data/images", f"s3://{bucket}/data/annotations.json"


def test_a_precompute_to_s3_on_a_local_cluster_equals_a_local_run(s3, bucket, dataset, tmp_path, capsys):
    images, annotations = dataset
    remote_images, remote_annotations = upload(s3, images, annotations, bucket)
    url = f"s3://{bucket}/val.zarr"
    arguments = ["precompute", "--images", remote_images, "--annotations", remote_annotations, "--out", url,
                 "--block", "4", "--quiet"]  # fmt: skip
    assert main([*arguments, "--dask", "local:2"]) == 0
    assert "12 computed" in capsys.readouterr().out
    local = tmp_path / "local.zarr"
    batch.run(batch.Job(images, annotations, local, jobs=2, progress=False, settings=StoreSettings(block=4)))
    assert_same_arrays(local, url, ignore=["file_stat"])  # the objects' mtimes are the server's
    s3.invalidate_cache()
    shards = [key for key in s3.find(f"{bucket}/val.zarr") if "/c/" in key]
    assert len(shards) <= 3 * 14  # 3 blocks: an object per array per block (done: one for all)
    assert not s3.exists(f"{bucket}/val.zarr/.lock") and not s3.exists(f"{bucket}/val.zarr/.staging")

    assert main([*arguments, "--jobs", "1"]) == 0  # a rerun from this machine reuses everything
    assert "0 computed, 12 reused" in capsys.readouterr().out
    store = open_store(url)
    assert store.location.scheme == "s3" and store[10].filename == "wildreceipt_1.jpeg"
    assert main(["verify", url, "--jobs", "1", "--quiet"]) == 0, capsys.readouterr().out


def test_the_lock_on_s3_keeps_one_writer_and_names_it(s3, bucket, dataset):
    images, annotations = dataset
    url = f"s3://{bucket}/val.zarr"
    lock = StoreLock(Location.of(url))
    holder = json.loads(s3.cat_file(f"{bucket}/val.zarr/.lock"))
    assert holder["pid"] == os.getpid() and holder["host"]
    with pytest.raises(StoreError, match=rf"locked by another precompute job \(process {os.getpid()} on "):
        StoreLock(Location.of(url))  # the create-if-absent write is refused by the server
    with pytest.raises(StoreError, match="locked by another precompute job"):
        batch.run(batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=4)))
    lock.release()
    assert not s3.exists(f"{bucket}/val.zarr/.lock")
    assert (
        batch.run(batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=4))).computed
        == 12
    )


def test_a_client_killed_with_sigkill_is_resumed_to_the_same_store(s3, bucket, tmp_path):
    images, annotations = write_receipts(tmp_path / "receipts", 40, seed=11)
    remote_images, remote_annotations = upload(s3, images, annotations, bucket)
    url = f"s3://{bucket}/killed.zarr"
    command = stopping.command(2, signal.SIGKILL, "precompute", "--images", remote_images, "--annotations",
                               remote_annotations, "--out", url, "--jobs", "1", "--block", "4", "--quiet")  # fmt: skip
    assert subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == -signal.SIGKILL
    s3.invalidate_cache()
    assert s3.exists(f"{bucket}/killed.zarr/.lock")  # a killed job cannot release it...
    done = int(open_store(url).done().sum())
    assert done == 8  # killed as its second block was marked done
    summary = batch.run(
        batch.Job(remote_images, remote_annotations, url, jobs=1, progress=False, settings=StoreSettings(block=4))
    )
    assert summary.reused >= done and summary.reused + summary.computed == 40  # ...its holder is gone: taken over
    clean = tmp_path / "clean.zarr"
    batch.run(batch.Job(images, annotations, clean, jobs=1, progress=False, settings=StoreSettings(block=4)))
    assert_same_arrays(clean, url, ignore=["file_stat"])


def test_a_block_rewritten_on_s3_replaces_its_objects_and_no_others(s3, bucket, dataset, tmp_path):
    images, annotations = dataset
    url = f"s3://{bucket}/val.zarr"
    batch.run(
        batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=1))
    )  # blocks 0 to 11
    document = json.loads(annotations.read_text())
    words = document["images"][list(document["images"])[1]]["words"]
    for word in words.values():
        word["points"] = [[x + 30, y] for x, y in word["points"]]
    annotations.write_text(json.dumps(document))
    summary = batch.run(batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=1)))
    assert (summary.computed, summary.reused) == (1, 11)  # block 1 rewritten, blocks 10 and 11 kept
    clean = tmp_path / "clean.zarr"
    batch.run(batch.Job(images, annotations, clean, jobs=1, progress=False, settings=StoreSettings(block=1)))
    assert_same_arrays(clean, url, ignore=["file_stat"])


def test_a_batch_from_s3_fetches_a_shard_index_once_per_process(s3, bucket, made_store):
    images, annotations, local = made_store
    url = f"s3://{bucket}/val.zarr"
    batch.run(batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=4)))
    store, expected = open_store(url), open_store(local)
    indices = [9, 0, 5, 2]  # three shards of binary_maps: 2 and 0 share one
    out = [store._empty_maps() for _ in indices]
    for _ in range(2):
        with requests_to_the_server() as seen:
            store.read_maps_into(indices, out)
        fetched = [line for line in seen if "GET /" in line and "/binary_maps/c/" in line]
        for index, maps in zip(indices, out, strict=True):
            for name, values in maps.items():
                np.testing.assert_array_equal(values, getattr(expected[index], name), err_msg=name)
    assert len(fetched) == len(indices)  # the second time, each entry's chunk alone


def test_verify_on_s3_finds_a_damaged_object_and_a_missing_one(s3, bucket, dataset, capsys):
    images, annotations = dataset
    url = f"s3://{bucket}/val.zarr"
    batch.run(batch.Job(images, annotations, url, jobs=1, progress=False, settings=StoreSettings(block=4)))
    damaged = f"{bucket}/val.zarr/thresh_map/c/0/0/0"
    data = bytearray(s3.cat_file(damaged))
    data[len(data) // 3] ^= 0x20  # inside the first entries' chunks
    s3.pipe_file(damaged, bytes(data))
    s3.rm_file(f"{bucket}/val.zarr/matrices/c/2/0/0/0")
    status = main(["verify", url, "--images", str(images), "--annotations", str(annotations), "--jobs", "1", "--quiet"])
    output = capsys.readouterr().out
    assert status == 1
    assert "damaged or unreadable" in output
    assert f"objects missing: {url}/matrices/c/2/0/0/0" in output
    assert next(line for line in output.splitlines() if line.startswith("icdar2015_img_6.jpg ")).endswith("ok")


def test_s3_without_credentials_is_one_clear_error(monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s3fs.S3FileSystem.clear_instance_cache()
    assert main(["info", "s3://somewhere/val.zarr"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "object storage: Unable to locate credentials; set AWS_ACCESS_KEY_ID" in err
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("gone", ("Connection was closed",)),
        (503, ("Service Unavailable", "Please reduce your request rate")),  # s3fs's words, or the server's
        (403, ("access refused; check the credentials",)),
    ],
)
def test_object_storage_going_away_stops_the_run_in_one_line_and_a_plain_rerun_completes(
    s3, bucket, tmp_path, monkeypatch, capsys, fault, said
):
    """The endpoint stops answering right after the second block is marked done (it hangs up on
    every request, answers 503, or refuses the credentials): one line says what happened and how
    far the job got, and the same command completes the store once the endpoint is back."""
    images, annotations = write_receipts(tmp_path / "receipts", 16, seed=12)
    url = f"s3://{bucket}/away.zarr"
    with proxy(os.environ["AWS_ENDPOINT_URL"]) as front:
        arguments = ["precompute", "--images", str(images), "--annotations", str(annotations), "--out", url,
                     "--jobs", "1", "--block", "4", "--quiet", "--storage-option", f"endpoint_url={front.url}",
                     "--storage-option", "config_kwargs.retries.max_attempts=2"]  # fmt: skip
        stopping.stop_after(2, lambda: setattr(front, "refuse", fault), monkeypatch.setattr)
        assert main(arguments) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert any(words in err for words in said), err
        assert "8 of 16 images are done; rerun the same command to finish the job" in err, err
        front.refuse = None
        monkeypatch.undo()
        s3fs.S3FileSystem.clear_instance_cache()  # as a new process would start
        assert main(arguments) == 0
        assert "8 computed, 8 reused" in capsys.readouterr().out
    clean = tmp_path / "clean.zarr"
    batch.run(batch.Job(images, annotations, clean, jobs=1, progress=False, settings=StoreSettings(block=4)))
    assert_same_arrays(clean, url)
