"""The GGT synthesis pipeline: generative ground truth for your own LQ photos.

LQ folder -> prompt (fixed or adaptive) -> backend edit -> quality control ->
raw release (images + manifest) that ``ggt build`` packages. Every request,
response, cost and verdict goes into a SQLite journal, so a run resumes without
repeating a paid call.
"""
