"""The networks of the Helmholtz-method papers, in PyTorch: CIFAR-10 models A-F and the audio CNNs.

Six networks, ``"A"`` to ``"F"``, share a convolutional stem and differ in
their heads (Friedland et al., arXiv 1807.10569; the authors' Keras code).
With the default 32x32 RGB input and 10 classes their parameter counts are
exactly the authors' (see :data:`PARAMETER_COUNTS`).

Fidelity to the Keras originals:

* convolutions use TensorFlow's ``padding="same"`` rule, which pads
  asymmetrically (bottom/right) for stride-2 layers on even inputs;
* weights are initialised with ``glorot_uniform`` and biases with zeros,
  Keras' defaults;
* dense heads flatten in Keras' channels-last order.

The models return logits; the softmax lives in the loss.

``torch`` is imported only when a model is built.

The audio networks (:func:`audio_model`: the authors' mel-spectrogram CNNs,
:data:`AUDIO_MODELS`) report Keras' parameter count with
:func:`keras_parameter_count`.
"""

from __future__ import annotations

from ._ml.audio_models import AUDIO_MODELS, audio_model, audio_model_names, keras_parameter_count, resolve_audio_model
from ._ml.models import MODEL_ALIASES, MODEL_NAMES, PARAMETER_COUNTS, check_model_name, cifar_model, count_parameters

__all__ = [
    "AUDIO_MODELS",
    "MODEL_ALIASES",
    "MODEL_NAMES",
    "PARAMETER_COUNTS",
    "audio_model",
    "audio_model_names",
    "check_model_name",
    "cifar_model",
    "count_parameters",
    "keras_parameter_count",
    "resolve_audio_model",
]
