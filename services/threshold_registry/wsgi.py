"""gunicorn entry point: ``gunicorn services.threshold_registry.wsgi:app``."""

from services.threshold_registry.service import SPEC
from shared.wsgi import service_app

app = service_app(SPEC)
