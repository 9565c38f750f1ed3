"""One-shot commands (``ls``, ``dump``, ``export``); each module has ``add_parser`` and ``run``."""
