"""The artifacts folder is swapped in whole or not at all, and its manifest catches missing or altered files."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from sentiment.artifacts import (
    check_writable,
    read_json,
    save_atomically,
    update_atomically,
    verify_manifest,
    write_json,
)
from sentiment.errors import SentimentError


def writer(files: dict[str, bytes]):
    def write(folder: Path) -> None:
        for name, payload in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(payload)
    return write


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


FILES = {"model.bin": b"\x00\x01weights", "sub/notes.txt": b"hello"}


def test_manifest_lists_every_file_with_its_sha256(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    assert out == (tmp_path / "artifacts").resolve()
    manifest = read_json(out / "manifest.json")
    assert set(manifest["files"]) == set(FILES)
    for name, payload in FILES.items():
        assert manifest["files"][name] == {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    assert verify_manifest(out) == manifest
    assert (out / "model.bin").stat().st_mode & 0o777 == 0o644
    assert out.stat().st_mode & 0o777 == 0o755


def test_verify_names_a_missing_file(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    (out / "sub" / "notes.txt").unlink()
    with pytest.raises(SentimentError, match=r"sub/notes\.txt is missing"):
        verify_manifest(out)


def test_verify_names_an_altered_file(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    (out / "model.bin").write_bytes(b"\x00\x01weightz")
    with pytest.raises(SentimentError, match=r"model\.bin does not match its sha256"):
        verify_manifest(out)


def test_verify_refuses_a_folder_without_manifest(tmp_path):
    with pytest.raises(SentimentError, match="no manifest.json"):
        verify_manifest(tmp_path)


def test_a_new_save_replaces_the_old_folder_whole(tmp_path):
    save_atomically(tmp_path / "artifacts", writer({"old_only.txt": b"old", "model.bin": b"old"}))
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    assert set(snapshot(out)) == {*FILES, "manifest.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".artifacts.lock", "artifacts"]  # no temporary or old copy


def test_a_failing_writer_leaves_the_previous_folder_untouched(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    before = snapshot(out)

    def half_then_crash(folder: Path) -> None:
        (folder / "model.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomically(tmp_path / "artifacts", half_then_crash)
    assert snapshot(out) == before
    verify_manifest(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".artifacts.lock", "artifacts"]


def test_a_failing_first_save_leaves_nothing(tmp_path):
    def crash(folder: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_atomically(tmp_path / "artifacts", crash)
    assert [p.name for p in tmp_path.iterdir()] == [".artifacts.lock"]  # the writers' lock, empty


def test_a_writer_killed_between_its_renames_leaves_the_old_folder_for_the_next(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    before = snapshot(out)
    out.rename(tmp_path / ".artifacts.old-4242")  # the first rename done, the second never made
    with pytest.raises(RuntimeError):
        save_atomically(out, writer_that_fails)
    assert snapshot(out) == before  # put back before the next write began
    assert sorted(p.name for p in tmp_path.iterdir()) == [".artifacts.lock", "artifacts"]


def writer_that_fails(folder: Path) -> None:
    raise RuntimeError("stop")


def test_two_writers_of_one_folder_take_turns_and_keep_both_changes(tmp_path):
    out = save_atomically(tmp_path / "artifacts", writer(FILES))
    inside, release = threading.Event(), threading.Event()

    def slow(folder: Path) -> None:
        (folder / "first.txt").write_bytes(b"1")
        inside.set()
        release.wait(10)

    first = threading.Thread(target=update_atomically, args=(out, slow))
    first.start()
    inside.wait(10)
    second = threading.Thread(target=update_atomically, args=(out, writer({"second.txt": b"2"})))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for the first writer's swap, not copying the folder before it
    release.set()
    first.join(10)
    second.join(10)
    assert {"first.txt", "second.txt"} <= set(snapshot(out))
    verify_manifest(out)


def test_check_writable_creates_missing_parents(tmp_path):
    assert check_writable(tmp_path / "a" / "b" / "out") == (tmp_path / "a" / "b" / "out").resolve()
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone


def test_unwritable_location_is_reported_before_any_work(tmp_path):
    # Tests run as root, where permissions do not stop writes; a regular file as "parent folder" does.
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(SentimentError, match="choose another --output-dir") as err:
        check_writable(tmp_path / "afile" / "out")
    assert "afile" in str(err.value)

    called = []
    with pytest.raises(SentimentError, match="--output-dir"):
        save_atomically(tmp_path / "afile" / "out", lambda folder: called.append(folder))
    assert called == []


def test_write_json_round_trips_and_leaves_no_temp_file(tmp_path):
    payload = {"a": [1, 2.5, None], "b": {"c": "é"}}
    write_json(tmp_path / "x.json", payload)
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == payload
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
