"""Offline evaluation: the classifier, the learned router and the local tier's confidence,
on labelled files. Used by `tierlift eval*` commands and the training script."""
