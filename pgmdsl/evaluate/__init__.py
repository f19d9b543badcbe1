"""Honest evaluation of any compiled model.

exact_log_z and log_likelihood by enumeration where the state space allows;
ais for log Z where it does not (per input row for conditional models, and
conditional_log_likelihood for their log p(observed | input)), and raise_log_likelihood (RAISE) for the
conservative side of the same estimate; lower_bound for models with latent layers
the compiler keeps (DBMs); stack_lower_bound for deep belief networks (exact_stack_log_likelihood and
exact_stack_lower_bound for tiny ones); pseudo_log_likelihood, reconstruction_error and
free_energy_gap as monitors; label_log_probabilities, predict_labels,
label_accuracy, label_log_likelihood and label_metrics for classification
RBMs (p(label | rest) by enumeration).
"""

from ..runtime.train import reconstruction_error
from .ais import AISEstimate, ais, default_schedule, effective_sample_size
from .bound import lower_bound, mean_field
from .conditional import conditional_log_likelihood, persistence_error, prediction_error
from .exact import exact_log_likelihood, exact_log_z, log_likelihood
from ..runtime.labels import label_accuracy, label_log_likelihood, label_log_probabilities, label_metrics, predict_labels
from .pseudo import free_energy_gap, pseudo_log_likelihood
from .reverse import RAISEEstimate, raise_log_likelihood
from .stack import exact_stack_log_likelihood, exact_stack_lower_bound, stack_lower_bound

__all__ = [
    "AISEstimate", "ais", "conditional_log_likelihood", "default_schedule", "effective_sample_size",
    "exact_log_likelihood", "exact_log_z",
    "exact_stack_log_likelihood", "exact_stack_lower_bound", "free_energy_gap", "label_accuracy",
    "label_log_likelihood", "label_log_probabilities", "label_metrics", "log_likelihood", "lower_bound", "mean_field", "predict_labels",
    "persistence_error", "prediction_error", "pseudo_log_likelihood", "RAISEEstimate", "raise_log_likelihood", "reconstruction_error",
    "stack_lower_bound",
]
