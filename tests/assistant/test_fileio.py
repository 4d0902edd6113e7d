from assistant.fileio import write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_part(tmp_path):
    target = tmp_path / "status.json"
    target.write_text("old", encoding="utf-8")
    write_atomic(target, "新的 text")
    assert target.read_text(encoding="utf-8") == "新的 text"
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
