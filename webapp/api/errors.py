"""One JSON error shape for the API: {"error": {"code", "message", ...}}."""
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from ..services.errors import DomainError


def error_response(status: int, code: str, message: str, **details):
    return jsonify(error={"code": code, "message": message, **details}), status


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if request.path.startswith("/api/"):
            return error_response(exc.status, exc.code, exc.message, **exc.details)
        return exc.message, exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/") or request.path.startswith("/webhooks/"):
            return error_response(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description)
        return exc
