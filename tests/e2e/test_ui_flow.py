"""The UI flow end to end: a real webserver and daemon, partition runs launched through Dagster's GraphQL
API, the late-data sensor turned on, and the backfill of the earlier partition merging its late fields."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import geopandas as gpd
import pytest
from dagster_graphql import DagsterGraphQLClient

from tests.e2e.e2e_support import MODULE, REPO, VENV_BIN, Deadline, Deployment

JOB = "publish_field_partition_job"
SENSOR = "late_data_backfill_sensor"
SCHEDULE = "publish_field_partition_job_schedule"
D1, D2 = "2025-01-01", "2025-01-02"
DONE = {"SUCCESS", "FAILURE", "CANCELED"}

WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { name
      jobs { name } sensors { name minIntervalSeconds sensorState { id selectorId status } }
      schedules { name cronSchedule scheduleState { id selectorId status } }
      assetNodes { assetKey { path } isPartitioned
        assetChecksOrError { ... on AssetChecks { checks { name } } } } } } } } } } }"""

RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs {
  results { runId status tags { key value } } } } }"""


def _loaded_repository(dep: Deployment) -> dict | None:
    entries = dep.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
    if not entries or entries[0]["loadStatus"] != "LOADED":
        return None
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    (repo,) = location["repositories"]
    return {"location": entries[0]["name"], **repo}


def _runs(dep: Deployment, **tags: str) -> list[dict]:
    variables = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
    results = dep.graphql(RUNS, variables)["runsOrError"]["results"]
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in results]


def _wait_for_run(client: DagsterGraphQLClient, deadline: Deadline, run_id: str, dep: Deployment) -> None:
    status = deadline.wait_for(
        f"run {run_id}", lambda: (s := client.get_run_status(run_id).value) in DONE and s, interval=1
    )
    assert status == "SUCCESS", f"run {run_id} ended {status}\n{dep.log_text()}"


def test_definitions_load_without_deprecation_warnings(tmp_path):
    code = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "warnings.simplefilter('error', FutureWarning)\n"
        f"from {MODULE} import defs\n"
        "repo = defs.get_repository_def()\n"
        "repo.load_all_definitions()\n"
        "print([s.name for s in repo.sensor_defs], [s.name for s in repo.schedule_defs])\n"
    )
    env = {**os.environ, "GEOSPATIAL_PIPELINE_CONFIG": str(REPO / "fixtures" / "config.yaml")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert SENSOR in done.stdout and SCHEDULE in done.stdout

    # The CLI's own check loads the code location as `dagster dev` does (it warns that it is itself
    # superseded by `dg check defs`, which tests/test_definitions.py runs; nothing about our definitions).
    validate = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-m", MODULE],
        env={**env, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "All code locations passed validation" in validate.stdout + validate.stderr
    noise = "definitions_validate_command` is superseded"
    lines = (validate.stdout + validate.stderr).splitlines()
    assert not [line for line in lines if "deprecat" in line.lower() and noise not in line]


@pytest.mark.slow
# The GraphQL client's own gql library warns about its internal call style; nothing of ours.
@pytest.mark.filterwarnings("ignore:Using variable_values and operation_name:DeprecationWarning")
def test_partition_runs_and_sensor_backfill_through_the_ui_api(deployment: Deployment):
    dep = deployment
    deadline = Deadline(170)
    dep.start_webserver()
    deadline.wait_for("the webserver", lambda: dep.graphql("{ version }"))
    repo = deadline.wait_for("the code location to load", lambda: _loaded_repository(dep))

    # What a user sees: the partitioned assets with their checks, the job, the sensor and the schedule.
    assets = {"/".join(a["assetKey"]["path"]): a for a in repo["assetNodes"]}
    assert set(assets) == {"field_boundaries", "late_field_arrivals", "rejected_field_records"}
    assert all(a["isPartitioned"] for a in assets.values())
    checks = {c["name"] for a in assets.values() for c in a["assetChecksOrError"].get("checks", [])}
    assert checks == {"geoparquet_metadata_valid", "records_conserved", "rejected_ratio_within_threshold"}
    assert JOB in {j["name"] for j in repo["jobs"]}
    (sensor,) = repo["sensors"]
    (schedule,) = repo["schedules"]
    assert (sensor["name"], sensor["sensorState"]["status"]) == (SENSOR, "RUNNING")
    assert (schedule["name"], schedule["cronSchedule"]) == (SCHEDULE, "30 0 * * *")

    # Like a user in the UI: the sensor and schedule are toggled off while days 1 and 2 are published,
    # so the test decides when the sensor looks (its interval is 2 minutes once it has ticked).
    selector = {"repositoryLocationName": repo["location"], "repositoryName": repo["name"]}
    dep.graphql(
        "mutation($id: String, $sel: String) { stopSensor(jobOriginId: $id, jobSelectorId: $sel) { __typename } }",
        {"id": sensor["sensorState"]["id"], "sel": sensor["sensorState"]["selectorId"]},
    )
    dep.graphql(
        "mutation($id: String, $sel: String) { stopRunningSchedule(scheduleOriginId: $id, "
        "scheduleSelectorId: $sel) { __typename } }",
        {"id": schedule["scheduleState"]["id"], "sel": schedule["scheduleState"]["selectorId"]},
    )
    assert _loaded_repository(dep)["sensors"][0]["sensorState"]["status"] == "STOPPED"
    dep.start_daemon()

    client = DagsterGraphQLClient("127.0.0.1", port_number=dep.port, timeout=30)
    for date in (D1, D2):  # one after the other: day 2's run finds late fields for day 1
        run_id = client.submit_job_execution(JOB, tags={"dagster/partition": date})
        _wait_for_run(client, deadline, run_id, dep)
    assert "F-101" not in set(_fields(dep, D1).field_id)

    dep.graphql(
        "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }",
        {"s": {**selector, "sensorName": SENSOR}},
    )
    backfills = deadline.wait_for(
        "the sensor's backfill run",
        lambda: [r for r in _runs(dep, **{"geospatial_pipeline/trigger": "late-data"}) if r["status"] in DONE],
        interval=1,
    )
    (backfill,) = backfills
    assert backfill["status"] == "SUCCESS", dep.log_text()
    assert backfill["tags"]["dagster/partition"] == D1
    assert backfill["tags"]["dagster/run_key"].startswith(f"late-data:{D1}:")
    assert backfill["tags"]["dagster/sensor_name"] == SENSOR

    fields = _fields(dep, D1).set_index("field_id")
    assert {"F-101", "F-001", "F-005"} <= set(fields.index)
    assert fields.loc["F-101"].arrived_late
    assert fields.loc["F-001"].arrived_late and json.loads(fields.loc["F-001"].data) == {"crop": "barley"}
    assert str(fields.loc["F-001"].detected_in) == D2
    manifest = json.loads((dep.lake / "manifests" / f"{D1}.json").read_text())
    assert manifest["run_id"] == backfill["runId"]
    assert manifest["late_merge"]["rows_new"] == 2
    # Only the three runs: nothing ran twice, and no schedule tick slipped in.
    assert len(_runs(dep)) == 3

    logs = dep.log_text().lower()
    assert "deprecat" not in logs, dep.log_text()


def _fields(dep: Deployment, date: str) -> gpd.GeoDataFrame:
    return gpd.read_parquet(io.BytesIO((dep.lake / "fields" / f"date={date}" / "fields.parquet").read_bytes()))
