"""Request handling middleware."""


def error_body(code, kind, message):
    """Build a Designate-style error body."""
    return {
        "code": code,
        "type": kind,
        "message": message,
    }


def status_line(code):
    """Return the HTTP status line for a code."""
    reasons = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
    }
    return "%d %s" % (code, reasons.get(code, "Unknown"))


def validate_zone_name(name):
    """Zone names end with a dot."""
    if not name.endswith("."):
        raise ValueError("zone name must end with a dot")
    return name
