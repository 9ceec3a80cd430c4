"""The dashboard: server-rendered pages (Jinja2), htmx for partial and live updates (server-sent
events), every asset vendored in ``static/``: it works with no internet."""
