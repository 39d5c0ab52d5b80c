"""Chapter 2: a small medical vision-language model trained on generated scans.

One file per part, like nanoVLM: ``data`` (scans), ``text`` (captions, questions, reports),
``shapes`` (the general image domain), ``formats`` (SLAKE, VQA-RAD, PMC-OA, DICOM), ``vision``,
``language``, ``fusion``, ``model``, ``train``, ``evaluate``, ``pipeline`` (the experiment),
``zero`` (DeepSpeed ZeRO-2/3 on CPU ranks), ``realscale`` (BiomedCLIP + BloomZ-7B1 loading) and
``diagrams``. Run it all with ``python -m fieldnotes.vlm --size ci|book``.
"""
