"""Writes the tiny real-layout fixtures beside this file: SLAKE (``slake/{train,validate,test}.json``
and ``slake/imgs/xmlab<N>/source.jpg``) and VQA-RAD (``vqa_rad/VQA_RAD Dataset Public.json`` and
``vqa_rad/VQA_RAD Image Folder/synpic<N>.jpg``), with the fields the public releases use. The images
are the chapter's generated scans saved as 96 x 96 grey JPEGs (the loaders resize them to the
model's input), so a model can learn something from them; SLAKE gets one Chinese row per split, VQA-RAD both phrase types per split.

Run from the repository root: ``.venv/bin/python tests/data/vlm/make_real_layouts.py``.
"""

import json
from pathlib import Path

from PIL import Image

from fieldnotes.vlm.data import make_scans
from fieldnotes.vlm.text import make_vqa

HERE = Path(__file__).resolve().parent
QTYPES = {"modality": "MODALITY", "finding": "ABN", "location": "POS", "organ": "ORGAN", "side": "POS",
          "size": "SIZE", "presence": "PRES", "normal": "ABN"}  # fmt: skip


def save(scan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray((scan.image * 255).round().astype("uint8"), mode="L")
    img.resize((96, 96), Image.BILINEAR).save(path, quality=90)


def slake() -> None:
    root = HERE / "slake"
    counts = {"train": 10, "validate": 2, "test": 4}
    first = 0
    for split, n in counts.items():
        scans = make_scans(n, {"train": 11, "validate": 12, "test": 13}[split], 64)
        rows = []
        for i, s in enumerate(scans):
            save(s, root / "imgs" / f"xmlab{first + i}" / "source.jpg")
        for it in make_vqa(scans, 21, 4):
            rows.append({"img_id": first + it.image, "img_name": f"xmlab{first + it.image}/source.jpg",
                         "question": it.question, "answer": it.answer, "q_lang": "en", "location": "Chest",
                         "modality": {"ct": "CT", "mri": "MRI", "x-ray": "X-Ray"}[it.modality],
                         "answer_type": it.answer_type.upper(), "base_type": "vqa",
                         "content_type": it.question_type.capitalize(), "triple": ["vhead", "_", "_"],
                         "qid": len(rows)})  # fmt: skip
        rows.append(
            dict(rows[0], question="这是什么模态？", answer="CT", q_lang="zh", qid=len(rows))
        )
        (root / f"{split}.json").write_text(
            json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        first += n


def vqa_rad() -> None:
    root = HERE / "vqa_rad"
    rows = []
    first = 0
    for split, n, seed in (("train", 10, 31), ("test", 4, 32)):
        scans = make_scans(n, seed, 64)
        for i, s in enumerate(scans):
            save(s, root / "VQA_RAD Image Folder" / f"synpic{first + i}.jpg")
        for k, it in enumerate(make_vqa(scans, 41, 4)):
            phrase = ("freeform", "para")[k % 2]
            rows.append({"qid": len(rows), "image_name": f"synpic{first + it.image}.jpg",
                         "image_case_url": "https://example.invalid/case", "image_organ": "CHEST",
                         "answer": it.answer, "answer_type": it.answer_type.upper(),
                         "question_type": QTYPES.get(it.question_type, "OTHER"),
                         "question": it.question, "phrase_type": phrase if split == "train" else f"test_{phrase}"})  # fmt: skip
        first += n
    (root / "VQA_RAD Dataset Public.json").write_text(
        json.dumps(rows, indent=1) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    slake()
    vqa_rad()
