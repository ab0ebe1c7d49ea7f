"""Case 6: security. Function keys on every HTTP function, every query parameter validated,
opaque and checked continuation tokens, Table filters that take values only as parameters,
reprocessing confined to the export container, no secrets in logs or error bodies, and
configurable limits on file and row size."""

from __future__ import annotations

import ast
import base64
import dataclasses
import itertools
import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import orjson
import pytest

from shared import bootstrap
from shared.adapters.local_files import LocalFileSource
from shared.adapters.memory import MemoryLedger, MemoryStore
from shared.core.ingest.reconciler import reconcile
from shared.core.ingest.service import Ports, ingest_file
from shared.core.mapping import derived_customer_id
from shared.core.paging import bind_token, encode_cursor, query_scope
from shared.settings import Settings
from tests.azurite import ACCOUNT_KEY, Azurite, free_port
from tests.reliability import summary
from tests.reliability.corpus import CORPUS
from tests.reliability.delivery import FUNCTIONS, Container, Upload, call, event
from tests.reliability.stores import CONFIG, ROOT, Backend, python

pytestmark = pytest.mark.azurite
ADAPTERS = ROOT / "shared" / "adapters"
# Customer keys and event ids that would change a query if they were pasted into it.
ODD_KEYS = (
    "R' or '1' eq '1", "x' or PartitionKey ne '", "k eq 'x'", "%", "_", "a\\b", "R-001' and true",
    "(' or RowKey gt ')", "\u00e9' or ''='",
)  # fmt: skip
HTTP_ROUTES = {
    "customers/{id}": "get_customer", "customers/{id}/activities": "get_timeline",
    "customers": "search_customers", "activities": "list_activities", "status": "get_status",
    "rejects": "list_rejects", "files": "list_files", "config/check": "check_config",
}  # fmt: skip


def _check(case: str, ok: bool) -> None:
    summary.record(case, ok)


def _odd_files() -> dict[str, bytes]:
    customers = "CustomerRetailId,FullName,Email,City\n" + "".join(
        f'"{k.replace(chr(34), chr(34) * 2)}",Odd {i},odd{i}@example.com,Quoteville\n'
        for i, k in enumerate(ODD_KEYS)
    )
    header = "Signal.Export.Id,Signal.Timestamp,Signal.Name,Signal.Action.Name,Signal.User.Id\n"
    events = header + "".join(
        f'"odd-{i}\'",2021-09-29T22:{i:02d}:00Z,PageAction,Email promotion,"{k}"\n'
        for i, k in enumerate(ODD_KEYS)
    )
    return {"RetailCustomers/odd.csv": customers.encode(), "EmailPromotion/2021/09/29/22/odd.csv": events.encode()}


@dataclasses.dataclass
class Api:
    backend: str
    box: Container

    def get(self, route: str, **params: str) -> tuple[int, Any]:
        self.box.activate()
        route_params = {"id": params.pop("id")} if "id" in params else {}
        req = func.HttpRequest("GET", f"http://localhost/api/{route}", params=params,
                               route_params=route_params, body=b"")  # fmt: skip
        response = call(HTTP_ROUTES[route], req)
        assert response.mimetype == "application/json"
        return response.status_code, orjson.loads(response.get_body())

    def reprocess(self, body: bytes) -> tuple[int, Any]:
        self.box.activate()
        response = call("reprocess", func.HttpRequest("POST", "http://localhost/api/reprocess", body=body))
        return response.status_code, orjson.loads(response.get_body())


@pytest.fixture(scope="module")
def api(backend: Backend, azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The HTTP functions over the corpus and the odd-keyed customers, on this backend."""
    root = CORPUS.write(tmp_path_factory.mktemp("security") / "export")
    for path, data in _odd_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    store = backend.fresh()
    profile, ledger = store.open()
    report = reconcile(Ports(LocalFileSource(root), profile, ledger), CONFIG)
    profile.close()
    assert report.failed == 0, report.to_record()
    with Container(azurite, store) as box:
        box.upload("EmailPromotion/2021/09/29/10/part-0000.csv", CORPUS.files["EmailPromotion/2021/09/29/10/part-0000.csv"])
        box.client.upload_blob("outside.csv", b"CustomerRetailId\nR-666\n")  # beside the prefix
        yield Api(backend.name, box)


# -- function keys -------------------------------------------------------------------------


def test_every_http_function_needs_a_function_key() -> None:
    # All but the web UI's static files ("ui"), which are public and hold no data.
    http = {
        name: f.get_trigger().get_dict_repr() for name, f in FUNCTIONS.items()
        if f.get_trigger().get_binding_name() == "httpTrigger" and name != "ui"
    }  # fmt: skip
    # The segment routes and erasure (SPEC §9, §11) are behind the key too.
    audiences = {"list_segments", "segment_members", "segment_changes", "erase_customer", "get_visitor"}
    assert set(http) == {*HTTP_ROUTES.values(), "reprocess", "reconcile_now", *audiences}
    levels = {name: str(getattr(d["authLevel"], "value", d["authLevel"])) for name, d in http.items()}
    ok = all(level == "function" for level in levels.values())
    _check("6 security: function keys on HTTP functions", ok)
    assert ok, levels


# -- query parameters ----------------------------------------------------------------------


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


R1 = derived_customer_id("RetailCustomers", "R-001")
GOOD_ID = "0" * 32
BAD_QUERIES = [
    ("customers/{id}", {"id": "x" * 1025}, "customer id"),
    ("customers/{id}", {"id": "a\x00b"}, "customer id"),
    ("customers/{id}", {"id": "a\nb"}, "customer id"),
    ("customers/{id}/activities", {"id": "x" * 5000}, "customer id"),
    *[("customers/{id}/activities", {"id": R1, "limit": v}, "limit")
      for v in ("0", "-1", "501", "abc", "1e3", " 5", "5.0", "99999999999", "\u0665", "\u00b2")],
    *[("customers/{id}/activities", {"id": R1, "from": v}, "from")
      for v in ("tuesday", "2021-13-01", "9999-12-31T23:59:59-05:00", "0000-01-01", "2021-09-29T10:00:00Z' or '1")],
    ("customers/{id}/activities", {"id": R1, "to": "1e308"}, "to"),
    ("customers/{id}/activities", {"id": R1, "from": "2021-09-30", "to": "2021-09-29"}, "earlier"),
    ("customers/{id}/activities", {"id": R1, "type": "t" * 1025}, "type"),
    ("customers/{id}/activities", {"id": R1, "type": "a\x01"}, "type"),
    *[("customers/{id}/activities", {"id": R1, "continuation": t}, "continuation") for t in (
        "%%%", "x" * 300, _token(["2021-09-29T10:00:00.000Z"]), _token({"a": 1}), _token([1, 2]),
        _token(["' or 1 eq 1", GOOD_ID]), _token(["2021-09-29T10:00:00.000Z", "' or RowKey gt '"]),
        _token(["2021-09-29T10:00:00.000Z", GOOD_ID, "extra"]), "AAAA", "",  # "" means none: skipped
    ) if t],
    ("customers", {"q": ""}, "search text"),
    ("customers", {"q": "   "}, "search text"),
    ("customers", {"q": "x" * 1025}, "search text"),
    ("customers", {"q": "a\x00"}, "search text"),
    ("customers", {"q": "R", "limit": "0"}, "limit"),
    ("customers", {"q": "R", "limit": "101"}, "limit"),
    ("activities", {"unmatched": "perhaps"}, "unmatched"),
    ("activities", {"limit": "0"}, "limit"),
    ("activities", {"limit": "10001"}, "limit"),
    ("activities", {"limit": "-5"}, "limit"),
    ("activities", {"type": "t" * 1025}, "type"),
    *[(route, params, "continuation") for route, params in (
        ("activities", {}), ("customers", {"q": "R"}), ("rejects", {}), ("files", {}),
    ) for t in ("%%%", "x" * 5000, _token(["files", "0" * 12, "' or 1 eq 1"]), _token([1]))
      for params in [{**params, "continuation": t}]],
    ("rejects", {"file": "a\x00b"}, "file"),
    ("rejects", {"limit": "501"}, "limit"),
    ("files", {"status": "' or 1 eq 1"}, "status"),
    ("files", {"limit": "-1"}, "limit"),
]


def test_every_query_parameter_is_validated(api: Api) -> None:
    failures = []
    for route, params, word in BAD_QUERIES:
        status, body = api.get(route, **dict(params))
        ok = status == 400 and isinstance(body.get("error"), str) and word in body["error"]
        ok = ok and "Traceback" not in body["error"]
        _check(f"6 security: bad query parameters / {api.backend}", ok)
        if not ok:
            failures.append((route, params, status, body))
    assert not failures, failures


def test_a_continuation_token_is_opaque_and_round_trips(api: Api) -> None:
    customer = derived_customer_id("RetailCustomers", "R-008")
    status, first = api.get("customers/{id}/activities", id=customer, limit="2")
    token = first["continuation"]
    ok = status == 200 and token and re.fullmatch(r"[A-Za-z0-9_-]+", token) is not None
    status, second = api.get("customers/{id}/activities", id=customer, limit="2", continuation=token)
    seen = [a["ActivityId"] for a in first["activities"] + second["activities"]]
    ok = bool(ok and status == 200 and len(seen) == len(set(seen)) == 4)
    # Well formed and bound to this query: simply a position (the binding guards against
    # mistakes, it is no secret). A cursor bound to no query, or to another, is refused.
    position = encode_cursor("2021-09-29T10:00:00.000Z", GOOD_ID)
    forged = bind_token(position, query_scope("timeline", customer, [], None, None))
    ok = ok and api.get("customers/{id}/activities", id=customer, continuation=forged)[0] == 200
    ok = ok and api.get("customers/{id}/activities", id=customer, continuation=position)[0] == 400
    elsewhere = bind_token(position, query_scope("timeline", "someone else", [], None, None))
    ok = ok and api.get("customers/{id}/activities", id=customer, continuation=elsewhere)[0] == 400
    _check(f"6 security: continuation tokens / {api.backend}", ok)
    assert ok, (first, second)


# -- Table queries -------------------------------------------------------------------------

_ODATA = re.compile(r"\b(eq|ne|gt|ge|lt|le)\b")


def test_table_filters_take_values_only_as_parameters() -> None:
    """No OData filter in the adapters quotes a value or formats one in: only @parameters."""
    found = []
    for module in sorted(ADAPTERS.glob("azure_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ODATA.search(node.value):
                if "'" in node.value:
                    found.append(f"{module.name}:{node.lineno}: quoted value in {node.value!r}")
            elif isinstance(node, ast.JoinedStr):
                parts = node.values
                text = "".join(p.value for p in parts if isinstance(p, ast.Constant))
                if not _ODATA.search(text):
                    continue
                for before, part in itertools.pairwise(parts):
                    if isinstance(part, ast.FormattedValue) and not (
                        isinstance(before, ast.Constant) and re.search(r"@\w*$", before.value)
                    ):
                        found.append(f"{module.name}:{node.lineno}: a value formatted into a filter")
    _check("6 security: parameterised Table filters", not found)
    assert not found, found


def test_quotes_and_odata_operators_in_ids_reach_only_their_own_records(api: Api) -> None:
    failures = []
    for i, key in enumerate(ODD_KEYS):
        customer = derived_customer_id("RetailCustomers", key)
        status, profile = api.get("customers/{id}", id=customer)
        ok = status == 200 and [k["Key"] for k in profile["AlternateKeys"]] == [key]
        status, card = api.get("customers/{id}/activities", id=customer)
        ok = ok and status == 200 and [a["SourceActivityId"] for a in card["activities"]] == [f"odd-{i}'"]
        status, found = api.get("customers", q=key)
        ok = ok and status == 200 and [c["CustomerId"] for c in found] == [customer]
        if not ok:
            failures.append((key, profile, card, found))
        _check(f"6 security: quotes and OData operators in ids / {api.backend}", ok)
    for injected in ("' or 1 eq 1 or '", "x' or PartitionKey ne 'x", "*", "%27"):
        status, _ = api.get("customers/{id}", id=injected)
        status_types, card = api.get("customers/{id}/activities", id=R1, type=injected)
        status_preview, preview = api.get("activities", type=injected)
        ok = status == 404 and status_types == 200 and card["activities"] == [] and preview == []
        ok = ok and status_preview == 200
        if not ok:
            failures.append((injected, status, card, preview))
        _check(f"6 security: quotes and OData operators in ids / {api.backend}", ok)
    assert not failures, failures


# -- reprocess -----------------------------------------------------------------------------


def test_reprocess_cannot_reach_outside_the_export_container(api: Api) -> None:
    refused = [
        "../outside.csv", "../../other/EmailPromotion/x.csv", "/outside.csv", "a/../../outside.csv",
        "..\\outside.csv", "https://127.0.0.1/devstoreaccount1/other/x.csv", "blob:other/x.csv",
        "EmailPromotion/./x.csv", "EmailPromotion//x.csv", "EmailPromotion/\x00.csv", "x" * 2000, "..",
    ]  # fmt: skip
    failures = [(p, r) for p in refused if (r := api.reprocess(orjson.dumps({"path": p})))[0] != 400]
    for body in (b"not json", b"[]", orjson.dumps({"path": 7}), orjson.dumps({"path": ""}), b"{}"):
        if (result := api.reprocess(body))[0] != 400:
            failures.append((body, result))
    # Beside the export prefix, or encoded to look like a way out: simply not found inside it.
    for path in ("outside.csv", "%2e%2e/outside.csv", "..%2foutside.csv"):
        if (result := api.reprocess(orjson.dumps({"path": path})))[0] != 404:
            failures.append((path, result))
    status, report = api.reprocess(orjson.dumps({"path": "EmailPromotion/2021/09/29/10/part-0000.csv"}))
    if status != 200 or report["status"] != "done":
        failures.append(("the one real file", (status, report)))
    _check(f"6 security: reprocess stays in the export container / {api.backend}", not failures)
    assert not failures, failures


# -- secrets -------------------------------------------------------------------------------

SAS_SECRET = "S3cr3tSignatureValue%3D"


def _bad_connections(azurite: Azurite) -> dict[str, str]:
    dead = free_port()
    good = azurite.connection_string
    return {
        "storage down": re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{dead}", good),
        "wrong account key": good.replace(ACCOUNT_KEY, ACCOUNT_KEY[::-1]),
        "SAS token": (f"BlobEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
                      f"TableEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
                      f"SharedAccessSignature=sv=2022-11-02&ss=bt&srt=sco&sp=rwl&sig={SAS_SECRET}"),
        "malformed": f"AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};Nonsense",
    }  # fmt: skip


def _leaks(text: str) -> list[str]:
    secrets = (ACCOUNT_KEY, ACCOUNT_KEY[::-1], ACCOUNT_KEY[:16], SAS_SECRET, "AccountKey=")
    return [s[:12] for s in secrets if s in text]


def test_no_key_or_connection_string_reaches_logs_or_error_bodies(
    azurite: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failures = []
    scenarios = {**_bad_connections(azurite), "connection string as store URL": ""}
    for name, connection in scenarios.items():
        settings = dataclasses.replace(
            Settings.from_env({}), store="azure-tables:", storage_connection=connection or azurite.connection_string,
            container="exports", table_prefix="secrets",
        )  # fmt: skip
        if not connection:
            settings = dataclasses.replace(settings, store=f"DefaultEndpointsProtocol=http;AccountKey={ACCOUNT_KEY}")
        bootstrap.use_settings(settings)
        try:
            seen = []
            for route, params in (("status", {}), ("customers/{id}", {"id": R1}), ("customers", {"q": "R"})):
                req = func.HttpRequest("GET", f"http://localhost/api/{route}", params=params,
                                       route_params={"id": params.get("id", "")}, body=b"")  # fmt: skip
                response = call(HTTP_ROUTES[route], req)
                seen.append(response.get_body().decode())
                if response.status_code != 503:
                    failures.append((name, route, response.status_code, seen[-1]))
            try:
                call("on_blob_created", event("exports", Upload("EmailPromotion/a.csv", "0x1", 10)))
                failures.append((name, "the event was taken as handled"))
            except Exception as exc:  # the host logs it and lets Event Grid redeliver
                seen.append(f"{type(exc).__name__}: {exc}")
            env = {"FOOTPRINT_STORAGE": connection or azurite.connection_string, "FOOTPRINT_STORE": settings.store}
            done = subprocess.run([python(), "-m", "shared", "status"], capture_output=True, text=True,
                                  env={"PATH": "/usr/bin:/bin", **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)  # fmt: skip
            seen.append(done.stderr + done.stdout)
            if done.returncode == 0 or "Traceback" in done.stderr:
                failures.append((name, "cli", done.returncode, done.stderr[-300:]))
            leaks = _leaks("\n".join(seen) + caplog.text)
            if leaks:
                failures.append((name, "leaked", leaks))
        finally:
            bootstrap.use_settings(None)
            caplog.clear()
        _check("6 security: no secrets in logs or error bodies", not any(f[0] == name for f in failures))
    assert not failures, failures


# -- limits --------------------------------------------------------------------------------


def test_file_and_row_size_limits_are_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"FOOTPRINT_MAX_FILE_BYTES": "4000", "FOOTPRINT_MAX_ROW_BYTES": "1024"})
    options = dataclasses.replace(bootstrap.ingest_options(settings), retry_base_seconds=0)
    folder = tmp_path / "EmailPromotion"
    folder.mkdir()
    header = "Signal.Export.Id,Signal.Timestamp,Signal.Action.Name,Signal.User.Id\n"
    line = "e{},2021-09-29T10:00:00Z,Email promotion,R-001\n"
    (folder / "big.csv").write_text(header + "".join(line.format(i) for i in range(200)))
    (folder / "wide.csv").write_text(header + line.format(1) + line.format("x" * 1500) + line.format(2))
    ports = Ports(LocalFileSource(tmp_path), MemoryStore(), MemoryLedger())
    big = ingest_file(ports, CONFIG, "EmailPromotion/big.csv", options)
    wide = ingest_file(ports, CONFIG, "EmailPromotion/wide.csv", options)
    reasons = [r.reason for r in ports.store.list_rejects(None)]
    ok = big.status == "failed" and "file larger than 4000 bytes" in (big.error or "")
    ok = ok and wide.status == "done" and wide.counts.activities == 2 and reasons == ["row larger than 1024 bytes"]
    _check("6 security: configurable file and row limits", ok)
    assert ok, (big, wide, reasons)
