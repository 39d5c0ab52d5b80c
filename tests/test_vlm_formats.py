"""Real-format loaders on small fixture files written in each format."""

import json

import numpy as np
import pytest
from PIL import Image

from fieldnotes.vlm.formats import (
    load_pmc_oa,
    load_slake,
    load_vqa_rad,
    read_dicom,
    safe_path,
    window,
)


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((20, 30), value, dtype=np.uint8)).save(path)


@pytest.fixture
def slake(tmp_path):
    root = tmp_path / "slake"
    _png(root / "imgs" / "xmlab1" / "source.jpg", 255)
    _png(root / "imgs" / "xmlab2" / "source.jpg", 0)
    rows = [
        {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Which organ is abnormal?", "answer": "Liver",
         "q_lang": "en", "answer_type": "OPEN", "content_type": "Organ", "modality": "CT", "qid": 1},
        {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Is this normal?", "answer": "No",
         "q_lang": "en", "answer_type": "CLOSED", "content_type": "Abnormality", "modality": "CT", "qid": 2},
        {"img_id": 2, "img_name": "xmlab2/source.jpg", "question": "这是什么?", "answer": "肝",
         "q_lang": "zh", "answer_type": "OPEN", "content_type": "Organ", "modality": "MRI", "qid": 3},
        {"img_id": 2, "img_name": "xmlab2/source.jpg", "question": "What modality is used?", "answer": "MRI",
         "q_lang": "en", "answer_type": "OPEN", "content_type": "Modality", "modality": "MRI", "qid": 4},
    ]  # fmt: skip
    (root / "test.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return root


def test_slake_loads_english_questions_and_counts_dropped(slake):
    d = load_slake(slake, "test", size=16)
    assert d.images.shape == (2, 1, 16, 16)
    assert [it.answer for it in d.items] == ["liver", "no", "mri"]
    assert [it.answer_type for it in d.items] == ["open", "closed", "open"]
    assert [it.modality for it in d.items] == ["ct", "ct", "mri"]
    assert d.dropped == {"other language": 1}
    assert d.images[d.items[0].image].mean() == pytest.approx(1.0)
    assert d.images[d.items[2].image].mean() == pytest.approx(0.0)


def test_escaping_path_rejected_and_missing_image_named(slake, tmp_path):
    rows = json.loads((slake / "test.json").read_text())
    rows[0]["img_name"] = "../../secret.png"
    (slake / "test.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="escapes"):
        load_slake(slake)
    rows[0]["img_name"] = "xmlab9/missing.jpg"
    (slake / "test.json").write_text(json.dumps(rows))
    with pytest.raises(ValueError, match=r"test.json, row 0, field 'img_name'.*missing.jpg"):
        load_slake(slake)
    with pytest.raises(ValueError, match="escapes"):
        safe_path(tmp_path, "/etc/passwd")


def test_vqa_rad(tmp_path):
    _png(tmp_path / "img" / "synpic54610.jpg", 128)
    rows = [
        {"qid": 1, "image_name": "synpic54610.jpg", "image_organ": "HEAD", "answer": "Yes", "answer_type": "CLOSED",
         "question_type": "PRES", "question": "Is there a mass?", "phrase_type": "freeform"},
        {"qid": 2, "image_name": "synpic54610.jpg", "image_organ": "HEAD", "answer": "", "answer_type": "OPEN",
         "question_type": "POS", "question": "Where?", "phrase_type": "freeform"},
        {"qid": 3, "image_name": "synpic54610.jpg", "image_organ": "HEAD", "answer": "Left frontal lobe",
         "answer_type": "OPEN", "question_type": "POS", "question": "Where is the mass?", "phrase_type": "para"},
    ]  # fmt: skip
    rows.append({"qid": 4, "image_name": "synpic54610.jpg", "image_organ": "HEAD", "answer": 2,
                 "answer_type": "OPEN", "question_type": "COUNT", "question": "How many?", "phrase_type": "test_para"})  # fmt: skip
    p = tmp_path / "VQA_RAD Dataset Public.json"
    p.write_text(json.dumps(rows))
    d = load_vqa_rad(p, tmp_path / "img", size=8, split="train")
    assert [(it.answer, it.answer_type, it.question_type) for it in d.items] == [
        ("yes", "closed", "pres"), ("left frontal lobe", "open", "pos")]  # fmt: skip
    assert d.dropped == {"other split": 1, "empty answer": 1} and d.images.shape == (1, 1, 8, 8)
    assert {it.modality for it in d.items} == {"unknown"}  # image_organ is an organ, not a modality
    test = load_vqa_rad(
        p, tmp_path / "img", size=8
    )  # the official test split: test_freeform, test_para
    assert [(it.answer, it.question) for it in test.items] == [("2", "How many?")]
    assert test.dropped == {"other split": 3, "empty answer": 0}
    rows[0]["answer_type"] = "MAYBE"
    p.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="row 0, field 'answer_type'"):
        load_vqa_rad(p, tmp_path / "img", split="train")
    rows[0]["answer_type"], rows[1]["phrase_type"] = "CLOSED", "validation"
    p.write_text(json.dumps(rows))
    with pytest.raises(ValueError, match="row 1, field 'phrase_type'"):
        load_vqa_rad(p, tmp_path / "img")
    with pytest.raises(ValueError, match="split"):
        load_vqa_rad(p, tmp_path / "img", split="validate")


def test_slake_split_names_and_chinese_rows_with_full_width_punctuation(slake):
    for split in ("train", "validate"):
        (slake / f"{split}.json").write_text(
            (slake / "test.json").read_text(encoding="utf-8"), encoding="utf-8"
        )
        assert len(load_slake(slake, split, size=8).items) == 3
    with pytest.raises(ValueError, match="validate"):
        load_slake(slake, "val")
    rows = json.loads((slake / "test.json").read_text(encoding="utf-8"))
    rows[2]["question"] = "这是什么器官？"
    (slake / "test.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    zh = load_slake(slake, "test", size=8, language="zh")
    assert [(it.question, it.answer) for it in zh.items] == [("这是什么器官?", "肝")]
    assert zh.dropped == {"other language": 3}
    with pytest.raises(ValueError, match="language"):
        load_slake(slake, language="fr")


def test_pmc_oa_jsonl(tmp_path):
    _png(tmp_path / "images" / "PMC1_Fig1.jpg", 50)
    _png(tmp_path / "images" / "PMC2_Fig3.jpg", 200)
    lines = [json.dumps({"image": "PMC1_Fig1.jpg", "caption": "Axial CT showing a mass."}), "",
             json.dumps({"image": "PMC2_Fig3.jpg", "caption": "  "}),
             json.dumps({"image": "PMC2_Fig3.jpg", "caption": "Chest radiograph."})]  # fmt: skip
    p = tmp_path / "pmc_oa.jsonl"
    p.write_text("\n".join(lines) + "\n")
    imgs, caps, dropped = load_pmc_oa(p, tmp_path / "images", size=4)
    assert caps == ["Axial CT showing a mass.", "Chest radiograph."]
    assert dropped == {"blank line": 1, "empty caption": 1}
    assert imgs[0].mean() == pytest.approx(50 / 255, abs=1e-6)
    p.write_text("{not json\n")
    with pytest.raises(ValueError, match="line 1"):
        load_pmc_oa(p, tmp_path / "images")


def _write_dicom(path, pixels, slope, intercept, center=None, width=None, modality="CT",
                 photometric="MONOCHROME2"):  # fmt: skip
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = (
        CTImageStorage,
        meta.MediaStorageSOPInstanceUID,
        modality,
    )
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_dicom_hounsfield_rescale_and_window(tmp_path):
    px = np.array([[0, 1024], [1064, 2024]])
    p = _write_dicom(tmp_path / "ct.dcm", px, 1, -1024, center=40, width=400)
    d = read_dicom(p)
    assert d.values.tolist() == [[-1024, 0], [40, 1000]] and d.unit == "HU"
    assert d.window == (40, 400)
    assert d.image.tolist() == [[0.0, pytest.approx(0.4)], [0.5, 1.0]]
    p2 = _write_dicom(tmp_path / "ct2.dcm", px, 2, -2048)
    d2 = read_dicom(p2, level=0, width=4000)
    assert d2.values.tolist() == [[-2048, 0], [80, 2000]] and d2.image[0, 1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="nope.dcm"):
        read_dicom(tmp_path / "nope.dcm")
    with pytest.raises(ValueError, match="width"):
        window(d.values, 0, 0)


def test_dicom_monochrome1_inverted_and_mr_not_in_hounsfield_units(tmp_path):
    px = np.array([[0, 1024], [1064, 2024]])
    mono2 = read_dicom(_write_dicom(tmp_path / "a.dcm", px, 1, -1024, center=40, width=400))
    mono1 = read_dicom(_write_dicom(tmp_path / "b.dcm", px, 1, -1024, center=40, width=400,
                                    photometric="MONOCHROME1"))  # fmt: skip
    assert mono1.image == pytest.approx(1.0 - mono2.image)
    mr = read_dicom(_write_dicom(tmp_path / "mr.dcm", px, 1, 0, modality="MR"))
    assert (mr.unit, mr.modality) == ("a.u.", "MR")


def test_dicom_voi_lut_table_and_multi_frame(tmp_path):
    import pydicom
    from pydicom.dataset import Dataset

    p = _write_dicom(tmp_path / "lut.dcm", np.array([[0, 1], [2, 3]]), 1, 0)
    ds = pydicom.dcmread(p)
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.add_new(
        "LUTData", "US", [0, 300, 100, 200]
    )  # a non-monotone table a window could not express
    ds.VOILUTSequence = [item]
    ds.save_as(p)
    d = read_dicom(p)
    assert d.window is None and d.image.tolist() == [
        [0.0, 1.0],
        [pytest.approx(1 / 3), pytest.approx(2 / 3)],
    ]
    frames = np.arange(12).reshape(3, 2, 2)
    p3 = tmp_path / "multi.dcm"
    _write_dicom(p3, frames[0], 1, 0)
    ds = pydicom.dcmread(p3)
    ds.NumberOfFrames, ds.PixelData = 3, frames.astype(np.uint16).tobytes()
    ds.save_as(p3)
    with pytest.raises(ValueError, match="field 'NumberOfFrames': 3 frames"):
        read_dicom(p3)
    assert read_dicom(p3, frame=2).values.tolist() == [[8, 9], [10, 11]]
    with pytest.raises(ValueError, match="frame must be in"):
        read_dicom(p3, frame=3)


def test_pydicom_bundled_ct_small_reads_as_ct():
    from pydicom.data import get_testdata_file

    d = read_dicom(get_testdata_file("CT_small.dcm"))
    assert d.values.shape == (128, 128) and d.unit == "HU"
    assert d.values.min() < -500 and d.values.max() > 500  # air/lung and bone are present
    assert 0.0 <= d.image.min() and d.image.max() <= 1.0
