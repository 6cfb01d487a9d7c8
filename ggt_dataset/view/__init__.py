"""``ggt view``: a local, read-only web page for browsing pairs, a model's outputs and its scores.

Modules: source (where the shards are), index (the compact in-memory index),
query (filters and sort from the URL), overlays (predictions and a ``ggt score``
report joined by id), thumbs (images for the page), viewer (answers as data),
app (the Starlette server) and static/ (the page).
"""
