"""Numbered migrations, their SQL written out in full: ``NNNN_name.sql`` for every backend, or
``NNNN_name.<dialect>.sql`` where a backend's SQL must differ (see ``receiver.store.migrate``)."""
