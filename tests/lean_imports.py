"""A pytest plugin (loaded with `-p`, pyproject.toml) that keeps one import out of the test run.

nbval imports nbformat, nbformat imports jsonschema, and jsonschema's format checkers import
rfc3987_syntax when it is installed (jupyter-events asks for jsonschema[format-nongpl]):
it compiles an IRI grammar at import, 0.78 s of CPU in every pytest process (the controller and
each xdist worker), for a format ("iri") that no schema read here uses. Marking it absent makes
jsonschema skip that one checker, as it does wherever the extra is not installed. `-p` plugins are
imported before the plugins pytest finds through entry points (nbval), so this comes first.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError
