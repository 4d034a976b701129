import os
import stat
import tomllib

import pytest

from engine import BreezeError
from engine.config_file import config_path, dump_toml, read_config, update_config


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path))


def test_update_keeps_other_tables_and_is_private():
    update_config("remote", {"lab": {"base_url": "http://127.0.0.1:1/v1", "api_key": "s3cret"}})
    update_config("runners", {"llama_cpp": {"temperature": 0.2, "stop": ["\n\n", "END"]}})
    config = read_config()
    assert config["remote"]["lab"]["api_key"] == "s3cret"
    assert config["runners"]["llama_cpp"] == {"temperature": 0.2, "stop": ["\n\n", "END"]}
    assert stat.S_IMODE(os.stat(config_path()).st_mode) == 0o600


def test_round_trip_of_every_value_kind():
    table = {"a": {"s": 'quote " and ü', "i": 3, "f": 0.5, "b": True, "l": [1, "x"]},
             "top": "level", "odd key": {"n": 1}}
    assert tomllib.loads(dump_toml(table)) == table


def test_broken_file_is_a_clear_error():
    config_path().write_text("this is = = not toml")
    with pytest.raises(BreezeError) as err:
        read_config()
    assert err.value.error.code == "E400" and "config.toml" in err.value.error.message
