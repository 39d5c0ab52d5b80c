"""Every loader under fuzzed input (hypothesis, 1,000 examples each): a result whose items are well
formed, or a ValueError that names the file — never a KeyError, TypeError, JSONDecodeError, an
image from outside the root, or a null turned into the string "None"."""

import json
import math
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fieldnotes.vlm.formats import load_pmc_oa, load_slake, load_vqa_rad, read_dicom

FUZZ = settings(max_examples=1000, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip

IMAGE_NAMES = [
    "a.png",
    "bad.png",
    "link.png",
    "missing.png",
    "../outside.png",
    "/etc/passwd",
    "",
    "sub/../a.png",
]
values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["OPEN", "closed", "en", "zh", "CT", "MRI", "X-Ray", "test_para",
                                          "freeform", "yes", "None", "？"]),
    st.sampled_from(IMAGE_NAMES), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.none(), max_size=1),
)  # fmt: skip


def rows(keys: list[str], valid: dict):
    """Rows mostly close to valid (each field kept, replaced by a fuzzed value, or dropped) plus junk."""
    field = st.one_of(st.just("keep"), st.just("drop"), values)

    @st.composite
    def row(draw):
        out = {}
        for k in keys:
            choice = draw(field)
            if choice == "keep":
                out[k] = valid[k]
            elif choice != "drop":
                out[k] = choice
        return out

    return st.lists(st.one_of(row(), row(), row(), values), max_size=4)


def documents(keys, valid):
    """A JSON text: a fuzzed list of rows, another JSON value, or a truncated / non-UTF-8 file."""
    as_json = st.one_of(rows(keys, valid), values).map(
        lambda v: json.dumps(v, ensure_ascii=False).encode()
    )
    broken = st.one_of(as_json.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n])),
                       st.binary(max_size=12), st.just(b"\xff\xfe[]"))  # fmt: skip
    return st.one_of(as_json, as_json, broken)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    Image.fromarray(np.full((6, 6), 77, np.uint8)).save(outside)
    for folder in (base / "slake" / "imgs", base / "images"):
        folder.mkdir(parents=True)
        Image.fromarray(np.full((6, 6), 200, np.uint8)).save(folder / "a.png")
        (folder / "bad.png").write_bytes((folder / "a.png").read_bytes()[:40])  # truncated PNG
        os.symlink(outside, folder / "link.png")  # a link out of the root
    return base


def _check(loaded, text: bytes):
    for it in loaded.items:
        assert 0 <= it.image < len(loaded.names) and it.answer_type in ("open", "closed")
        for v in (it.question, it.answer, it.question_type, it.modality):
            assert isinstance(v, str) and v
        if b"none" not in text.lower():
            assert "none" not in (it.answer, it.question_type, it.modality)
    assert loaded.images.shape[0] == len(loaded.names)
    assert not {"link.png", "../outside.png", "/etc/passwd", "bad.png"} & set(loaded.names)


def _named_error(call, path):
    try:
        return call()
    except ValueError as e:
        assert str(path) in str(e), f"error does not name {path}: {e}"
        return None


SLAKE_ROW = {"img_name": "a.png", "question": "is it?", "answer": "Yes", "q_lang": "en", "answer_type": "CLOSED",
             "content_type": "Organ", "modality": "CT"}  # fmt: skip


@FUZZ
@given(documents(list(SLAKE_ROW), SLAKE_ROW))
def test_slake_fuzz(root, text):
    path = root / "slake" / "test.json"
    path.write_bytes(text)
    loaded = _named_error(lambda: load_slake(root / "slake", "test", size=4), path)
    if loaded is not None:
        _check(loaded, text)


VQA_RAD_ROW = {"image_name": "a.png", "question": "is it?", "answer": 2, "answer_type": "OPEN",
               "question_type": "COUNT", "phrase_type": "test_para"}  # fmt: skip


@FUZZ
@given(documents(list(VQA_RAD_ROW), VQA_RAD_ROW))
def test_vqa_rad_fuzz(root, text):
    path = root / "vqa_rad.json"
    path.write_bytes(text)
    loaded = _named_error(lambda: load_vqa_rad(path, root / "images", size=4), path)
    if loaded is not None:
        _check(loaded, text)


PMC_ROW = {"image": "a.png", "caption": "Axial CT."}
pmc_lines = st.lists(st.one_of(documents(list(PMC_ROW), PMC_ROW), rows(list(PMC_ROW), PMC_ROW).flatmap(
    lambda rs: st.just(json.dumps(rs[0] if rs else {}).encode()))), max_size=4)  # fmt: skip


@FUZZ
@given(pmc_lines)
def test_pmc_oa_fuzz(root, lines):
    path = root / "pmc.jsonl"
    text = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    path.write_bytes(text)
    out = _named_error(lambda: load_pmc_oa(path, root / "images", size=4), path)
    if out is not None:
        images, captions, _ = out
        assert images.shape[0] == len(captions) and all(isinstance(c, str) and c for c in captions)


@pytest.fixture(scope="module")
def dicom_bytes():
    """pydicom's CT_small.dcm cropped to 8 x 8 pixels (every header field kept), so 1,000 reads stay fast."""
    import io

    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[:8, :8]).tobytes()
    ds.Rows = ds.Columns = 8
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


attributes = st.fixed_dictionaries({}, optional={
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", ""]),
    "WindowCenter": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("abc")),
    "WindowWidth": st.one_of(st.floats(-10, 1e4), st.just(math.nan), st.just("")),
    "RescaleSlope": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just("x")),
    "NumberOfFrames": st.sampled_from([0, 1, 2, "two"]),
    "Modality": st.sampled_from(["CT", "MR", "", "OT"]),
    "PixelData": st.just(None),
})  # fmt: skip


@FUZZ
@given(st.one_of(attributes, st.tuples(st.integers(0, 3000), st.binary(max_size=4), st.booleans())))
def test_dicom_fuzz(root, dicom_bytes, change):
    import io

    import pydicom

    path = root / "fuzz.dcm"
    if isinstance(change, dict):
        ds = pydicom.dcmread(io.BytesIO(dicom_bytes))
        for key, value in change.items():
            if value is None:
                del ds[key]
            else:
                try:
                    setattr(ds, key, value)
                except (ValueError, TypeError, OverflowError):
                    return  # pydicom itself refuses to store this value
        try:
            ds.save_as(path)
        except (ValueError, TypeError, OverflowError, struct.error):
            return  # not writable as DICOM: nothing to read
    else:
        at, junk, truncate = change
        data = (
            dicom_bytes[:at]
            if truncate
            else dicom_bytes[:at] + junk + dicom_bytes[at + len(junk) :]
        )
        path.write_bytes(data)
    d = _named_error(lambda: read_dicom(path), path)
    if d is not None:
        assert d.image.ndim == 2 and np.isfinite(d.image).all()
        assert 0.0 <= float(d.image.min()) and float(d.image.max()) <= 1.0
        assert d.window is None or all(math.isfinite(v) for v in d.window)
