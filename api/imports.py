"""Statement imports: CSV with a column mapping, or OFX/QFX."""

from __future__ import annotations

import json
import uuid

from flask import g, request, url_for
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields

from api.schemas import Blueprint
from api.security import auth_required, current_caller
from config import wiring
from config.settings import get_settings
from domain.imports import ImportFormatError, UnsupportedFileType
from models.ledger import Import
from services import imports
from services.errors import Invalid, ServiceError
from services.import_files import sniff

blp = Blueprint("imports", __name__, url_prefix="/api/v1/imports", description="Statement imports")


class UnsupportedMediaType(ServiceError):
    """The upload is not a statement format we read."""

    status = 415


@blp.before_request
def _allow_statement_sized_bodies() -> None:
    request.max_content_length = get_settings().max_import_bytes


class ImportForm(Schema):
    """The multipart form: `file`, `account_id`, and for CSV a `mapping` (JSON) unless one is saved."""

    account_id = fields.UUID(required=True)
    mapping = fields.String(load_default=None)


class ImportFile(Schema):
    """The uploaded statement."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ImportOut(Schema):
    """An import and how its rows fared."""

    id = fields.String()
    account_id = fields.String()
    filename = fields.String()
    format = fields.String()
    status = fields.String()
    rows_total = fields.Integer()
    imported = fields.Integer()
    duplicates = fields.Integer()
    possible_duplicates = fields.Integer()
    rejected = fields.Integer()
    batches_total = fields.Integer()
    batches_done = fields.Integer()
    errors = fields.List(fields.Dict())


def import_out(record: Import) -> dict:
    """An import as the API shows it (row errors with their line numbers)."""
    return {"id": str(record.id), "account_id": str(record.account_id), "filename": record.filename,
            "format": record.format, "status": record.status, "rows_total": record.rows_total,
            "imported": record.imported, "duplicates": record.duplicates,
            "possible_duplicates": record.possible_duplicates, "rejected": record.rejected,
            "batches_total": record.batches_total, "batches_done": record.batches_done, "errors": record.errors}


def _mapping(raw: str | None) -> dict | None:
    if raw is None:
        return None
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError({"mapping": [f"not JSON: {exc.msg}"]}) from None
    if not isinstance(mapping, dict):
        raise ValidationError({"mapping": ["must be a JSON object"]})
    return mapping


def _accepted(form: dict, upload: object) -> Import:
    data = upload.read()
    try:
        kind = sniff(data, upload.filename or "", upload.mimetype)
        return imports.accept(current_caller(), form["account_id"], upload.filename or "statement", kind, data,
                              _mapping(form["mapping"]), wiring.uow())
    except UnsupportedFileType as exc:
        raise UnsupportedMediaType(exc.reason, field="file") from None
    except (ImportFormatError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise Invalid(getattr(exc, "reason", str(exc)), field="file" if isinstance(exc, ImportFormatError)
                      else "mapping") from None


@blp.route("")
class Imports(MethodView):
    """Upload statements."""

    decorators = [auth_required()]

    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFile, location="files")
    @blp.response(202, ImportOut)
    def post(self, form: dict, files: dict) -> tuple[dict, int, dict]:
        """Import a statement (202; poll GET /imports/{id}): rows land in batches, deduplicated and categorized."""
        record = _accepted(form, files["file"])
        wiring.broker().send_command("categorization", "start_import_command", {"import_id": str(record.id)})
        return import_out(record), 202, {"Location": url_for("imports.ImportById", import_id=record.id)}


@blp.route("/<uuid:import_id>")
class ImportById(MethodView):
    """One import."""

    decorators = [auth_required()]

    @blp.response(200, ImportOut)
    def get(self, import_id: uuid.UUID) -> dict:
        """Progress: rows total, imported, duplicates, possible duplicates, rejected (with line and reason)."""
        return import_out(imports.get(current_caller(), import_id, wiring.uow()))

    @blp.response(202, ImportOut)
    def delete(self, import_id: uuid.UUID) -> dict:
        """Revert the whole import (202): its transactions go, balances and budgets follow."""
        caller = current_caller()
        record = imports.get(caller, import_id, wiring.uow())
        wiring.broker().send_command("categorization", "revert_import_command", {
            "import_id": str(import_id), "user_id": str(caller.user_id), "correlation_id": g.request_id})
        return import_out(record)
