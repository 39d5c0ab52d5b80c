"""Text for the scans: captions (pre-training pairs), VQA questions, reports and general text.

Questions follow SLAKE / VQA-RAD: *closed* questions are answered yes/no, *open* ones with a
short phrase (modality, finding, organ, location, side, size). Wording varies by template.
All text is lower case; answers contain no punctuation, so exact match is well defined.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from fieldnotes.vlm.data import FINDINGS, MODALITIES, Scan

MODALITY_WORDS = {
    "ct": ["ct", "axial ct of the chest", "chest ct slice", "computed tomography of the chest"],
    "x-ray": ["x-ray", "chest x-ray", "frontal chest radiograph", "pa chest film"],
    "mri": ["mri", "axial brain mri", "t1 weighted mri of the brain", "brain mr slice"],
}
FINDING_WORDS = {"nodule": "nodule", "effusion": "pleural effusion", "fracture": "fracture",
                 "tumour": "tumour"}  # fmt: skip
PRESENCE_QUESTIONS = [
    "is there a {w}?",
    "does the image show a {w}?",
    "can you see a {w}?",
    "is a {w} present?",
]
OPEN_TEMPLATES = {
    "modality": [
        "what modality is this?",
        "what kind of scan is this?",
        "which imaging modality was used?",
    ],
    "finding": [
        "what is the main finding?",
        "what abnormality is seen?",
        "what does the image show?",
    ],
    "location": ["where is the abnormality?", "where is the lesion located?", "where is the {w}?"],
    "organ": ["which organ is abnormal?", "which organ is affected?", "what organ shows the {w}?"],
    "side": ["which side is affected?", "on which side is the {w}?"],
    "size": ["how large is the {w}?", "what is the size of the {w}?"],
}
CLOSED_OTHER = {
    "normal": ["is this image normal?", "is the scan normal?", "is this a normal study?"],
    "modality": ["is this a {m} scan?", "was this taken with {m}?"],
}


@dataclass(frozen=True)
class VQAItem:
    """One visual question: the scan index, question, answer and its labels."""

    image: int
    question: str
    answer: str
    answer_type: str  # "closed" or "open"
    question_type: str  # "presence", "normal", "modality", "finding", "location", ...
    modality: str


def caption(scan: Scan, rng: np.random.Generator, template: int | None = None) -> str:
    """A radiology-style caption for ``scan`` (template drawn from ``rng`` unless given)."""
    t = int(rng.integers(0, 3)) if template is None else template
    mod = MODALITY_WORDS[scan.modality][t % len(MODALITY_WORDS[scan.modality])]
    if not scan.abnormal:
        tail = ["no abnormality", "normal study", "no acute finding"][t % 3]
        return f"{mod} . {tail} ."
    w = FINDING_WORDS[scan.finding]
    size = f"{scan.size} " if scan.size else ""
    where = scan.location
    forms = [f"{mod} . {size}{w} in the {where} .", f"{mod} showing a {size}{w} , {where} .",
             f"{size}{w} of the {where} on {mod} ."]  # fmt: skip
    return forms[t % 3]


def canonical_caption(scan: Scan) -> str:
    """The caption with fixed wording: two scans with equal canonical captions mean the same."""
    return caption(scan, np.random.default_rng(0), template=0)


def questions(
    scan: Scan, index: int, rng: np.random.Generator, per_image: int = 4
) -> list[VQAItem]:
    """About ``per_image`` questions on one scan, half closed and half open, wording drawn by ``rng``."""
    pool: list[VQAItem] = []
    m = scan.modality

    def add(q, a, kind, qtype):
        pool.append(VQAItem(index, q, a, kind, qtype, m))

    # closed: presence of a finding (asked both for the true finding and for an absent one)
    possible = [f for f in ("nodule", "effusion", "fracture", "tumour") if f in FINDINGS[m]]
    asked = scan.finding if scan.abnormal and rng.random() < 0.5 else str(rng.choice(possible))
    tmpl = PRESENCE_QUESTIONS[int(rng.integers(len(PRESENCE_QUESTIONS)))]
    add(
        tmpl.format(w=FINDING_WORDS[asked]),
        "yes" if asked == scan.finding else "no",
        "closed",
        "presence",
    )
    add(
        str(rng.choice(CLOSED_OTHER["normal"])),
        "no" if scan.abnormal else "yes",
        "closed",
        "normal",
    )
    other = m if rng.random() < 0.5 else str(rng.choice([x for x in MODALITIES if x != m]))
    q = str(rng.choice(CLOSED_OTHER["modality"])).format(m=other)
    add(q, "yes" if other == m else "no", "closed", "modality")
    # open
    add(str(rng.choice(OPEN_TEMPLATES["modality"])), m, "open", "modality")
    add(
        str(rng.choice(OPEN_TEMPLATES["finding"])),
        scan.finding if scan.abnormal else "none",
        "open",
        "finding",
    )
    if scan.abnormal:
        w = FINDING_WORDS[scan.finding]
        add(
            str(rng.choice(OPEN_TEMPLATES["location"])).format(w=w),
            scan.location,
            "open",
            "location",
        )
        add(str(rng.choice(OPEN_TEMPLATES["organ"])).format(w=w), scan.organ, "open", "organ")
        if scan.side:
            add(str(rng.choice(OPEN_TEMPLATES["side"])).format(w=w), scan.side, "open", "side")
        if scan.size:
            add(str(rng.choice(OPEN_TEMPLATES["size"])).format(w=w), scan.size, "open", "size")
    closed = [p for p in pool if p.answer_type == "closed"]
    opened = [p for p in pool if p.answer_type == "open"]
    k_closed = min(len(closed), (per_image + 1) // 2)
    k_open = min(len(opened), per_image - k_closed)
    pick_c = rng.choice(len(closed), size=k_closed, replace=False)
    pick_o = rng.choice(len(opened), size=k_open, replace=False)
    return [closed[i] for i in sorted(pick_c)] + [opened[i] for i in sorted(pick_o)]


def make_vqa(scans: list[Scan], seed: int, per_image: int = 4) -> list[VQAItem]:
    """VQA items for every scan (deterministic in ``seed``)."""
    if isinstance(per_image, bool) or not isinstance(per_image, numbers.Integral) or per_image < 1:
        raise ValueError(f"per_image must be an int >= 1, got {per_image!r}")
    rng = np.random.default_rng([seed, 0xA5])
    return [item for i, s in enumerate(scans) for item in questions(s, i, rng, per_image)]


def make_captions(scans: list[Scan], seed: int) -> list[str]:
    """One caption per scan, wording drawn with ``seed``."""
    rng = np.random.default_rng([seed, 0xCA])
    return [caption(s, rng) for s in scans]


def report(scan: Scan, rng: np.random.Generator) -> str:
    """A short radiology report (findings + impression) for ``scan``; the medical LM's corpus."""
    m = scan.modality
    parts = [f"exam : {MODALITY_WORDS[m][int(rng.integers(1, 4))]} ."]
    normal = {
        "ct": ["the lungs are clear .", "no pleural effusion .", "the spine is intact ."],
        "x-ray": ["the lungs are clear .", "no pleural effusion .", "no rib fracture ."],
        "mri": ["no mass lesion .", "the ventricles are normal .", "no midline shift ."],
    }[m]
    if scan.abnormal:
        w = FINDING_WORDS[scan.finding]
        size = f"{scan.size} " if scan.size else ""
        parts.append(f"findings : there is a {size}{w} in the {scan.location} .")
        if scan.size_mm:
            parts.append(f"the {w} is {scan.size} .")
        parts.append(
            f"impression : {w} , {scan.location} . the abnormal organ is the {scan.organ} ."
        )
    else:
        rng.shuffle(normal)
        parts.append("findings : " + " ".join(normal))
        parts.append("impression : normal study . no abnormality .")
    return " ".join(parts)


GENERAL_SUBJECTS = ["the cat", "a dog", "the red ball", "my friend", "the old car", "a small bird",
                    "the teacher", "a green box", "the river", "the tall tree", "a child", "the train"]  # fmt: skip
GENERAL_VERBS = [
    "sits on",
    "runs to",
    "looks at",
    "is near",
    "jumps over",
    "rolls under",
    "stands by",
]
GENERAL_OBJECTS = ["the table", "a chair", "the house", "the park", "a circle", "the square",
                   "the triangle", "the window", "the left side", "the right side", "the top"]  # fmt: skip
GENERAL_QA = [
    ("is the sky blue?", "yes"), ("is fire cold?", "no"), ("what color is grass?", "green"),
    ("where is the ball?", "left"), ("which side is the door on?", "right"), ("is a circle round?", "yes"),
    ("what shape has three corners?", "triangle"), ("how large is an elephant?", "large"),
    ("how large is an ant?", "small"), ("is this a cat?", "yes"), ("is a square round?", "no"),
    ("what is the main shape?", "circle"), ("where is the square?", "top"),
]  # fmt: skip


def general_text(n: int, seed: int) -> list[str]:
    """``n`` lines of everyday text plus question-answer lines (the BloomZ-like general corpus)."""
    rng = np.random.default_rng([seed, 0x6E])
    out = []
    for _ in range(n):
        if rng.random() < 0.3:
            q, a = GENERAL_QA[int(rng.integers(len(GENERAL_QA)))]
            out.append(f"question : {q} answer : {a}")
        else:
            k = int(rng.integers(1, 3))
            sents = [
                f"{rng.choice(GENERAL_SUBJECTS)} {rng.choice(GENERAL_VERBS)} {rng.choice(GENERAL_OBJECTS)} ."
                for _ in range(k)
            ]
            out.append(" ".join(sents))
    return out


def medical_text(scans: list[Scan], seed: int) -> list[str]:
    """One report per scan: the radiology corpus the medical LM is adapted on."""
    rng = np.random.default_rng([seed, 0x3D])
    return [report(s, rng) for s in scans]


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation at the ends and collapse spaces (for exact match)."""
    return " ".join(text.lower().strip().strip(".?!,;:").split())
