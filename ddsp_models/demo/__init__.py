"""``ddsp demo``: a local web page to try timbre transfer (Gradio, the optional ``[demo]`` extra).

* :mod:`.logic`: everything the page does, as plain functions testable without a browser
  (checking an upload, choosing and caching models, running the transfer, drawing the plot);
* :mod:`.app`: the Gradio page (:func:`~.app.build_app`) and :func:`~.app.launch`.

Importing this package imports neither torch nor gradio.
"""

from __future__ import annotations

__all__: list[str] = []
