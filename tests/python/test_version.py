"""One version, defined once in the top-level VERSION file, seen everywhere."""

import uuid
from pathlib import Path

import brandhooks
from brandhooks import Config, Hub
from receivers import Receiver

VERSION = (Path(__file__).resolve().parents[2] / "VERSION").read_text().strip()


def test_the_package_has_the_version_of_the_version_file():
    assert brandhooks.__version__ == VERSION


def test_deliveries_carry_the_version_in_their_user_agent(tmp_path):
    hub = Hub(Config(db=str(tmp_path / "version.db"), deliver=True, allow_private=True))
    with Receiver() as receiver:
        brand = str(uuid.uuid4())
        hub.create_webhook(brand, "Deals", receiver.url())
        hub.publish(brand, "Deals", "Created", {"deal": 1})
        request = receiver.wait_for(1)[0]
    hub.close()
    assert request.headers["User-Agent"] == f"brandhooks/{VERSION}"
