"""The OpenAPI 3.1 document of the v1 API, built from the routes' behaviour and the kinds.

Parameter schemas are the pydantic models of ``shared.kinds``, read from the registry on each
call, so the document cannot drift from validation. Never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.api import metrics as prometheus
from services.api.auth import CSRF_FIELD, CSRF_HEADER, PUBLIC_PATHS, SESSION_COOKIE
from services.api.openapi_sweeps import sweep_operations, sweep_schemas
from services.api.routes import datasets, events, health, jobs, logs, removal
from shared.datasets import ARRAY_NAMES, DATASET_NAME
from shared.job_specs import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from shared.job_state import JobStatus
from shared.kinds import (
    KIND_SPECS,
    KindSpec,
    Params,
    SampleParams,
    job_kinds,
    params_json_schema,
    sample_param_models,
)
from shared.settings import Settings

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
BINARY: Schema = {"type": "string", "format": "binary"}
JSON = "application/json"
OCTETS = "application/octet-stream"
FORM = "multipart/form-data"
DATASET_LINK = {"operationId": "getDataset", "parameters": {"name": "$response.body#/name"}}

# The error answers the routes give, by status: (component name, description).
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Malformed request: invalid JSON, or a missing multipart field."),
    401: ("Unauthorized", "No API key, or an unknown or revoked one."),
    403: (
        "Forbidden",
        "Not allowed for this key: a priority above the cap, or the metrics from another "
        "machine, need an admin key.",
    ),
    404: ("NotFound", "No such job, dataset or artifact (another owner's rows are 404 too)."),
    409: (
        "Conflict",
        "Conflicts with the current state (a finished job, an existing name, a job not ended "
        "or a dataset in use for a delete, an owner's dataset or storage quota).",
    ),
    413: ("TooLarge", "The request body or the unpacked upload is over the limit."),
    415: ("UnsupportedMediaType", "The body is not sent as application/json."),
    422: ("Invalid", "A field, parameter or header is invalid; `field` names it."),
    429: ("RateLimited", "Too many submissions in the last minute; retry after Retry-After."),
}


def ref(name: str, section: str = "schemas") -> Schema:
    """A reference to a component."""
    return {"$ref": f"#/components/{section}/{name}"}


def string(**keywords: Any) -> Schema:
    """A string schema."""
    return {"type": "string", **keywords}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null (OpenAPI 3.1 style)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def integer(minimum: int | None = 0, **keywords: Any) -> Schema:
    """An integer schema, by default non-negative."""
    schema: Schema = {"type": "integer", **keywords}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def timestamp(null: bool = False) -> Schema:
    """An ISO 8601 timestamp in UTC."""
    schema = string(format="date-time")
    return nullable(schema) if null else schema


def array(items: Schema) -> Schema:
    """An array of ``items``."""
    return {"type": "array", "items": items}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = (), **keywords: Any) -> Schema:
    """A closed object: every property but ``optional`` is required, no others are allowed."""
    schema: Schema = {"type": "object", "properties": properties}
    required = [name for name in properties if name not in optional]
    if required:
        schema["required"] = required
    return {**schema, "additionalProperties": False, **keywords}


def enum_of(values: Any) -> Schema:
    """A string enum of the values of a StrEnum (or any iterable of strings)."""
    return string(enum=[str(value) for value in values])


def model_kinds() -> list[str]:
    """The trainable kinds, from the registry as it is now."""
    return list(KIND_SPECS)


def params_schema(model: type[Params], caps: dict[str, int]) -> Schema:
    """A parameter model as an object of optional parameters (unknown ones are refused, 422);
    its docstring, which states any cross-field rule, describes it."""
    schema = params_json_schema(model, caps)
    description = schema.get("description", "Parameters").rstrip(".")
    schema["description"] = f"{description}; omitted ones take these defaults."
    return schema


PRIORITY = integer(
    PRIORITY_MIN,
    maximum=PRIORITY_MAX,
    default=PRIORITY_DEFAULT,
    description="higher runs first; among equals the oldest job first (above the cap, "
    "GENTRAIN_MAX_PRIORITY_WITHOUT_ADMIN, admin keys only: 403)",
)


def submission_schema(spec: KindSpec) -> Schema:
    """The body of ``POST /v1/jobs`` for one model kind."""
    kind = spec.name
    properties = {
        "kind": string(enum=[kind], description=spec.description),
        "dataset": string(
            pattern=DATASET_NAME.pattern, description="an uploaded dataset", examples=["mnist"]
        ),
        "params": ref(f"{kind.capitalize()}Params"),
        "priority": PRIORITY,
    }
    return obj(properties, optional=("params", "priority"))


def json_content(schema: Schema) -> dict[str, Any]:
    """A JSON media type entry."""
    return {JSON: {"schema": schema}}


def header(description: str, schema: Schema | None = None) -> dict[str, Any]:
    """A required response header."""
    return {"description": description, "required": True, "schema": schema or string()}


def response(description: str, schema: Schema | None = None, **extra: Any) -> dict[str, Any]:
    """A response with an optional JSON body, and its ``headers`` or ``links`` if given."""
    result: dict[str, Any] = {"description": description}
    result.update({name: value for name, value in extra.items() if value})
    if schema is not None:
        result["content"] = json_content(schema)
    return result


def job_links() -> dict[str, Any]:
    """Where an answer with a job leads: its id feeds these operations."""
    job_id = {"job_id": "$response.body#/id"}
    names = ("getJob", "getMetrics", "cancelJob", "sampleJob")
    return {name: {"operationId": name, "parameters": job_id} for name in names}


def job_properties() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """The properties of a job's short view, and of its full view (``services/api/views.py``)."""
    summary = {
        "id": string(),
        "kind": enum_of(job_kinds()),
        "model_kind": enum_of(model_kinds()),
        "status": enum_of(JobStatus),
        "priority": integer(PRIORITY_MIN, maximum=PRIORITY_MAX),
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "dataset": nullable(string()),
        "parent_id": nullable(string(description="the training job a sampling job draws from")),
        "created_at": timestamp(),
        "finished_at": timestamp(null=True),
    }
    full = {
        **summary,
        "params": {"type": "object", "description": "every parameter, defaults filled in"},
        "attempts": integer(),
        "error": nullable(string()),
        "eta_seconds": nullable({"type": "number"}),
        "started_at": timestamp(null=True),
        "updated_at": timestamp(),
        "heartbeat_at": timestamp(null=True),
        "param_count": nullable(integer()),
        "replicas": nullable(integer()),
        "global_batch_size": nullable(integer()),
        "latest_metrics": nullable(ref("Metric")),
        "results": {"type": "object"},
        "history": array(ref("JobEvent")),
        "artifacts": {**array(ref("Artifact")), "description": "the newest, oldest first"},
        "artifact_count": integer(description="all the job's artifacts; page with artifacts_url"),
        "artifacts_url": string(description="GET it with limit and offset for every artifact"),
        "expired": {
            "type": "boolean",
            "description": "retention (GENTRAIN_RETAIN_DAYS) removed its artifacts; the job, "
            "its metrics and history stay",
        },
        "expired_at": timestamp(null=True),
        "sweep_id": nullable(string(description="the sweep this job is a trial of")),
    }
    return summary, full


def schemas(settings: Settings) -> dict[str, Schema]:
    """Every schema component: views, lists, errors, submissions and per-kind parameters."""
    caps = {"max_runtime_seconds": settings.max_runtime_cap_seconds}
    specs = list(KIND_SPECS.values())
    # A sampling job's params are checked by its model's kind (SampleParams, or the kind's own).
    sample_models = sample_param_models()
    sample_params = ref(SampleParams.__name__)
    if len(sample_models) > 1:
        sample_params = {
            "anyOf": [ref(model.__name__) for model in sample_models],
            "description": "by the model's kind: "
            + "; ".join(
                f"{spec.name}: {spec.sample_params.__name__}"
                for spec in specs
                if spec.sample_params is not SampleParams
            )
            + f"; others: {SampleParams.__name__}",
        }
    summary, full = job_properties()
    array_info = obj({"shape": array(integer()), "dtype": string()})
    result: dict[str, Schema] = {
        "Error": obj(
            {"error": obj({"code": string(), "message": string(), "field": nullable(string())})}
        ),
        "Health": obj({"status": string(enum=["ok"])}),
        "Readiness": obj(
            {
                "status": string(enum=["ready", "not_ready"]),
                "checks": obj({name: string() for name in ("database", "broker", "storage")}),
            }
        ),
        "Dataset": obj(
            {
                "id": string(),
                "name": string(pattern=DATASET_NAME.pattern),
                "owner": string(),
                "size_bytes": integer(),
                "sha256": string(pattern="^[0-9a-f]{64}$"),
                "arrays": {
                    "type": "object",
                    "propertyNames": {"enum": list(ARRAY_NAMES)},
                    "additionalProperties": array_info,
                },
                "created_at": timestamp(),
            }
        ),
        "DatasetList": obj({"items": array(ref("Dataset"))}),
        "DatasetDeleted": obj(
            {"name": string(), "owner": string(), "deleted": {"type": "boolean", "const": True}}
        ),
        "JobDeleted": obj(
            {
                "id": string(),
                "deleted_jobs": {
                    **array(string()),
                    "description": "the job, then the sampling jobs deleted with it",
                },
            }
        ),
        "Usage": obj(
            {
                "owner": string(),
                "datasets": obj(
                    {"count": integer(), "bytes": integer()}
                    | {"max_count": integer(1), "max_bytes": integer(1)}
                ),
                "artifacts": obj({"count": integer(), "bytes": integer()}),
                "total_bytes": integer(description="datasets and artifacts: what the quota counts"),
                "quota_bytes": nullable(integer(1, description="GENTRAIN_OWNER_QUOTA_BYTES")),
                "retain_days": nullable({"type": "number", "exclusiveMinimum": 0}),
            }
        ),
        "Metric": obj(
            {
                "step": integer(description="the epoch (1-based) or, for a GAN, the global step"),
                "values": {
                    "type": "object",
                    "additionalProperties": {"type": ["number", "null"]},
                    "description": "null: the value was not finite (inf or NaN)",
                },
                "seconds": nullable({"type": "number"}),
                "at": timestamp(),
            }
        ),
        "MetricList": obj(
            {"job_id": string(), "items": array(ref("Metric")), "total": integer()}
            | {"limit": integer(1), "offset": integer(), "after_step": integer()}
            | {"next_after_step": nullable(integer(description="after_step of the next page"))}
        ),
        "ArtifactList": obj(
            {"job_id": string(), "items": array(ref("Artifact")), "total": integer()}
            | {"limit": integer(1), "offset": integer()}
        ),
        "Artifact": obj(
            {
                "name": string(examples=["samples/reconstructions.png", "model.keras"]),
                "size_bytes": integer(),
                "content_type": string(),
                "sha256": string(pattern="^[0-9a-f]{64}$"),
                "created_at": timestamp(),
                "url": string(format="uri"),
            }
        ),
        "JobLog": obj(
            {"job_id": string(), "attempts": array(integer(1)), "attempt": nullable(integer(1))}
            | {"offset": integer(), "next_offset": integer(description="offset of what follows")}
            | {"text": string(), "truncated": {"type": "boolean"}}
            | {"finished": {"type": "boolean", "description": "the job ended: no more will come"}}
        ),
        "JobEvent": obj(
            {"status": enum_of(JobStatus), "at": timestamp(), "message": nullable(string())}
        ),
        "JobSummary": obj(summary),
        "Job": obj(full),
        "JobListItem": obj(
            summary
            | {
                "key_result": obj(
                    {"name": string(examples=["test_accuracy"]), "value": {"type": "number"}},
                    optional=("name", "value"),
                    description="the kind's headline result (empty until there is one)",
                )
            }
        ),
        "JobList": obj(
            {"items": array(ref("JobListItem")), "total": integer(), "limit": integer(1)}
            | {"offset": integer()}
        ),
        "JobSubmission": {
            "oneOf": [ref(f"{spec.name.capitalize()}Submission") for spec in specs],
            "discriminator": {
                "propertyName": "kind",
                "mapping": {
                    spec.name: ref(f"{spec.name.capitalize()}Submission")["$ref"] for spec in specs
                },
            },
        },
        "SampleRequest": obj(
            {"params": sample_params, "priority": PRIORITY}, optional=("params", "priority")
        ),
    }
    for model in sample_models:
        result[model.__name__] = params_schema(model, caps)
    for spec in specs:
        result[f"{spec.name.capitalize()}Submission"] = submission_schema(spec)
        result[f"{spec.name.capitalize()}Params"] = params_schema(spec.params, caps)
    return result | sweep_schemas()


def parameter(name: str, where: str, schema: Schema, description: str = "") -> Schema:
    """A path (required), query or header parameter."""
    result: Schema = {"name": name, "in": where, "schema": schema}
    if where == "path":
        result["required"] = True
    if description:
        result["description"] = description
    return result


def parameters(settings: Settings) -> dict[str, Schema]:
    """Reusable path, query and header parameters."""
    most = settings.max_page_size
    return {
        "PageLimit": parameter("limit", "query", integer(1, maximum=most, default=min(100, most))),
        "MetricLimit": parameter("limit", "query", integer(1, maximum=most, default=most)),
        "AfterStep": parameter(
            "after_step", "query", integer(maximum=10**9, default=0), "rows of later steps only"
        ),
        "Owner": parameter(
            "owner", "query", string(), "admins: the owner whose dataset it is (default: own)"
        ),
        "UsageOwner": parameter(
            "owner", "query", string(), "admins: the owner whose usage to show (default: own)"
        ),
        "JobId": parameter("job_id", "path", string(minLength=1)),
        "SweepId": parameter("sweep_id", "path", string(minLength=1)),
        "DatasetName": parameter("name", "path", string(minLength=1)),
        "ArtifactName": parameter(
            "name", "path", string(minLength=1), "may contain '/', e.g. samples/grid.png"
        ),
        "LogAttempt": parameter(
            "attempt", "query", integer(1, maximum=logs.MAX_ATTEMPT), "one attempt's log only"
        ),
        "LogOffset": parameter(
            "offset",
            "query",
            integer(maximum=logs.MAX_OFFSET, default=0),
            "characters of the log (the job's, or the attempt's) to skip",
        ),
        "Logs": parameter("logs", "query", enum_of(["0", "1", "true", "false"]), "log lines too"),
        "LastEventId": parameter(
            "Last-Event-ID",
            "header",
            string(minLength=1, maxLength=200000),
            "resume after this event (browsers' EventSource sends it when reconnecting)",
        ),
        "LastEventIdQuery": parameter(
            "last_event_id",
            "query",
            string(minLength=1, maxLength=200000),
            "the same, for a first connection that cannot set headers",
        ),
        "Status": parameter("status", "query", enum_of(JobStatus)),
        "Kind": parameter("kind", "query", enum_of(job_kinds())),
        "Priority": parameter("priority", "query", integer(PRIORITY_MIN, maximum=PRIORITY_MAX)),
        "Sort": parameter(
            "sort",
            "query",
            enum_of(["created", "priority"]),
            "created (default): newest first; priority: highest first, then newest",
        ),
        "IdPrefix": parameter(
            "id_prefix",
            "query",
            string(pattern="^[0-9a-f]{6,32}$"),
            "only jobs whose id starts with this (what the CLI's short ids resolve with)",
        ),
        "SweepIdPrefix": parameter(
            "id_prefix",
            "query",
            string(pattern="^[0-9a-f]{6,32}$"),
            "only sweeps whose id starts with this (what the CLI's short ids resolve with)",
        ),
        "Limit": parameter("limit", "query", integer(1, maximum=500, default=50)),
        "Offset": parameter("offset", "query", integer(maximum=10**9, default=0)),
        "IdempotencyKey": parameter(
            "Idempotency-Key",
            "header",
            string(minLength=1, maxLength=128),
            "repeat a submission safely: the same key answers with the first job",
        ),
        "Redirect": parameter(
            "redirect", "query", string(default="1"), "0 or false: stream instead of redirecting"
        ),
    }


def error_responses() -> dict[str, Any]:
    """The reusable error responses, all in the Error shape."""
    result: dict[str, Any] = {}
    for status, (name, description) in ERRORS.items():
        headers = None
        if status == 401:
            headers = {"WWW-Authenticate": header('always `Bearer realm="gentrain"`')}
        elif status == 429:
            headers = {"Retry-After": header("seconds to wait", integer())}
        result[name] = response(description, ref("Error"), headers=headers)
    return result


def found(schema: str, status: int = 200, description: str = "", **extra: Any) -> dict[int, Any]:
    """A successful JSON answer of the component ``schema``."""
    return {status: response(description or f"A {schema}.", ref(schema), **extra)}


def camel(name: str) -> str:
    """``get_job`` -> ``getJob``."""
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def operation(
    route: str,
    view: Callable[..., Any],
    responses: dict[int, Any],
    extra: str = "",
    body: dict[str, Any] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """``route`` ("get /path") as an operation named and summarised after its view function.

    ``extra`` lists the error statuses (numbers) and parameter components (names) it has; every
    operation but the public ones may also answer 401."""
    method, path = route.split()
    public = path in PUBLIC_PATHS
    codes = [int(word) for word in extra.split() if word.isdigit()] + ([] if public else [401])
    params = [ref(word, "parameters") for word in extra.split() if not word.isdigit()]
    answers = {str(status): value for status, value in responses.items()}
    answers.update({str(code): ref(ERRORS[code][0], "responses") for code in codes})
    summary = (view.__doc__ or "").strip().splitlines()[0].replace("``", "`")
    tag = path.split("/")[2] if path.startswith("/v1/") else "health"
    result: dict[str, Any] = {"operationId": camel(view.__name__), "summary": summary}
    result["tags"] = ["meta" if path in ("/v1/openapi.json", "/metrics") else tag]
    if params:
        result["parameters"] = params
    if body is not None:
        result["requestBody"] = body
    result["responses"] = dict(sorted(answers.items()))
    if public:
        result["security"] = []
    return path, method, result


def artifact_responses(settings: Settings) -> dict[int, Any]:
    """The file itself, or (S3) a redirect to a presigned URL."""
    file_headers = {
        "Content-Length": header("size in bytes", integer()),
        "Content-Disposition": header('attachment; filename="..."'),
    }
    location = {"Location": header("the presigned URL", string(format="uri"))}
    return {
        200: {
            "description": "The file.",
            "headers": file_headers,
            "content": {media: {"schema": BINARY} for media in ("image/png", OCTETS)},
        },
        302: {
            "description": f"S3 only: a presigned URL, valid {settings.presign_seconds} seconds.",
            "headers": location,
            "content": {"text/html": {"schema": string()}},
        },
    }


JOB_EVENTS = """Server-Sent Events, each `id:`, `event:` and one `data:` line of JSON with the
`job_id` and `at`: `status` (status, message, attempt; results at success), `progress`
(progress, eta_seconds), `metrics` (step, values, seconds, attempt), `artifact` (name,
size_bytes, content_type, url), `log` (attempt, offset, job_offset, text; with logs=1). What
already happened comes first; a `: keep-alive` comment follows every 15 s of silence; the stream
ends after the terminal status."""
LIST_EVENTS = """Server-Sent Events of the caller's jobs (an admin's: everyone's): `status` and
`progress`, each with the job's `job_id`, `kind`, `model_kind`, `dataset`, `parent_id` and
`created_at`; a job's first `status` (queued) is its creation. From the start, or after
`Last-Event-ID`; keep-alive comments; it does not end by itself."""


PROMETHEUS_TEXT = {
    200: {
        "description": (
            "Prometheus text exposition: requests by route, jobs by kind and status, queues, "
            "heartbeats, storage per owner. Needs an admin key, except from this machine when "
            "GENTRAIN_AUTH is not `required`."
        ),
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def event_stream(description: str) -> dict[int, Any]:
    """A text/event-stream answer."""
    return {
        200: {"description": description, "content": {"text/event-stream": {"schema": string()}}}
    }


def paths(settings: Settings) -> dict[str, Any]:
    """Every path and method served by ``services/api/routes``."""
    from services.api.routes import openapi as route  # imports this module

    location = {"Location": header("the job's URL, /v1/jobs/{job_id}")}
    queued = found("Job", 202, "Accepted: the job, queued.", headers=location, links=job_links())
    form = obj(
        {"file": BINARY, "name": string(pattern=DATASET_NAME.pattern)},
        optional=("name",),
        description="name defaults to the file's name without .npz",
    )
    encoding = {"file": {"contentType": OCTETS}}
    upload = {"required": True, "content": {FORM: {"schema": form, "encoding": encoding}}}
    submit = {"required": True, "content": json_content(ref("JobSubmission"))}
    sample = {"required": False, "content": json_content(ref("SampleRequest"))}
    stored = found("Dataset", 201, "Stored.", links={"getDataset": DATASET_LINK})
    ready = found("Readiness", 200, "Ready.") | found("Readiness", 503, "Not ready: see checks.")
    document = {200: response("This document.", {"type": "object"})}
    files = artifact_responses(settings)
    job = "/v1/jobs/{job_id}"
    resume = "LastEventId LastEventIdQuery"
    artifact, by_name = f"{job}/artifacts/{{name}}", "/v1/datasets/{name}"
    table = [
        operation("get /healthz", health.healthz, found("Health")),
        operation("get /readyz", health.readyz, ready),
        operation("get /v1/openapi.json", route.openapi_json, document),
        operation("post /v1/datasets", datasets.upload_dataset, stored, "400 409 413 422", upload),
        operation("get /v1/datasets", datasets.list_datasets, found("DatasetList")),
        operation(
            f"get {by_name}", datasets.get_dataset, found("Dataset"), "404 409 DatasetName Owner"
        ),
        operation(
            "post /v1/jobs",
            jobs.submit_job,
            queued,
            "400 403 409 413 415 422 429 IdempotencyKey",
            submit,
        ),
        operation(
            "get /v1/jobs",
            jobs.list_jobs,
            found("JobList"),
            "422 Status Kind Priority Sort IdPrefix Limit Offset",
        ),
        operation(f"get {job}", jobs.get_job, found("Job"), "404 JobId"),
        operation(
            f"get {job}/metrics",
            jobs.get_metrics,
            found("MetricList"),
            "404 422 JobId MetricLimit Offset AfterStep",
        ),
        operation(
            f"get {job}/artifacts",
            jobs.list_artifacts,
            found("ArtifactList"),
            "404 422 JobId PageLimit Offset",
        ),
        operation(
            f"get {job}/logs", logs.get_logs, found("JobLog"), "404 422 JobId LogAttempt LogOffset"
        ),
        operation(
            f"get {job}/events",
            events.job_stream,
            event_stream(JOB_EVENTS),
            f"404 422 JobId Logs {resume}",
        ),
        operation("get /v1/events", events.list_stream, event_stream(LIST_EVENTS), f"422 {resume}"),
        operation(f"post {job}/cancel", jobs.cancel_job, found("Job", 202), "404 409 JobId"),
        operation(
            f"post {job}/samples",
            jobs.sample_job,
            queued,
            "400 403 404 409 413 415 422 429 JobId",
            sample,
        ),
        operation(f"get {artifact}", jobs.get_artifact, files, "404 JobId ArtifactName Redirect"),
        operation(f"delete {job}", removal.delete_job, found("JobDeleted"), "404 409 JobId"),
        operation(
            f"delete {by_name}",
            removal.delete_dataset,
            found("DatasetDeleted"),
            "404 409 DatasetName Owner",
        ),
        operation("get /v1/usage", removal.get_usage, found("Usage"), "404 UsageOwner"),
        operation("get /metrics", prometheus.metrics, PROMETHEUS_TEXT, "403"),
        *sweep_operations(operation, found, header),
    ]
    result: dict[str, dict[str, Any]] = {}
    for path, method, spec in table:
        result.setdefault(path, {})[method] = spec
    return result


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of the API as configured by ``settings``."""
    security: list[dict[str, list[str]]] = [
        {"bearerAuth": []},
        {"apiKeyHeader": []},
        {"dashboardSession": []},
    ]
    if not settings.auth_required:
        security.append({})  # this deployment (loopback only) accepts requests without a key
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "gentrain",
            "version": "1",
            "description": (
                "Training job queue for small generative image models. Every error is "
                '`{"error": {"code", "message", "field"}}`; request bodies are limited to '
                f"{settings.max_upload_bytes} bytes (uploads) and {settings.max_json_bytes} "
                f"bytes, nested at most {settings.max_json_depth} deep (JSON). Every response "
                "carries an `X-Request-ID` header: the client's own if it sent a sane one (1-128 "
                "of `A-Za-z0-9._:+/=-`), else a fresh one; the API's log lines name it."
            ),
        },
        "servers": [{"url": "/"}],
        "security": security,
        "tags": [{"name": name} for name in ("health", "meta", "datasets", "jobs", "sweeps")],
        "paths": paths(settings),
        "components": {
            "schemas": schemas(settings),
            "parameters": parameters(settings),
            "responses": error_responses(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key from `gentrain keys create`",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "dashboardSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": (
                        "the dashboard's session, set by signing in at `/ui/signin` with a key "
                        f"(what an `EventSource` sends); a POST or DELETE with it also needs the "
                        f"page's CSRF token in `{CSRF_HEADER}` or the form field `{CSRF_FIELD}`"
                    ),
                },
            },
        },
    }
