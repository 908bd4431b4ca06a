"""Facts modules run as AWX runs them: ``gather_facts`` with ``FACTS_MODULES``, results stored per
host in a jsonfile fact cache."""

import json
import os
import textwrap


def cached_facts(cache_dir, host):
    """One host's entry of the jsonfile fact cache.  ansible-core 2.19 names it
    ``s<schema>_<host>`` and wraps the facts as a JSON string under ``__payload__``."""
    paths = [p for p in cache_dir.iterdir() if p.name == host or p.name.split("_", 1)[-1] == host]
    assert len(paths) == 1, sorted(p.name for p in cache_dir.iterdir())
    data = json.loads(paths[0].read_text())
    return json.loads(data["__payload__"]) if "__payload__" in data else data


def gather_into_cache(fleet, facts_module, workdir, conditions):
    """Run a play whose ``gather_facts`` calls *facts_module* and whose task asserts *conditions*
    on every host; ``{host: stored facts}`` from the fact cache."""
    playbook = workdir / "gather.yml"
    playbook.write_text(textwrap.dedent("""\
        - name: Gather cache facts
          hosts: all
          become: true
          gather_facts: true
          tasks:
            - name: Facts are there for later tasks
              ansible.builtin.assert:
                that: {0}
        """).format(json.dumps(list(conditions))))
    cache_dir = workdir / "facts"
    env = dict(os.environ, ANSIBLE_FACTS_MODULES=facts_module,
               ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile", ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache_dir))
    done = fleet.playbook(str(playbook), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    return dict((host, cached_facts(cache_dir, host)) for host in fleet.hosts)
