"""The image pipeline: frame decoding, modality LUT, VOI windowing, geometry in patient space.
Depends on ``dicom``."""
