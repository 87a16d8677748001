"""gunicorn entry point: ``gunicorn services.outage_negotiation.wsgi:app``."""

from services.outage_negotiation.service import SPEC
from shared.wsgi import service_app

app = service_app(SPEC)
