"""The option vocabulary: durations, sizes and thresholds read back what their formatters write
and refuse what they do not read; the user selector names every unknown user; the argument-spec
pieces agree with the doc fragments that document them."""

from __future__ import annotations

import importlib
import pwd

import pytest
import yaml
from ansible.module_utils.common.text.formatters import human_to_bytes
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError

SECONDS = dict(options.DURATION_UNITS)
BYTES = dict(options.SIZE_UNITS)
counts = st.integers(min_value=0, max_value=10 ** 12)
decimals = st.decimals(min_value=0, max_value=10 ** 6, places=3, allow_nan=False, allow_infinity=False)


@given(counts)
def test_a_formatted_duration_reads_back_as_the_same_seconds(seconds):
    assert options.parse_duration(options.format_duration(seconds), "min_age") == seconds


@given(counts, st.sampled_from(sorted(SECONDS)), st.sampled_from(["", " "]))
def test_a_number_with_a_unit_is_that_many_units(number, unit, space):
    assert options.parse_duration("%d%s%s" % (number, space, unit), "min_age") == number * SECONDS[unit]


@given(decimals.filter(lambda number: number != 0))
def test_a_bare_number_other_than_zero_is_refused_with_both_readings(number):
    text = str(number)
    with pytest.raises(OptionError) as refused:
        options.parse_duration(text, "min_age")
    assert str(refused.value) == "min_age=%s has no unit: write %sd for days or %ss for seconds" % (text, text, text)


@pytest.mark.parametrize("zero", ["0", "0.0", " 0 ", "0s", "0d"])
def test_zero_needs_no_unit(zero):
    assert options.parse_duration(zero, "min_age") == 0


@given(st.text().filter(lambda text: options._DURATION.match(text) is None))
def test_anything_else_is_not_a_duration_and_the_option_is_named(text):
    with pytest.raises(OptionError, match="^busy_age: .* is not a duration"):
        options.parse_duration(text, "busy_age")


def test_an_unset_option_stays_unset():
    assert [options.parse_duration(None, "a"), options.parse_size(None, "b"), options.parse_free_threshold(None, "c")] == [
        None, None, None]


@given(counts)
def test_a_formatted_size_reads_back_as_the_same_bytes(count):
    assert options.parse_size(options.format_size(count), "when_cache_above") == count


@given(counts, st.sampled_from(sorted(BYTES)), st.sampled_from(["", "B", "iB", "b"]), st.booleans())
def test_binary_units_in_any_spelling(number, unit, suffix, lower):
    written = "%d%s%s" % (number, unit.lower() if lower else unit, suffix)
    assert options.parse_size(written, "when_cache_above") == number * BYTES[unit]


@given(st.integers(min_value=0, max_value=10 ** 6), st.integers(min_value=0, max_value=9),
       st.sampled_from(sorted(BYTES)), st.sampled_from(["", "B"]))
def test_what_ansible_cores_human_to_bytes_reads_we_read_to_the_same_byte(whole, tenth, unit, suffix):
    """Our parser is a stdlib one (the local command runs it without Ansible) that also reads
    GiB, gb and spaces, which ansible-core's refuses; where both read a size, they agree."""
    for written in ("%d%s%s" % (whole, unit, suffix), "%d.%d%s%s" % (whole, tenth, unit, suffix), "%d" % whole):
        assert options.parse_size(written, "when_cache_above") == human_to_bytes(written), written


@given(counts)
def test_a_bare_size_is_bytes(count):
    assert options.parse_size(str(count), "when_cache_above") == count


@pytest.mark.parametrize("text", ["", "G", "-1G", "20 P", "1e9", "lots"])
def test_what_is_not_a_size_is_refused_naming_the_option(text):
    with pytest.raises(OptionError, match="^when_cache_above: .* is not a size"):
        options.parse_size(text, "when_cache_above")


@given(st.one_of(st.tuples(st.just("percent"), st.integers(0, 100).map(float)),
                 st.tuples(st.just("percent"), st.decimals(0, 100, places=2).map(float)),
                 st.tuples(st.just("bytes"), counts)))
def test_a_formatted_threshold_reads_back(threshold):
    assert options.parse_free_threshold(options.format_free_threshold(threshold), "when_free_below") == threshold


@pytest.mark.parametrize("text, message", [("101%", "is not between 0% and 100%"), ("ten%", "is not a percentage"),
                                           ("-1%", "is not a percentage|is not between")])
def test_percentages_outside_0_to_100_are_refused(text, message):
    with pytest.raises(OptionError, match="^when_free_below: .*(%s)" % message):
        options.parse_free_threshold(text, "when_free_below")


@pytest.mark.parametrize("workers", [1, 2, 64])
def test_one_worker_or_more_is_accepted(workers):
    assert options.check_workers(workers) == workers


@pytest.mark.parametrize("workers", [0, -1, None])
def test_fewer_than_one_worker_is_refused(workers):
    with pytest.raises(OptionError, match="^workers must be 1 or more, not %s$" % workers):
        options.check_workers(workers)


def test_every_account_when_users_is_empty_or_null():
    every = sorted(set(entry.pw_name for entry in pwd.getpwall()))
    assert sorted(u.name for u in options.select_users([])) == every
    assert sorted(u.name for u in options.select_users(None)) == every


def test_named_users_in_their_order_and_every_unknown_one_named():
    assert [u.name for u in options.select_users(["root"])] == ["root"]
    with pytest.raises(OptionError) as refused:
        options.select_users(["nobody-by-that-name", "root", "nor-this-one"])
    assert str(refused.value) == "unknown user(s): nobody-by-that-name, nor-this-one (not in the passwd database)"


def test_unknown_owner_and_group_are_named():
    with pytest.raises(OptionError, match="^unknown user\\(s\\): nobody-by-that-name "):
        options.select_user("nobody-by-that-name")
    with pytest.raises(OptionError, match="^unknown group: no-group-by-that-name "):
        options.group_id("no-group-by-that-name")
    assert options.group_id("root") == 0


def test_a_null_variable_is_unset_and_the_rest_are_strings():
    assert options.shell_environment({"A": None, "B": 1, "C": "x"}) == {"B": "1", "C": "x"}


def test_every_module_gets_its_own_copy_and_no_option_twice():
    first = options.argument_spec(options.USERS, options.CONDA_CACHES, workers=dict(type="int"))
    first["users"]["default"].append("alice")
    assert options.argument_spec(options.USERS)["users"]["default"] == []
    with pytest.raises(ValueError, match="option roots is defined twice"):
        options.argument_spec(options.CONDA_CACHES, options.CONDA_FACTS)


def test_duration_and_size_options_have_a_default_only_when_given():
    assert options.duration() == dict(type="str") == options.size()
    assert options.duration("1h") == dict(type="str", default="1h")


# Each documented section and the spec block it documents (the module docs are checked against
# the modules' specs by ansible-test's validate-modules; this keeps the shared pieces in step).
FRAGMENTS = [
    ("users", "DOCUMENTATION", options.USERS),
    ("users", "CONDA", options.USERS),
    ("users", "PIP", options.USERS),
    ("environment", "DOCUMENTATION", options.ENVIRONMENT),
    ("environment", "CONDA", options.ENVIRONMENT),
    ("environment", "PIP", options.ENVIRONMENT),
    ("conda_caches", "DOCUMENTATION", options.CONDA_CACHES),
    ("conda_facts", "DOCUMENTATION", dict((k, v) for k, v in options.CONDA_FACTS.items() if k not in options.ROOTS)),
    ("conda_facts", "ROOTS", options.ROOTS),
    ("workers", "DOCUMENTATION", options.WORKERS),
    ("policy_values", "DOCUMENTATION", {}),
]
SPEC_KEYS = ("type", "elements", "default", "choices", "required")


@pytest.mark.parametrize("fragment, section, block", FRAGMENTS, ids=["%s.%s" % f[:2] for f in FRAGMENTS])
def test_fragments_document_exactly_the_spec_blocks(fragment, section, block):
    module = importlib.import_module("ansible_collections.pkgcache.fleet.plugins.doc_fragments." + fragment)
    documented = yaml.safe_load(getattr(module.ModuleDocFragment, section))["options"]
    assert sorted(documented) == sorted(block)
    for name, option in block.items():
        doc = documented[name]
        assert doc["description"], name
        assert dict((k, doc[k]) for k in SPEC_KEYS if k in doc) == dict((k, option[k]) for k in SPEC_KEYS if k in option)
