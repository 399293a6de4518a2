"""Does a parcel from the EU to this address need customs data? The one rule, for every caller.

A parcel moves freely, without a customs declaration, only when its destination is inside **both** the
customs territory of the Union and the EU's VAT area: goods leaving either one are exported (or
dispatched to a "third territory") and the carrier needs the customs details and a declaration. The shop
ships from the Netherlands, which is inside both. The facts, from the law (see docs/sendcloud.md,
"Customs: where the EU ends", for the sources):

* **The 27 member states** are inside both, except the parts listed below.
* **Monaco** is in the Union's customs territory (UCC art. 4(2)) and not a third country for VAT
  (VAT Directive art. 7): inside. So are the UK Sovereign Base Areas on Cyprus (addressed as CY).
* **Inside the customs territory but outside the VAT area** (VAT Directive art. 6(1)), so a declaration
  is needed: Mount Athos (GR 630 86/87), the Canary Islands (ES 35xxx, 38xxx; code IC), the French
  outermost regions Guadeloupe, Martinique, French Guiana, Réunion, Mayotte and Saint-Martin (codes GP MQ
  GF RE YT MF), the Åland Islands (FI 22xxx; code AX), and, since 2020, Campione d'Italia and the Italian
  waters of Lake Lugano (IT 22060/22061).
* **Outside both** (UCC art. 4(1), VAT Directive art. 6(2)): Heligoland (DE 27498), Büsingen
  am Hochrhein (DE 78266), Ceuta (ES 51xxx) and Melilla (ES 52xxx) (code EA), Livigno (IT 23041), the
  Faroe Islands and Greenland (FO, GL), the overseas countries and territories (e.g. BL, PM, NC, PF, WF,
  TF; the Dutch Caribbean AW, CW, SX, BQ).
* **French postal codes** 97xxx and 98xxx are all overseas (outside the VAT area at least), except
  Monaco's 980xx.
* **Northern Ireland**: under the Windsor Framework goods in Northern Ireland follow the EU's customs
  and VAT rules for goods (its identifier is ``XI``), so a parcel to a ``BT`` postcode needs no customs
  declaration; the rest of the United Kingdom (GB, Jersey, Guernsey, the Isle of Man) is outside.
* Countries in a customs union with the EU for some goods (Andorra, San Marino, Turkey) and the Vatican
  are outside the VAT area: a declaration is needed.

Addresses are matched on their country code and, for the territories above that share their country's
code, their postal code (spaces and a country prefix such as ``FI-`` ignored). An unknown postal code of
a member state is taken to be its mainland.
"""

from __future__ import annotations

import re
from typing import Final

#: The member states of the European Union (ISO 3166-1 alpha-2; Greece is GR, not the EU's EL).
EU_MEMBER_STATES: Final = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)

#: Not member states, but inside the customs territory and the VAT area (UCC art. 4(2), VAT Directive art. 7).
ASSOCIATED_INSIDE: Final = frozenset({"MC"})

#: Territories with a code of their own that are outside the customs territory or the VAT area, by name.
#: (Their mainland's code with a postal code is matched by ``_REGIONS`` below.)
_OWN_CODES: Final = {
    "IC": "the Canary Islands",
    "EA": "Ceuta and Melilla",
    "AX": "the Åland Islands",
    "GP": "Guadeloupe",
    "MQ": "Martinique",
    "GF": "French Guiana",
    "RE": "Réunion",
    "YT": "Mayotte",
    "MF": "Saint-Martin",
}

#: Parts of a member state outside the customs territory or the VAT area: country → (postal prefix, name).
#: The longest matching prefix decides, so Monaco's 980xx (inside) wins over the other 98xxx (outside).
_REGIONS: Final[dict[str, tuple[tuple[str, str | None], ...]]] = {
    "DE": (("27498", "Heligoland"), ("78266", "Büsingen am Hochrhein")),
    "ES": (
        ("35", "the Canary Islands"),
        ("38", "the Canary Islands"),
        ("51", "Ceuta"),
        ("52", "Melilla"),
    ),
    "FI": (("22", "the Åland Islands"),),
    "FR": (
        ("97", "a French overseas department or territory"),
        ("98", "a French overseas territory"),
        ("980", None),  # Monaco, addressed through the French postal system: inside
    ),
    "GR": (("63086", "Mount Athos"), ("63087", "Mount Athos")),
    "IT": (("23041", "Livigno"), ("22060", "Campione d'Italia"), ("22061", "Campione d'Italia")),
}

#: Northern Ireland: in the EU's customs and VAT rules for goods (Windsor Framework).
NORTHERN_IRELAND_CODE: Final = "XI"
_NORTHERN_IRELAND_POSTCODE: Final = re.compile(r"^BT\d")

_NOT_POSTAL: Final = re.compile(r"[\s\-.]")


def _postal(country: str, postal_code: str) -> str:
    """``"FI-22100"`` or ``"63 086"`` → ``"22100"`` / ``"63086"``: the digits and letters a prefix can match."""
    text = _NOT_POSTAL.sub("", postal_code.strip().upper())
    if text.startswith(country) and len(text) > len(country) and not text[len(country)].isalpha():
        text = text[len(country) :]
    return text


def customs_required(country: str, postal_code: str = "") -> str | None:
    """Why a parcel from the EU to this address needs customs data, naming where it goes; None when it does not.

    ``country`` is the address's ISO 3166-1 alpha-2 code (also ``XI``, ``IC``, ``EA``); ``postal_code`` tells
    the special parts of a member state from its mainland.
    """
    code = country.strip().upper()
    postal = _postal(code, postal_code)
    if code == NORTHERN_IRELAND_CODE:
        return None
    if code == "GB":
        return None if _NORTHERN_IRELAND_POSTCODE.match(postal) else "the United Kingdom (Great Britain)"
    if code in _OWN_CODES:
        return _OWN_CODES[code]
    if code in ASSOCIATED_INSIDE:
        return None
    if code not in EU_MEMBER_STATES:
        return code or "an unknown country"
    best: tuple[str, str | None] | None = None
    for prefix, name in _REGIONS.get(code, ()):
        if postal.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, name)
    return best[1] if best is not None else None
