"""The capability and rlimit name tables."""

from pyrunc.linux import capabilities, rlimits
from pyrunc.linux.capabilities import CAPABILITIES, read_cap_last_cap
from pyrunc.linux.rlimits import RLIMITS


def test_capabilities_table_numbers_contiguous_from_zero():
    assert len(CAPABILITIES) == 41
    assert list(CAPABILITIES.values()) == list(range(41))
    assert capabilities.CAP_LAST_KNOWN == max(CAPABILITIES.values())


def test_capabilities_table_names_oci_spelling():
    for name in CAPABILITIES:
        assert name.startswith("CAP_") and name == name.upper()


def test_capabilities_table_landmarks_match_kernel():
    assert CAPABILITIES["CAP_CHOWN"] == 0
    assert CAPABILITIES["CAP_SETPCAP"] == 8
    assert CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert CAPABILITIES["CAP_SETFCAP"] == 31
    assert CAPABILITIES["CAP_AUDIT_READ"] == 37
    assert CAPABILITIES["CAP_BPF"] == 39
    assert CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40


def test_capabilities_oci_spelling_number():
    assert CAPABILITIES.get("CAP_NET_ADMIN") == 12


def test_capabilities_other_spellings_unknown():
    assert CAPABILITIES.get("NET_ADMIN") is None
    assert CAPABILITIES.get("cap_net_admin") is None
    assert CAPABILITIES.get("CAP_TEST") is None
    assert CAPABILITIES.get("") is None


def test_read_cap_last_cap_file_value(tmp_path):
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "cap_last_cap").write_text("39\n")
    assert read_cap_last_cap(str(tmp_path)) == 39


def test_read_cap_last_cap_missing_file_40(tmp_path):
    assert read_cap_last_cap(str(tmp_path)) == 40


def test_read_cap_last_cap_garbage_40(tmp_path):
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "sys" / "kernel" / "cap_last_cap").write_text("forty\n")
    assert read_cap_last_cap(str(tmp_path)) == 40


def test_read_cap_last_cap_real_proc_plausible():
    assert 30 <= read_cap_last_cap() <= 63


def test_rlimits_table_sixteen_contiguous():
    assert len(RLIMITS) == 16
    assert sorted(RLIMITS.values()) == list(range(16))
    assert all(name.startswith("RLIMIT_") for name in RLIMITS)


def test_rlimits_table_landmarks_match_asm_generic():
    assert RLIMITS["RLIMIT_CPU"] == 0
    assert RLIMITS["RLIMIT_CORE"] == 4
    assert RLIMITS["RLIMIT_NOFILE"] == 7
    assert RLIMITS["RLIMIT_AS"] == 9
    assert RLIMITS["RLIMIT_RTTIME"] == 15


def test_rlimits_table_matches_resource_module_on_this_host():
    # The table must not import `resource`; the test may, as a cross-check.
    resource = __import__("resource")
    for name, number in RLIMITS.items():
        if hasattr(resource, name):
            assert getattr(resource, name) == number, name


def test_rlimits_module_import_no_resource():
    source = open(rlimits.__file__).read()
    assert "import resource" not in source
