"""Platform library shared by every SLA Support Suite service.

Nothing here imports a service: the arrows point from services to ``shared``.
"""
