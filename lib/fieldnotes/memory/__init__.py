"""Chapter 1, the memory wall: ZeRO's model-state arithmetic, parameter counts from configs,
frozen/LoRA/offload budgets, activation memory, DeepSpeed's estimators, and a measured sharded run.

Everything here is plain arithmetic except :func:`count_parameters` (builds a model on the meta
device), :func:`saved_activation_bytes` (runs one layer forward on the CPU), :func:`reconcile_deepspeed` (calls DeepSpeed) and :func:`measure_zero` (trains on CPU ranks and
traces one step's live tensor bytes);
those import their heavy engines when called.
"""

from fieldnotes.memory.activations import (
    activation_bytes,
    activation_bytes_per_layer,
    crossover_seq_len,
)
from fieldnotes.memory.budget import (
    PRECISIONS,
    Budget,
    Part,
    lora_parameters,
    training_budget,
)
from fieldnotes.memory.counting import (
    biomedclip_image_tower,
    biomedclip_vit_config,
    blip2_qformer_config,
    bloomz_7b1_config,
    count_parameters,
    largest_layer_parameters,
    linear_shapes,
)
from fieldnotes.memory.estimators import deepspeed_estimates, reconcile_deepspeed
from fieldnotes.memory.measure import (
    Measurement,
    RunSpec,
    measure_peaks,
    measure_zero,
    summary_table,
)
from fieldnotes.memory.peak import PeakPrediction, peak_table, predicted_peak
from fieldnotes.memory.saved import (
    ACTIVATION_COEFFICIENTS,
    fit_activations,
    predicted_activation_bytes,
    reference_config,
    saved_activation_bytes,
)
from fieldnotes.memory.zero import (
    GB,
    STAGE_NAMES,
    GiB,
    ModelStates,
    communication_elements,
    min_gpus,
    model_states,
    zero_table,
)

__all__ = [
    "ACTIVATION_COEFFICIENTS",
    "GB",
    "GiB",
    "PRECISIONS",
    "STAGE_NAMES",
    "Budget",
    "Measurement",
    "PeakPrediction",
    "ModelStates",
    "Part",
    "RunSpec",
    "activation_bytes",
    "activation_bytes_per_layer",
    "biomedclip_image_tower",
    "biomedclip_vit_config",
    "communication_elements",
    "blip2_qformer_config",
    "bloomz_7b1_config",
    "count_parameters",
    "crossover_seq_len",
    "deepspeed_estimates",
    "fit_activations",
    "largest_layer_parameters",
    "linear_shapes",
    "lora_parameters",
    "measure_peaks",
    "measure_zero",
    "min_gpus",
    "model_states",
    "peak_table",
    "predicted_activation_bytes",
    "predicted_peak",
    "reconcile_deepspeed",
    "reference_config",
    "saved_activation_bytes",
    "summary_table",
    "training_budget",
    "zero_table",
]
