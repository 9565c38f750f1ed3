"""Tag rows: datasets turned into the rows the inspector and ``dump`` show, and the tag query.
Depends on ``dicom``."""
