"""The hierarchy: Patient -> Study -> Series -> Instance, built from DICOMDIR records, folder scans and
ZIP archives, with the fast header reader the index uses. Depends on ``dicom``."""
