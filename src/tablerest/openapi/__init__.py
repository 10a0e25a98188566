"""The OpenAPI 3.1 document of an app's tablerest routes, and the ``/docs`` page that shows it.

The document is built from what the app serves: every route tablerest registered, with the
list parameters of its resource (one per field and operator), the request bodies of its
validators, its response schemas and every error it answers, as ``application/problem+json``.
``QUERY /things`` (and ``FETCH``) appear as ``POST /things/query``, since OpenAPI 3.1 has no
such verbs. ``/docs`` is Swagger UI, served from a Python package: no CDN.

::

    register_openapi(app)            # GET /openapi.json, GET /docs; a second call does nothing
    document = openapi_document(app)

``document.py`` walks the routes into operations, ``schemas.py`` builds the components they
refer to, ``shared.py`` holds the parts every document shares, ``docs.py`` serves both.
"""

from .docs import register_openapi as register_openapi
from .document import DOC_ENDPOINTS as DOC_ENDPOINTS
from .document import openapi_document as openapi_document

__all__ = ["DOC_ENDPOINTS", "openapi_document", "register_openapi"]
