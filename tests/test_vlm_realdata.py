"""Real data trains, not only evaluates: SLAKE and VQA-RAD in their published folder layouts (tiny
fixtures in tests/data/vlm) go through the same two stages end to end."""

from dataclasses import replace
from pathlib import Path

import pytest
from test_vlm_pipeline import TOY

from fieldnotes.vlm import realdata

DATA = Path(__file__).resolve().parent / "data" / "vlm"
ROOTS = {"slake": DATA / "slake", "vqa-rad": DATA / "vqa_rad"}


@pytest.mark.parametrize("dataset", realdata.DATASETS)
def test_a_real_layout_trains_end_to_end(dataset):
    size = replace(TOY, lm_medical_steps=5, clip_steps=5, align_steps=4, final_vqa_steps=12)
    train, test = realdata.load_real(dataset, ROOTS[dataset], size.image_size)
    assert train.images.shape[1:] == (1, 64, 64) and test.images.shape[1:] == (
        1,
        64,
        64,
    )  # 96 px files, resized
    r = realdata.train_on_real(dataset, ROOTS[dataset], size, seed=0, progress=False)
    assert r.metrics["n_questions"] == len(test.items) == 16
    assert len(r.align_losses) == 4 and len(r.vqa_losses) == 12  # both stages ran
    assert sum(r.vqa_losses[-3:]) < sum(r.vqa_losses[:3])
    captions = realdata.pseudo_captions(train)
    assert (
        len(captions) == len(train.images)
        and train.items[0].answer in captions[train.items[0].image]
    )


def test_bad_roots_and_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of"):
        realdata.load_real("pathvqa", tmp_path, 32)
    with pytest.raises(ValueError, match="is not a folder"):
        realdata.load_real("slake", tmp_path / "missing", 32)
    with pytest.raises(ValueError, match="train.json not found"):
        realdata.load_real("slake", tmp_path, 32)
