"""The classifier service: labels each request (task type, complexity, data class, language,
token estimate, routing prior) before routing."""

from tierlift.classifier._detectors import detect_sensitive_data
from tierlift.classifier._servicer import Classifier, ClassifierServicer, load_classifier

__all__ = ["Classifier", "ClassifierServicer", "detect_sensitive_data", "load_classifier"]
