"""A small HTTP client for the gentrain API, used by the CLI's client commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests


class ApiClientError(Exception):
    """The API answered with an error (``status``), or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def unreachable(base_url: str) -> str:
    """The one line said when nothing answers at ``base_url``."""
    return (
        f"the gentrain API is not reachable at {base_url}: start it with `gentrain up` "
        "(or point --api-url / GENTRAIN_API_URL at a running one)"
    )


class ApiClient:
    """Calls the v1 API at ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        if api_key:
            self.http.headers["Authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            kwargs.setdefault("timeout", self.timeout)
            response = self.http.request(method, f"{self.base_url}{path}", **kwargs)
        except requests.Timeout:
            message = (
                f"the gentrain API at {self.base_url} did not answer within {self.timeout:g} s"
            )
            raise ApiClientError(message) from None
        except requests.ConnectionError:
            raise ApiClientError(unreachable(self.base_url)) from None
        except requests.RequestException as error:
            name = type(error).__name__
            raise ApiClientError(f"request to {self.base_url} failed ({name})") from None
        if response.status_code >= 400:
            try:
                detail = response.json()["error"]
                field = f" (field: {detail['field']})" if detail.get("field") else ""
                message = f"{response.status_code} {detail['code']}: {detail['message']}{field}"
            except (ValueError, KeyError, TypeError):
                message = f"{response.status_code}: {response.text[:200]}"
            raise ApiClientError(message, response.status_code)
        return response

    def open_stream(
        self, path: str, params: dict[str, str], headers: dict[str, str], read_timeout: float
    ) -> requests.Response:
        """An open text/event-stream response (read it line by line, then close it)."""
        return self._call(
            "GET",
            path,
            params=params,
            headers={"Accept": "text/event-stream", **headers},
            stream=True,
            timeout=(self.timeout, read_timeout),
        )

    def upload_dataset(self, path: Path, name: str | None) -> dict[str, Any]:
        """Upload an ``.npz`` dataset."""
        with path.open("rb") as handle:
            data = {"name": name} if name else {}
            result: dict[str, Any] = self._call(
                "POST", "/v1/datasets", files={"file": (path.name, handle)}, data=data
            ).json()
            return result

    def list_datasets(self) -> list[dict[str, Any]]:
        """All datasets."""
        items: list[dict[str, Any]] = self._call("GET", "/v1/datasets").json()["items"]
        return items

    def submit(
        self, kind: str, dataset: str, params: dict[str, Any], priority: int | None = None
    ) -> dict[str, Any]:
        """Submit a training job (``priority`` None: the API's default)."""
        body: dict[str, Any] = {"kind": kind, "dataset": dataset, "params": params}
        if priority is not None:
            body["priority"] = priority
        job: dict[str, Any] = self._call("POST", "/v1/jobs", json=body).json()
        return job

    def sample(
        self, job_id: str, params: dict[str, Any], priority: int | None = None
    ) -> dict[str, Any]:
        """Submit a sampling job from a trained job."""
        body: dict[str, Any] = {"params": params}
        if priority is not None:
            body["priority"] = priority
        job: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/samples", json=body).json()
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        """One job's full state."""
        job: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}").json()
        return job

    def dataset(self, name: str, owner: str | None = None) -> dict[str, Any]:
        """One dataset by name (an admin may name another ``owner``'s)."""
        params = {"owner": owner} if owner else {}
        dataset: dict[str, Any] = self._call("GET", f"/v1/datasets/{name}", params=params).json()
        return dataset

    def artifacts(self, job_id: str, limit: int | None = None, offset: int = 0) -> dict[str, Any]:
        """A page of a job's artifacts (the job view shows only the newest)."""
        params = {"offset": offset} | ({"limit": limit} if limit else {})
        page: dict[str, Any] = self._call(
            "GET", f"/v1/jobs/{job_id}/artifacts", params=params
        ).json()
        return page

    def all_artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """Every artifact of a job, page by page, in the order they were made."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.artifacts(job_id, offset=len(items))
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items

    def metrics(self, job_id: str, limit: int | None = None, after_step: int = 0) -> dict[str, Any]:
        """A page of a job's metrics, steps after ``after_step``."""
        params = {"after_step": after_step} | ({"limit": limit} if limit else {})
        page: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}/metrics", params=params).json()
        return page

    def all_metrics(self, job_id: str, after_step: int = 0) -> list[dict[str, Any]]:
        """Every metrics row of a job after ``after_step``, page by page, in step order."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.metrics(job_id, after_step=after_step)
            items.extend(page["items"])
            if page.get("next_after_step") is None:
                return items
            after_step = page["next_after_step"]

    def logs(self, job_id: str, attempt: int | None = None, offset: int = 0) -> dict[str, Any]:
        """A job's log from ``offset`` (the whole job's, or ``attempt``'s), with next_offset."""
        params = {"offset": offset} | ({"attempt": attempt} if attempt else {})
        page: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}/logs", params=params).json()
        return page

    def jobs(self, **filters: Any) -> dict[str, Any]:
        """A page of jobs."""
        params = {k: v for k, v in filters.items() if v is not None}
        page: dict[str, Any] = self._call("GET", "/v1/jobs", params=params).json()
        return page

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job."""
        job: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/cancel").json()
        return job

    def submit_sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a sweep (``POST /v1/sweeps``)."""
        sweep: dict[str, Any] = self._call("POST", "/v1/sweeps", json=body).json()
        return sweep

    def sweeps(self, **filters: Any) -> dict[str, Any]:
        """A page of sweeps, newest first."""
        params = {k: v for k, v in filters.items() if v is not None}
        page: dict[str, Any] = self._call("GET", "/v1/sweeps", params=params).json()
        return page

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        """A sweep with its trials' table."""
        sweep: dict[str, Any] = self._call("GET", f"/v1/sweeps/{sweep_id}").json()
        return sweep

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        """Cancel a sweep: no more trials, and its queued and running ones cancelled."""
        sweep: dict[str, Any] = self._call("POST", f"/v1/sweeps/{sweep_id}/cancel").json()
        return sweep

    def download(self, job_id: str, name: str, target: Path) -> int:
        """Save an artifact to ``target``; returns its size in bytes."""
        response = self._call("GET", f"/v1/jobs/{job_id}/artifacts/{name}", stream=True)
        size = 0
        with target.open("wb") as handle:
            for chunk in response.iter_content(1024 * 1024):
                handle.write(chunk)
                size += len(chunk)
        return size

    def delete_job(self, job_id: str) -> dict[str, Any]:
        """Delete an ended job and its sampling jobs (409 while one has not ended)."""
        result: dict[str, Any] = self._call("DELETE", f"/v1/jobs/{job_id}").json()
        return result

    def delete_dataset(self, name: str, owner: str | None = None) -> dict[str, Any]:
        """Delete a dataset (409 while a queued or running job uses it)."""
        params = {"owner": owner} if owner else {}
        path = f"/v1/datasets/{name}"
        result: dict[str, Any] = self._call("DELETE", path, params=params).json()
        return result

    def prometheus_text(self) -> str:
        """The service's Prometheus metrics (``GET /metrics``; an admin key off this machine)."""
        return self._call("GET", "/metrics").text

    def usage(self, owner: str | None = None) -> dict[str, Any]:
        """What the caller (an admin: ``owner``) stores, against the quota."""
        params = {"owner": owner} if owner else {}
        result: dict[str, Any] = self._call("GET", "/v1/usage", params=params).json()
        return result
