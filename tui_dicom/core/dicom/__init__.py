"""DICOM bytes: sources (files, ZIP members), the dictionary, character sets, dataset reading and the
dump reader. Depends only on the core's utilities (errors, safe, logging, cache)."""
