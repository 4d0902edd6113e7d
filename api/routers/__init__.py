"""One module per area; each exposes ``router``. api.app.ROUTERS lists the modules that are mounted."""
