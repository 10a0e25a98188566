"""tablerest: a fast, safe REST/JSON API from SQLAlchemy models or an existing database."""

from .coerce import url_key as url_key
from .database import create_engine as create_engine
from .errors import BadRequest as BadRequest
from .errors import ConfigurationError as ConfigurationError
from .errors import Conflict as Conflict
from .errors import FieldError as FieldError
from .errors import Forbidden as Forbidden
from .errors import NotFound as NotFound
from .errors import ProblemError as ProblemError
from .errors import ServiceUnavailable as ServiceUnavailable
from .errors import TableRestError as TableRestError
from .errors import TooManyRequests as TooManyRequests
from .errors import Unauthorized as Unauthorized
from .errors import ValidationFailed as ValidationFailed
from .extension import TableRest as TableRest
from .orm import Email as Email
from .orm import Model as Model
from .orm import Name as Name
from .orm import Password as Password
from .orm import PasswordHash as PasswordHash
from .orm import Timestamps as Timestamps
from .orm import hash_password as hash_password
from .orm import raw_sql as raw_sql
from .orm import session as session
from .reflection import reflect as reflect
from .resource import Policy as Policy
from .resource import RequestContext as RequestContext
from .resource import Resource as Resource
from .seeding import Seeder as Seeder
from .settings import Settings as Settings

__all__ = [
    "BadRequest", "ConfigurationError", "Conflict", "Email", "FieldError", "Forbidden",
    "Model", "Name", "NotFound", "Password", "PasswordHash", "Policy", "ProblemError",
    "RequestContext", "Resource", "Seeder", "ServiceUnavailable", "Settings", "TableRest",
    "TableRestError", "Timestamps", "TooManyRequests", "Unauthorized", "ValidationFailed",
    "create_engine", "hash_password", "raw_sql", "reflect", "session", "url_key",
]
