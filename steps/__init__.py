"""Your exercises: ``steps.stepNN_slug``, generated from ``solutions/`` with the exercises left as TODOs."""
