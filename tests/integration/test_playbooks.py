"""The collection's playbooks run as AWX runs them: through ansible-runner, with a private data
dir, job events and set_stats artifacts, against fleets of their own (cleaning changes the hosts,
and one test stops a host mid-run, so the shared fleet is left alone)."""

import json
import os
import sys
import time
from pathlib import Path

import ansible_runner
import pytest
import yaml

from factcache import cached_facts
from testfleet.fleet import running

REPO = Path(__file__).resolve().parents[2]
LAYOUTS = ("single_root", "multi_user", "softlinked_env")
FACT_TASK = "Gather conda, pip and rattler cache facts"
CLEAN_TASK = "Clean conda package caches"
PIP_CLEAN_TASK = "Clean pip caches"
REPORT_TASK = "Write the fleet report on the controller"
# The fixture hosts carry an interrupted download (*.partial) written seconds before the run; the
# role's default busy gate (1h) rightly takes that for a download in progress and skips the cache.
# Tests that need caches cleaned treat anything older than a second as stale.
STALE_AFTER_1S = {"cache_clean_busy_age": "1s"}
# Everything a layout puts on a host lies in its overlay's upper dir; these parts change with
# every login (ansible's remote tmp, logs, sshd state) and are not the collection's doing.
VOLATILE = {".ansible", "log", "run", "tmp", "lastlog", "wtmp", "btmp"}


class Job(object):
    """One ansible-runner run and what AWX would keep of it."""

    def __init__(self, runner, report_dir):
        self.status = runner.status
        self.rc = runner.rc
        self.events = list(runner.events)
        self.stdout = runner.stdout.read()
        self.artifacts = Path(runner.config.artifact_dir)
        path = report_dir / "fleet-report.json"
        self.report = json.loads(path.read_text()) if path.exists() else None

    def hosts_with(self, event, task):
        return sorted(e["event_data"]["host"] for e in self.events
                      if e["event"] == event and e["event_data"].get("task") == task)

    @property
    def artifact_data(self):
        stats = [e for e in self.events if e["event"] == "playbook_on_stats"]
        assert len(stats) == 1, self.stdout[-3000:]
        return stats[0]["event_data"].get("artifact_data", {})

    def host(self, name):
        return [h for h in self.report["hosts"] if h["host"] == name][0]


def run_job(fleet, work, playbook, check=False, tags=None, extravars=None, event_handler=None, inventories=(),
            report_dir=True):
    """``ansible-playbook pkgcache.fleet.<playbook>`` the AWX way (a check job template adds
    ``--check``, job tags ``--tags``); the report goes to *work* (``report_dir=False``: to the
    playbooks' default, not set by the job)."""
    work.mkdir(parents=True, exist_ok=True)
    variables = dict(pkgcache_report_dir=str(work / "report")) if report_dir else {}
    variables.update(extravars or {})
    runner = ansible_runner.run(
        private_data_dir=str(work),
        playbook="pkgcache.fleet." + playbook,
        inventory=[str(fleet.inventory)] + [str(path) for path in inventories],
        extravars=variables,
        cmdline=" ".join((["--check", "--diff"] if check else []) + (["--tags", tags] if tags else [])) or None,
        envvars={"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])},
        event_handler=event_handler,
        quiet=True,
    )
    return Job(runner, work / "report" if report_dir else Path(runner.config.artifact_dir) / "pkgcache-report")


def host_state(fleet, name):
    """{relative path: (size, mtime_ns)} of every file and symlink the host carries beyond the base
    image.  Directories are left out: logins and sudo touch some (the login user's home, /var)."""
    upper = fleet.host_dir(name) / "upper"
    state = {}
    for top, dirs, files in os.walk(str(upper)):
        dirs[:] = [d for d in dirs if d not in VOLATILE]
        links = [d for d in dirs if os.path.islink(os.path.join(top, d))]
        for entry in files + links:
            if entry in VOLATILE:
                continue
            path = os.path.join(top, entry)
            st = os.lstat(path)
            state[os.path.relpath(path, str(upper))] = (st.st_size, st.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def fleet3(fleet_state_factory):
    with running(fleet_state_factory("playbooks"), len(LAYOUTS), LAYOUTS) as up:
        yield up


def test_report_job_has_per_host_events_stats_and_fact_cache(fleet3, tmp_path):
    job = run_job(fleet3, tmp_path, "report")
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert job.hosts_with("runner_on_ok", FACT_TASK) == fleet3.hosts
    facts = dict((host, result["ansible_facts"]) for host, result in task_results(job, FACT_TASK).items())
    for name in fleet3.hosts:
        record = job.host(name)
        assert record["status"] == "ok" and record["clean"] is None
        assert record["conda"]["disk_bytes"] == facts[name]["conda_cache"]["totals"]["disk_bytes"]
        assert record["pip"]["disk_bytes"] == facts[name]["pip_cache"]["totals"]["all"]["disk_bytes"]
    assert job.hosts_with("runner_on_ok", REPORT_TASK) == [fleet3.hosts[0]]
    # The report play runs everything once, the role's argument validation and its check for
    # unknown fleet_report_* variables included.
    assert sorted(e["event_data"]["host"] for e in job.events
                  if e["event"] == "runner_on_ok" and e["event_data"].get("play") == "Fleet report") \
        == [fleet3.hosts[0]] * 5
    data = job.artifact_data
    assert data["pkgcache_hosts"] == len(fleet3.hosts)
    assert data["pkgcache_cache_bytes"] == job.report["totals"]["cache_bytes"] > 0
    assert data["pkgcache_reclaimable_bytes"] == job.report["totals"]["reclaimable_bytes"] > 0
    assert data["pkgcache_hosts_failed"] == 0
    # AWX's fact storage: ansible-runner's jsonfile cache holds each host's cache facts.
    for name in fleet3.hosts:
        cached = cached_facts(job.artifacts / "fact_cache", name)
        assert cached["conda_cache"]["totals"] == facts[name]["conda_cache"]["totals"]
        assert "pip_cache" in cached


def test_check_mode_clean_previews_and_changes_nothing(fleet3, tmp_path):
    before = dict((name, host_state(fleet3, name)) for name in fleet3.hosts)
    job = run_job(fleet3, tmp_path, "clean", check=True, extravars=STALE_AFTER_1S)
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert dict((name, host_state(fleet3, name)) for name in fleet3.hosts) == before
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == fleet3.hosts
    assert job.hosts_with("runner_on_ok", PIP_CLEAN_TASK) == fleet3.hosts
    totals = job.report["totals"]
    assert totals["check_mode"] is True and totals["freed_bytes"] == 0
    for name in fleet3.hosts:
        clean = job.host(name)["clean"]
        assert clean["check_mode"] is True and clean["after_bytes"] is None and clean["removed"] == 0
        assert clean["planned_bytes"] > 0 and clean["outcome"] == "cleaned"
    assert job.artifact_data["pkgcache_planned_bytes"] == totals["planned_bytes"]
    assert job.artifact_data["pkgcache_hosts_cleaned"] == len(fleet3.hosts)


def test_clean_frees_space_reports_before_after_and_second_run_has_nothing(fleet3, tmp_path):
    preview = run_job(fleet3, tmp_path / "preview", "clean", check=True, extravars=STALE_AFTER_1S)
    job = run_job(fleet3, tmp_path / "real", "clean", extravars=STALE_AFTER_1S)
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    for name in fleet3.hosts:
        clean = job.host(name)["clean"]
        assert clean["check_mode"] is False and clean["outcome"] == "cleaned" and clean["removed"] > 0
        # What the preview promised is what the real run planned, and the caches shrank by it.
        assert clean["planned_bytes"] == preview.host(name)["clean"]["planned_bytes"]
        assert clean["after_bytes"] == clean["before_bytes"] - clean["reduced_bytes"]
        assert clean["reduced_bytes"] >= clean["planned_bytes"] > 0
        # Locks and tempfiles are outside the role's default targets, so some may stay reclaimable.
        assert job.host(name)["conda"]["reclaimable_bytes"] < preview.host(name)["conda"]["reclaimable_bytes"]
        # The role's pip rule (older than "0") empties every user's pip cache.
        if preview.host(name)["pip"]["disk_bytes"]:
            assert job.host(name)["pip"]["reclaimable_bytes"] < preview.host(name)["pip"]["reclaimable_bytes"]
    assert any(preview.host(name)["pip"]["disk_bytes"] for name in fleet3.hosts), "no pip cache in the fleet"
    data = job.artifact_data
    assert data["pkgcache_hosts_cleaned"] == len(fleet3.hosts)
    assert data["pkgcache_reduced_bytes"] == job.report["totals"]["reduced_bytes"] > 0

    again = run_job(fleet3, tmp_path / "again", "clean", extravars=STALE_AFTER_1S)
    assert again.status == "successful"
    assert [again.host(name)["clean"]["outcome"] for name in fleet3.hosts] == ["nothing_to_remove"] * 3
    assert again.artifact_data["pkgcache_hosts_skipped"] == len(fleet3.hosts)
    assert again.artifact_data["pkgcache_hosts_cleaned"] == 0


def test_serial_batches_still_give_one_report_and_stats_counted_once(fleet3, tmp_path):
    job = run_job(fleet3, tmp_path, "report", extravars={"pkgcache_serial": 1})
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    plays = [e["event_data"]["play"] for e in job.events if e["event"] == "playbook_on_play_start"]
    assert plays.count("Gather cache facts") == len(fleet3.hosts)
    assert [host["status"] for host in job.report["hosts"]] == ["ok"] * len(fleet3.hosts)
    assert job.artifact_data["pkgcache_hosts"] == len(fleet3.hosts)


def test_host_whose_clean_fails_is_reported_failed_and_the_rest_go_on(fleet3, tmp_path):
    victim = fleet3.hosts[0]
    bad_policy = tmp_path / "bad-policy.ini"
    bad_policy.write_text("[fleet]\n{0} cache_clean_min_age=soon\n".format(victim))
    job = run_job(fleet3, tmp_path / "job", "clean", check=True, inventories=[bad_policy])
    assert job.status == "failed" and job.rc == 2, job.stdout[-3000:]
    survivors = [name for name in fleet3.hosts if name != victim]
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == survivors
    record = job.host(victim)
    assert record["status"] == "failed"
    assert record["error"].startswith("cache_clean_conda_result: ") and "soon" in record["error"]
    assert [job.host(name)["status"] for name in survivors] == ["ok"] * len(survivors)
    assert job.artifact_data["pkgcache_hosts_failed"] == 1


def test_host_stopped_mid_run_is_reported_unreachable_and_the_rest_finish(fleet_state_factory, tmp_path):
    with running(fleet_state_factory("stopped"), len(LAYOUTS), LAYOUTS) as fleet:
        names = fleet.hosts
        victim = names[1]
        stopped = []

        def stop_after_first_facts(event):
            data = event.get("event_data", {})
            if (not stopped and event.get("event") == "runner_on_ok" and data.get("host") == victim
                    and data.get("task") == FACT_TASK):
                fleet.stop_host(victim)
                stopped.append(data["task"])
            return True

        job = run_job(fleet, tmp_path, "clean", extravars=STALE_AFTER_1S, event_handler=stop_after_first_facts)
    assert stopped, "the victim never reported its first facts"
    assert job.status == "failed" and job.rc == 4, job.stdout[-3000:]
    survivors = [name for name in names if name != victim]
    assert victim in [e["event_data"]["host"] for e in job.events if e["event"] == "runner_on_unreachable"]
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == survivors
    record = job.host(victim)
    assert record["status"] == "unreachable"
    assert "ssh" in record["error"].lower()
    assert record["conda"] is not None, "facts gathered before the stop are kept"
    assert [job.host(name)["clean"]["outcome"] for name in survivors] == ["cleaned", "cleaned"]
    assert job.artifact_data["pkgcache_hosts_failed"] == 1
    assert job.artifact_data["pkgcache_hosts_cleaned"] == 2


def awx_survey():
    """The survey spec documented in docs/awx.md (its first JSON block)."""
    text = (REPO / "docs" / "awx.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    return json.loads(block)["spec"]


def role_options():
    options = {}
    for spec in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        options.update(yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"])
    return options


def survey_answers(spec):
    """Extra vars as AWX sends a survey's defaults: multiselect as a list, integers as numbers."""
    answers = {}
    for question in spec:
        default = question["default"]
        if question["type"] == "multiselect":
            default = default.split("\n")
        answers[question["variable"]] = default
    return answers


def test_survey_questions_are_variables_the_playbooks_read():
    options = role_options()
    playbooks = "".join(p.read_text() for p in (REPO / "playbooks").glob("*.yml"))
    for question in awx_survey():
        name = question["variable"]
        assert name in options or name in playbooks, name
        if question["type"] == "multiselect":
            assert set(question["choices"]) <= set(options[name]["choices"]), name


def test_survey_defaults_run_a_check_job(fleet3, tmp_path):
    job = run_job(fleet3, tmp_path, "clean", check=True, extravars=survey_answers(awx_survey()))
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert job.report["totals"]["check_mode"] is True
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == fleet3.hosts


def test_site_with_the_report_tag_only_gathers_and_reports(fleet3, tmp_path):
    job = run_job(fleet3, tmp_path, "site", tags="report", extravars={"pkgcache_backup_dest": "/srv/none"})
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert job.hosts_with("runner_on_ok", FACT_TASK) == fleet3.hosts
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == []
    assert all(host["clean"] is None and host["backup"] is None for host in job.report["hosts"])


def task_results(job, task):
    return dict((e["event_data"]["host"], e["event_data"]["res"]) for e in job.events
                if e["event"] == "runner_on_ok" and e["event_data"]["task"] == task)


def test_site_backs_up_every_tarball_before_cleaning_it(fleet_state_factory, tmp_path):
    backup = "/srv/pkgbackup"
    with running(fleet_state_factory("site"), len(LAYOUTS), LAYOUTS) as fleet:
        names = fleet.hosts
        roots = dict((name, fleet.root_of(name)) for name in names)
        for root in roots.values():
            (root / backup.lstrip("/")).mkdir(parents=True)
        job = run_job(fleet, tmp_path, "site", extravars=dict(STALE_AFTER_1S, pkgcache_backup_dest=backup))
        assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
        backed_up = task_results(job, "Back up conda package tarballs")
        cleaned = task_results(job, CLEAN_TASK)
        for name in names:
            manifest = json.loads((roots[name] / backed_up[name]["manifest"].lstrip("/")).read_text())
            stored = dict((entry["source"], entry) for entry in manifest["entries"])
            tarballs = [p for p in cleaned[name]["removed"] if p.endswith((".conda", ".tar.bz2"))]
            assert tarballs, "{0}: the clean removed no tarballs".format(name)
            for path in tarballs:
                entry = stored[path]
                obj = roots[name] / backup.lstrip("/") / "store" / "sha256" / entry["sha256"][:2] / entry["sha256"]
                assert obj.stat().st_size == entry["size"], path
            record = job.host(name)
            assert record["backup"]["copied"] == len(backed_up[name]["copied"]) > 0
            assert record["clean"]["outcome"] == "cleaned"
    first_backup = min(e["counter"] for e in job.events if e["event_data"].get("task") == "Back up conda package tarballs")
    first_clean = min(e["counter"] for e in job.events if e["event_data"].get("task") == CLEAN_TASK)
    assert first_backup < first_clean
    assert job.artifact_data["pkgcache_hosts_backed_up"] == len(names)


def test_relocate_moves_the_cache_and_the_report_covers_only_the_target(fleet_state_factory, tmp_path):
    new = "/srv/conda/pkgs"
    with running(fleet_state_factory("relocate"), 2, ("single_root",)) as fleet:
        target, other = fleet.hosts
        variables = {"pkgcache_target": target, "pkgs_relocate_root": "/opt/conda", "pkgs_relocate_pkgs_dirs": [new]}
        preview = run_job(fleet, tmp_path / "preview", "relocate", check=True, extravars=variables)
        assert (preview.status, preview.rc) == ("successful", 0), preview.stdout[-3000:]
        assert not (fleet.root_of(target) / new.lstrip("/")).exists()
        job = run_job(fleet, tmp_path / "real", "relocate", extravars=variables)
        assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
        old = fleet.root_of(target) / "opt/conda/pkgs"
        assert old.is_symlink() and os.readlink(str(old)) == new
        assert not (fleet.root_of(other) / "opt/conda/pkgs").is_symlink()
    facts = task_results(job, FACT_TASK)[target]["ansible_facts"]["conda_cache"]
    assert new in [cache["path"] for cache in facts["caches"]]
    moved = task_results(job, "Relocate the conda package cache")[target]
    assert moved["migration"]["dest"] == new and moved["pkgs_dirs"][0] == new
    assert [host["host"] for host in job.report["hosts"]] == [target]
    assert job.report["hosts"][0]["conda"]["caches"] >= 1


def reports_written_under(tree, since):
    """Report files under *tree* written at or after *since* (a time.time())."""
    return sorted(str(path) for path in tree.rglob("fleet-report.*") if path.stat().st_mtime >= since)


def test_runner_job_report_goes_to_the_artifacts_and_the_json_is_a_job_artifact(fleet3, tmp_path):
    started = time.time() - 1
    job = run_job(fleet3, tmp_path, "report", report_dir=False)
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert job.report is not None, "no report in {0}".format(job.artifacts / "pkgcache-report")
    assert [host["host"] for host in job.report["hosts"]] == fleet3.hosts
    # Never into the collection (here the work tree the collections path links to).
    assert reports_written_under(REPO, started) == []
    data = job.artifact_data
    assert data["pkgcache_report"] == job.report
    assert data["pkgcache_check_mode"] is False


def test_cli_report_goes_to_the_working_directory_not_the_collection(fleet3, tmp_path):
    started = time.time() - 1
    env = dict((k, v) for k, v in os.environ.items() if k != "AWX_ISOLATED_DATA_DIR")
    done = fleet3.playbook("pkgcache.fleet.report", cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "pkgcache-report" / "fleet-report.json").read_text())
    assert [host["status"] for host in report["hosts"]] == ["ok"] * len(fleet3.hosts)
    assert reports_written_under(REPO, started) == []
    assert str(tmp_path / "pkgcache-report") in done.stdout


POLICY_TASK = "Show the clean policy in force"


def test_misspelt_policy_variable_stops_the_run_naming_the_valid_ones(fleet3, tmp_path):
    before = dict((name, host_state(fleet3, name)) for name in fleet3.hosts)
    job = run_job(fleet3, tmp_path / "extra", "clean", check=True, extravars={"cache_clean_min_aeg": "7d"})
    assert job.status == "failed", job.stdout[-3000:]
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == [] and job.hosts_with("runner_on_ok", PIP_CLEAN_TASK) == []
    assert "cache_clean_min_aeg" in job.stdout and "cache_clean_min_age" in job.stdout
    # A typo in one host's inventory variables (not the host the check runs on) stops it too.
    typo = tmp_path / "typo.ini"
    typo.write_text("[fleet]\n{0} cache_clean_keep_lastest=1\n".format(fleet3.hosts[-1]))
    job = run_job(fleet3, tmp_path / "inventory", "clean", check=True, inventories=[typo])
    assert job.status == "failed", job.stdout[-3000:]
    assert job.hosts_with("runner_on_ok", CLEAN_TASK) == []
    assert "cache_clean_keep_lastest" in job.stdout and "cache_clean_keep_latest" in job.stdout
    assert dict((name, host_state(fleet3, name)) for name in fleet3.hosts) == before


def test_policy_in_force_is_printed_once_and_recorded_and_stats_say_check_mode(fleet3, tmp_path):
    job = run_job(fleet3, tmp_path, "clean", check=True, extravars={"cache_clean_min_age": "7d"})
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert len(job.hosts_with("runner_on_ok", POLICY_TASK)) == 1
    policies = job.report["policies"]
    assert [entry["hosts"] for entry in policies] == [fleet3.hosts]
    policy = policies[0]["policy"]
    assert policy["cache_clean_min_age"] == "7d" and policy["cache_clean_keep_latest"] == 0
    assert sorted(policy) == sorted(n for n in role_options() if n.startswith("cache_clean_"))
    assert all(job.host(name)["clean"]["policy"] == policy for name in fleet3.hosts)
    markdown = (tmp_path / "report" / "fleet-report.md").read_text()
    assert '`cache_clean_min_age`: `"7d"`' in markdown
    assert job.artifact_data["pkgcache_check_mode"] is True


def test_report_files_are_delivered_to_a_named_host(fleet3, tmp_path):
    web = fleet3.hosts[-1]
    job = run_job(fleet3, tmp_path, "report", extravars={
        "pkgcache_report_host": web, "pkgcache_report_host_dir": "/srv/www/pkgcache",
        "fleet_report_deliver_become": True})
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    delivered = fleet3.root_of(web) / "srv/www/pkgcache"
    assert sorted(path.name for path in delivered.iterdir()) == sorted(
        path.name for path in (tmp_path / "report").iterdir())
    assert json.loads((delivered / "fleet-report.json").read_text()) == job.report
