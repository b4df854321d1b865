"""Every ORM model, imported here so `Base.metadata` is complete for alembic and tests."""

from app.models.auth import LoginFailure, RefreshToken
from app.models.base import Base
from app.models.events import Event
from app.models.tenancy import ApiKey, Client, ServiceCategory, Tenant, User

__all__ = [
    "ApiKey",
    "Base",
    "Client",
    "Event",
    "LoginFailure",
    "RefreshToken",
    "ServiceCategory",
    "Tenant",
    "User",
]
