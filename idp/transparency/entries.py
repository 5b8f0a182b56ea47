"""What the public is told about each device: company, place, what it records, purpose,
retention and contact, in Japanese and English (``/transparency``, ``/transparency.json``).

Built from the registrations themselves (``idp.kiosk``, ``idp.sensors``): a kiosk or
sensor registered by an admin appears here at once, and one moved appears where it is
now. Revoked devices, and those of a company suspended or revoked, are gone from the
list: they record nothing (their tokens die with the suspension), so they are not in
service; a reinstated company's devices come back.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp import config
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors


@dataclass(frozen=True)
class Entry:
    kind: str  # "kiosk" or "sensor"
    anchor: str
    client_id: str
    name: str
    company: str
    location: str
    latitude: float | None
    longitude: float | None
    area: str
    records: dict[str, str]
    purpose: dict[str, str]
    retention: dict[str, str]
    contact: str

    def as_json(self) -> dict:
        return {"kind": self.kind, "id": self.anchor, "name": self.name,
                "company": self.company, "location": self.location,
                "latitude": self.latitude, "longitude": self.longitude, "area": self.area,
                "records": self.records, "purpose": self.purpose,
                "retention": self.retention, "contact": self.contact}


def _kiosk_records() -> dict[str, str]:
    settings = config.settings()
    idle, longest = settings.kiosk_idle_timeout // 60 or 1, settings.kiosk_max_session // 60
    return {
        "ja": "画面へのタッチ（日時と、どのコンテンツか）。QRコードから承認した方のタッチに限り、"
              "その方の利用履歴として記録します。それ以外のタッチは誰のものか記録しません。"
              f"承認したログインは「終了」を押すか、{idle}分間タッチがないとき、"
              f"または最長{longest}分で終わります。",
        "en": "Touches on the screen (when, and which content). Only touches of a person who "
              "approved the screen with its QR code are recorded in their usage history; "
              "other touches are recorded without identity. An approved session ends when you "
              f"press End, after {idle} min without a touch, or after {longest} min at most.",
    }


KIOSK_RETENTION = {
    "ja": "タッチ履歴はコンソーシアムIDがある間保存し、ご自身で確認・ダウンロードできます。"
          "IDを削除すると、誰のものか分からない形でのみ残ります。",
    "en": "Touch history is kept while your consortium ID exists; you can see and download "
          "it. When you delete the ID, touches remain only without identity.",
}
SENSOR_RECORDS = {
    "ja": "通過した人数（時間帯ごと・方向ごと）。映像・画像や、個人を識別する情報は記録しません。",
    "en": "Numbers of passers-by per time interval and direction. No images, and nothing that "
          "identifies a person.",
}


def _retention_days(days: int) -> dict[str, str]:
    return {"ja": f"{days}日間保存します。", "en": f"Kept for {days} days."}


def _in_service(client) -> bool:
    """A device records only while its client and its company are active."""
    return client.revoked_at is None and client.company.is_active


def entries() -> list[Entry]:
    """Every kiosk and sensor in service, kiosks first, each in registration order."""
    consortium = config.settings().consortium_name
    found: list[Entry] = []
    kiosk_records = _kiosk_records()
    for kiosk in kiosks.kiosks():
        client = kiosk.client
        if not _in_service(client):
            continue
        found.append(Entry(
            kind="kiosk", anchor=f"kiosk-{client.id}", client_id=client.id, name=client.name,
            company=client.company.name, location=kiosk.location, latitude=kiosk.latitude,
            longitude=kiosk.longitude, area="", records=kiosk_records,
            purpose={"ja": client.purpose, "en": client.purpose_en or client.purpose},
            retention=KIOSK_RETENTION, contact=kiosk.contact or consortium))
    for sensor in sensors.sensors():
        client = sensor.client
        if not _in_service(client):
            continue
        found.append(Entry(
            kind="sensor", anchor=f"sensor-{client.id}", client_id=client.id, name=client.name,
            company=client.company.name, location=sensor.location, latitude=sensor.latitude,
            longitude=sensor.longitude, area=sensor.area, records=SENSOR_RECORDS,
            purpose={"ja": client.purpose, "en": client.purpose_en or client.purpose},
            retention=_retention_days(sensor.retention_days),
            contact=sensor.contact or consortium))
    return found
