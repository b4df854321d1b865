"""Tenancy errors."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class ClientNotFound(NotFound):
    default_detail = "No such client."


class ApiKeyNotFound(NotFound):
    default_detail = "No such API key."


class EmailTaken(Conflict):
    type_slug = "email-taken"
    default_detail = "A user with this email already exists."


class ServiceCategoryExists(Conflict):
    type_slug = "service-category-exists"
    default_detail = "A service category with this name already exists."


class LogoNotFound(NotFound):
    default_detail = "The tenant has no logo."


class ContactNotFound(NotFound):
    default_detail = "No such contact of this client."


class AlreadyAContact(Conflict):
    type_slug = "already-a-contact"
    title = "Already a contact"
    default_detail = "This person is already a contact of this client."
