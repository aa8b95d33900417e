"""The classifier service: labels each request (task type, complexity, data class, language,
token estimate) before routing."""

from switchyard.classifier._detectors import detect_sensitive_data
from switchyard.classifier._servicer import ClassifierServicer, classify

__all__ = ["ClassifierServicer", "classify", "detect_sensitive_data"]
