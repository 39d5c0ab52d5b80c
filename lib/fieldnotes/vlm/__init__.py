"""Chapter 2: a small medical vision-language model trained on generated scans.

One file per part, like nanoVLM:

* data and text: ``data`` (scans with ground truth), ``text`` (captions, questions, reports),
  ``shapes`` (the general image domain), ``formats`` (SLAKE, VQA-RAD, PMC-OA, DICOM loaders),
  ``realdata`` (training on a real SLAKE / VQA-RAD folder);
* the model: ``vision`` (encoders and their pre-training), ``language`` (tokenizer and Bloom LM),
  ``fusion`` (cross-attention, Q-Former, linear), ``model`` (the whole VLM), ``train`` (the loop);
* the experiment: ``seeds`` (every derived seed), ``pipeline`` (sizes, pre-training, runs, the
  ablation), ``evaluate`` (answers and scores), ``baselines`` (blind answers), ``controls``
  (shuffled scans), ``levers`` (encoder vs LM per budget), ``scaling`` (data scaling),
  ``findings`` (verdicts in words for the page), ``report`` (the benchmark's summary and the
  README's verdict paragraph), ``figures``, ``diagrams``, ``exercises``;
* at scale: ``zero`` (DeepSpeed ZeRO-2/3 on CPU ranks), ``realscale`` (BiomedCLIP + BloomZ-7B1).

Run it all with ``python -m fieldnotes.vlm --size ci|book`` (``__main__``).
"""
