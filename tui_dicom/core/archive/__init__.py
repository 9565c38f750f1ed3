"""Archives (PACS, Orthanc, DICOMweb services) as a source of the hierarchy: query, then retrieve.

Pure core (no UI toolkit): the viewer and the one-shot commands call it from worker threads, since
pynetdicom and dicomweb-client block. Layout:

- :mod:`.address`: ``dicom://AET@HOST:PORT``, ``http(s)://[USER@]HOST[:PORT]/PATH``, named archives from
  the config file, and credentials (environment, ``~/.netrc``, config; never the command line).
- :mod:`.query`: filters, result records and the hierarchy model built from them.
- :mod:`.dimse` (C-FIND / C-GET / C-MOVE through pynetdicom), :mod:`.dicomweb` (QIDO-RS / WADO-RS
  through dicomweb-client): the two clients, one interface (:class:`.query.ArchiveClient`).
- :mod:`.diskcache`: the byte-bounded, private cache retrieved instances land in.
- :mod:`.errors`: every failure as one line a user can act on.

Use :func:`tui_dicom.core.archive.connect.open_client` to get a client for an address.
"""
