"""The assessor: judges shadow runs against the live answers, watches each model path's
agreement for drift, and publishes scores and alerts for the ledger to keep."""
