"""DICOM bytes: sources (files, ZIP members), the element reader every fast reader decodes with, the
dictionary, character sets and dataset reading. Depends only on the core's utilities (errors, safe,
logging, cache, limits)."""
