"""The completed app of every step: ``solutions.stepNN_slug`` (the source of truth for ``steps/``)."""
